"""`message_soak`: tonight's load test with exact delivery accounting."""

import dagster as dg
from pydantic import Field

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.assets.load_run import run_load, setup_errors_fail_the_step
from deliverydags.defs.checks import check_results
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import (
    DeliveryTargetResource,
    K6Resource,
    PrometheusResource,
    ResultsStoreResource,
)
from deliverydags.prometheus import service_report
from deliverydags.run.runner import new_run_id
from deliverydags.run.settings import DEFAULT_DEADLINES_S, Gates, RunSettings
from deliverydags.run.summary import markdown

GATE_CHECKS = {
    "messages_sent": "The scenario sent at least one message.",
    "zero_loss": "No accepted message lost (no valid receipt by the last deadline).",
    "zero_failed": "No accepted message reported failed by the target.",
    "p95_latency_ms": "p95 send-to-receipt latency below the limit.",
    "error_rate": "Share of messages not accepted (rejected or unanswered) below the limit.",
    "k6_thresholds": "None of k6's own thresholds crossed.",
}
# Not blocking: the ledger is the verdict on delivery. A disagreement says the service's
# metrics (or the harness) lie, and a Prometheus outage says nothing about delivery;
# either is shown red on the asset without holding back what depends on the ledger.
SERVICE_CHECK = "service_metrics_agree"
SERVICE_CHECK_DESC = (
    "The service's own metrics, read from Prometheus for the run's window, agree with the "
    "ledger (delivered, failed, p95 latency) within the stated tolerance."
)


class SoakConfig(dg.Config):
    """The nightly profile by default (the seed's soak: 500 msg/s for 30 min)."""

    scenario: str = SOAK_SCENARIO
    rate: float = 500.0
    duration_s: float = 1800.0
    deadlines_s: list[float] = Field(default_factory=lambda: list(DEFAULT_DEADLINES_S))
    payload_bytes: int = 256
    variants: str = ""
    target_args: list[str] = Field(default_factory=list)
    max_lost: int = 0
    max_failed: int = 0
    p95_latency_ms: float = 100.0
    max_error_rate: float = 0.001

    def settings(self, target: DeliveryTargetResource, k6_binary: str) -> RunSettings:
        return RunSettings(
            scenario=self.scenario,
            target_url=target.url,
            rate=self.rate,
            duration_s=self.duration_s,
            deadlines_s=tuple(self.deadlines_s),
            payload_bytes=self.payload_bytes,
            variants=self.variants,
            collector_addr=target.collector_addr,
            collector_url=target.collector_url,
            redis_url=target.redis_url,
            target_args=tuple(self.target_args),
            k6_binary=k6_binary,
            gates=Gates(self.max_lost, self.max_failed, self.p95_latency_ms, self.max_error_rate),
        )


@dg.asset(
    partitions_def=nightly_partitions,
    pool="load_test",
    group_name="delivery",
    kinds={"k6", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(name, asset=SOAK_SCENARIO, description=desc, blocking=True)
        for name, desc in GATE_CHECKS.items()
    ]
    + [dg.AssetCheckSpec(SERVICE_CHECK, asset=SOAK_SCENARIO, description=SERVICE_CHECK_DESC)],
    description="Tonight's message soak: k6 load, signed receipts, exact ledger, gates.",
)
def message_soak(
    context: dg.AssetExecutionContext,
    config: SoakConfig,
    k6: K6Resource,
    target: DeliveryTargetResource,
    results: ResultsStoreResource,
    prometheus: PrometheusResource,
) -> dg.MaterializeResult:
    night = context.partition_key
    run_id = new_run_id()
    run_dir = results.run_dir(night, run_id)
    with setup_errors_fail_the_step():
        settings = config.settings(target, k6.path())
        # The hook's Prometheus stops with the run, however it ends.
        with prometheus.hook(run_dir, run_id) as hook:
            context.log.info(f"service metrics: {hook.describe}")
            result = run_load(context, settings, target, run_dir, [hook])
    results.store.save(night, result)
    context.log.info("\n" + markdown(result))
    return dg.MaterializeResult(
        metadata=_metadata(result, run_dir),
        # The service check is always there: failed with the hook's error when its report
        # could not even produce the gate.
        check_results=check_results(
            result, [*GATE_CHECKS, SERVICE_CHECK], missing=service_report.error(result)
        ),
    )


def _metadata(result: dict, run_dir) -> dict:
    counts = result["counts"]
    lat = result.get("latency_ms") or {}
    meta: dict = {f"count_{k}": int(v) for k, v in counts.items()}
    meta.update({f"latency_{k}_ms": float(v) for k, v in lat.items() if v is not None})
    if result.get("delivery_rate") is not None:
        meta["delivery_rate"] = float(result["delivery_rate"])
    prom = result.get("prometheus") or {}
    meta.update(service_report.numbers(prom))
    meta["ledger_vs_service"] = dg.MetadataValue.md(service_report.markdown(prom, result))
    meta.update(
        status=result["status"],
        run_id=result["run_id"],
        target_url=dg.MetadataValue.url(result["target_url"]),
        target_version=result.get("target_version", ""),
        report=dg.MetadataValue.md(markdown(result)),
        result=dg.MetadataValue.json(result),
        result_path=dg.MetadataValue.path(str(run_dir / "result.json")),
    )
    return meta
