"""A real Prometheus (started by the hook) scraping a real reference target: the service's
SLIs against the ledger, k6's remote write, and the failures a user can meet."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import dagster as dg
import pytest

from deliverydags import target
from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.resources import PrometheusResource
from deliverydags.history.store import ResultsStore
from deliverydags.prometheus import PrometheusError, PrometheusHook, ServiceMetrics
from deliverydags.prometheus.server import find_prometheus
from deliverydags.run.runner import Secrets, run_check
from deliverydags.run.settings import RunSettings
from tests.conftest import SOAK_GATES, soak_resources

pytestmark = pytest.mark.integration

NIGHT = "2026-11-21"
SHORT = RunSettings(rate=40, duration_s=4, deadlines_s=(2.0, 4.0, 6.0))


@pytest.fixture(scope="module", autouse=True)
def prometheus_installed() -> None:
    try:
        find_prometheus()
    except PrometheusError as exc:
        pytest.fail(str(exc))


def _gate(result: dict, name: str = "service_metrics_agree") -> dict:
    (gate,) = [g for g in result["gates"] if g["name"] == name]
    return gate


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_clean_run_service_metrics_match_the_ledger(tmp_path: Path) -> None:
    with PrometheusHook(tmp_path / "prom", run_id="clean") as hook:
        result = run_check(SHORT, Secrets(None, None), tmp_path / "run", print, hooks=[hook])
        prom = result["prometheus"]
        # Cross-check the harness's histogram_quantile with Prometheus's own: this target
        # was started by the run, so its lifetime histogram is the window's.
        promql = "histogram_quantile(0.95, sum by (le) (message_latency_seconds_bucket))"
        theirs = hook.metrics.scalar(promql, prom["window"]["end_s"])
        pid = hook.server.proc.pid
    assert not _alive(pid)  # stopped with the run, no orphan
    counts, service = result["counts"], prom["service"]
    assert counts["accepted"] == counts["delivered"] > 100
    assert service["delivered"] == counts["delivered"]
    assert service["accepted"] == counts["accepted"]
    assert service["failed"] == 0 and service["delivery_rate_percentage"] == 100.0
    assert service["max_dlq_depth"] == 0 and service["max_consumer_lag"] is not None
    assert service["rss_max_bytes"] > 10 * 2**20
    assert service["latency_ms"]["p95"] == pytest.approx(theirs * 1000, abs=0.01)
    assert _gate(result)["passed"], _gate(result)
    k6 = prom["k6_remote_write"]
    assert k6["present"] and k6["http_reqs_total"] >= counts["attempted"]


def test_prometheus_scraping_another_service_disagrees_with_the_ledger(tmp_path: Path) -> None:
    env = {
        "DELIVERYDAGS_TARGET_TOKEN": secrets.token_hex(8),
        "DELIVERYDAGS_CALLBACK_SECRET": secrets.token_hex(8),
    }
    # A second, idle reference target: its metrics are real, and they are not this run's.
    with (
        target.start(out_dir=tmp_path / "other", env=env) as other,
        PrometheusHook(tmp_path / "prom", metrics_url=other.url + "/metrics") as hook,
    ):
        result = run_check(SHORT, Secrets(None, None), tmp_path / "run", print, hooks=[hook])
    gate = _gate(result)
    assert result["counts"]["delivered"] > 100
    assert result["prometheus"]["service"]["delivered"] == 0
    assert not gate["passed"]
    assert gate["observed"].startswith("delivered: service 0 vs ledger")
    assert result["status"] == "failed"


def test_bad_promql_is_one_clear_line(tmp_path: Path) -> None:
    with PrometheusHook(tmp_path / "prom") as hook, pytest.raises(PrometheusError) as err:
        hook.metrics.query("sum(rate(delivered_total[1m])")
    message = str(err.value)
    assert "\n" not in message and "refused the query" in message
    assert "unclosed left parenthesis" in message


def test_unreachable_prometheus_is_one_clear_line() -> None:
    with pytest.raises(PrometheusError, match=r"unreachable \(ConnectionError\); is it running"):
        ServiceMetrics(f"http://127.0.0.1:{_closed_port()}", 'job="x"').query("up")


def test_interrupted_run_leaves_no_prometheus_behind(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), PrometheusHook(tmp_path / "prom") as hook:
        pid = hook.server.proc.pid
        assert _alive(pid)
        raise KeyboardInterrupt
    assert not _alive(pid)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _soak(
    tmp_path: Path, prometheus: PrometheusResource, **more: object
) -> dg.ExecuteInProcessResult:
    resources = {**soak_resources(tmp_path), "prometheus": prometheus}
    config = {"rate": 40.0, "duration_s": 4.0, "deadlines_s": [2.0, 4.0, 6.0], **more}
    return dg.materialize(
        [message_soak],
        partition_key=NIGHT,
        run_config={"ops": {"message_soak": {"config": config}}},
        resources=resources,
        raise_on_error=False,
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_soak_shows_the_service_beside_the_ledger(tmp_path: Path) -> None:
    result = _soak(tmp_path, PrometheusResource())
    assert result.success
    (event,) = result.asset_materializations_for_node("message_soak")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["service_delivered"] == meta["count_delivered"] > 100
    assert meta["service_failed"] == meta["count_failed"] == 0
    assert meta["service_k6_http_reqs_remote_write"] >= meta["count_attempted"]
    assert "| delivered (+late +recovered) |" in meta["ledger_vs_service"]
    assert _checks(result)["service_metrics_agree"].passed


def test_prometheus_down_keeps_the_ledger_result(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    # Latency is not what this test is about: a 4 s run's p95 can meet a slow second of a
    # 2-core machine, and the ledger's other checks must stand.
    result = _soak(tmp_path, PrometheusResource(url=url), p95_latency_ms=1000.0)
    checks = _checks(result)
    assert all(checks[name].passed for name in SOAK_GATES)  # the ledger's checks stand
    failed = checks["service_metrics_agree"]
    assert not failed.passed
    observed = failed.metadata["observed"].value
    assert observed == f"Prometheus at {url} is unreachable (ConnectionError); is it running?"
    assert result.success  # not blocking: the ledger is the verdict on delivery
    stored = ResultsStore(tmp_path / "data" / "results.duckdb").load(NIGHT)
    assert stored is not None and stored["counts"]["delivered"] > 100
    assert stored["prometheus"]["error"] == observed


def test_missing_prometheus_binary_says_how_to_install_it(tmp_path: Path) -> None:
    result = _soak(tmp_path, PrometheusResource(binary=str(tmp_path / "no-such-prometheus")))
    check = _checks(result)["service_metrics_agree"]
    assert not check.passed
    assert "install it with scripts/install_prometheus.sh" in check.metadata["observed"].value
    assert result.success


def test_users_promql_gates_are_evaluated_over_the_run(tmp_path: Path) -> None:
    gates = [
        "dlq_empty: max(max_over_time(dlq_depth{target}[{window}])) == 0",
        "delivered_some: max(max_over_time(delivered_total{target}[{window}])) > 10",
        "impossible: max(up{target}) > 1",  # up is 1: this one must fail
    ]
    result = _soak(tmp_path, PrometheusResource(), service_gates=gates)
    assert result.success  # not blocking: the ledger is the verdict on delivery
    check = _checks(result)["service_gates"]
    assert not check.passed
    observed = check.metadata["observed"].value
    assert observed["dlq_empty"] == 0 and observed["delivered_some"] > 10
    assert observed["impossible"] == 1
    stored = ResultsStore(tmp_path / "data" / "results.duckdb").load(NIGHT)
    by_name = {g["name"]: g["passed"] for g in stored["gates"]}
    assert by_name["service:dlq_empty"] and by_name["service:delivered_some"]
    assert not by_name["service:impossible"]
