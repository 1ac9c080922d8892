"""`deliverydags demo`: today's message_soak partition on an embedded Dagster home (SQLite,
the reference target on its embedded queue, no servers), then how to open the UI on it."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from deliverydags.config import PROMETHEUS_URL, SOAK_SCENARIO, is_set

LOCAL_DAGSTER_YAML = """\
# Embedded default made by `deliverydags demo`: SQLite storage in this folder.
# Production settings (Postgres, queued runs) are in the project's dagster.yaml.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  pools:
    granularity: run
    default_limit: 1
telemetry:
  enabled: false
"""


def local_dagster_home(root: Path) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or root / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_demo(rate: float, duration_s: float) -> int:
    home = local_dagster_home(Path.cwd())
    import dagster as dg

    from deliverydags.definitions import defs
    from deliverydags.run.summary import markdown
    from deliverydags.scenarios import catalog

    night = datetime.now(UTC).strftime("%Y-%m-%d")
    config = {"rate": rate, "duration_s": duration_s, "deadlines_s": [10.0, 30.0, 60.0]}
    print(
        f"deliverydags demo: message_soak for {night}, {rate:g} msg/s for {duration_s:g} s",
        flush=True,
    )
    print(_prometheus_note(), flush=True)
    job = defs.resolve_job_def("nightly_soak")
    # The soak and its review; the job's other scenarios (the ladder ...) are not a demo.
    others = {dg.AssetKey(name) for name in catalog() if name != SOAK_SCENARIO}
    with dg.DagsterInstance.get() as instance:
        outcome = job.execute_in_process(
            partition_key=night,
            instance=instance,
            run_config={"ops": {SOAK_SCENARIO: {"config": config}}},
            raise_on_error=False,
            asset_selection=list(job.asset_layer.selected_asset_keys - others),
        )
    # The materialization carries the result even when a blocking check failed the run.
    events = outcome.asset_materializations_for_node(SOAK_SCENARIO)
    result = events[-1].metadata["result"].value if events else None
    dagster = Path(sys.executable).parent / "dagster"
    ui = f"DAGSTER_HOME={home} {dagster} dev -m deliverydags.definitions"
    if result is None:
        print(f"\nThe run failed; see its logs in the UI: {ui}", file=sys.stderr)
        return 1
    print("\n" + markdown(result))
    if result.get("prometheus"):
        from deliverydags.prometheus import service_report

        print("\nLedger vs the service's own metrics (Prometheus):\n")
        print(service_report.markdown(result["prometheus"], result))
    print(f"\nOpen the Dagster UI on this run:\n  {ui}")
    print("then http://127.0.0.1:3000 (Runs; Assets > message_soak).")
    return 0 if result["status"] == "passed" else 1


def _prometheus_note() -> str:
    from deliverydags.prometheus import PrometheusError, find_prometheus

    if is_set(PROMETHEUS_URL):
        return f"service metrics: the Prometheus at {PROMETHEUS_URL}"
    try:
        return f"service metrics: a private Prometheus ({find_prometheus()}) scraping the target"
    except PrometheusError as exc:
        return f"service metrics: none, the service_metrics_agree check will fail ({exc})"
