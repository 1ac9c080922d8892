"""Materialize message_soak partitions for real: k6, collector, reference target, ledger."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from deliverydags.defs.assets.catalog import message_soak
from deliverydags.history.store import ResultsStore
from tests.conftest import SOAK_GATES, SOAK_WARNINGS, soak_resources

pytestmark = pytest.mark.integration

NIGHT = "2026-11-20"
TINY = {"rate": 40.0, "duration_s": 4.0, "deadlines_s": [2.0, 4.0, 6.0]}


def _materialize(tmp_path: Path, config: dict, **target: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [message_soak],
        partition_key=NIGHT,
        run_config={"ops": {"message_soak": {"config": config}}},
        resources=soak_resources(tmp_path, **target),
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.asset_materializations_for_node("message_soak")
    return {k: v.value for k, v in event.metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_embedded_partition_counts_every_message_and_passes_its_checks(tmp_path: Path) -> None:
    result = _materialize(tmp_path, TINY)
    assert result.success
    meta = _metadata(result)
    sent = meta["count_attempted"]
    # 40 msg/s for 4 s; k6 may start the last second's messages a little early or late.
    assert 150 <= sent <= 170
    assert meta["count_accepted"] == meta["count_delivered"] == sent
    assert meta["count_lost"] == meta["count_duplicates"] == meta["count_out_of_order"] == 0
    assert meta["delivery_rate"] == 1.0
    assert 0 < meta["latency_p50_ms"] <= meta["latency_p95_ms"] <= meta["latency_max_ms"]
    # Every ledger check, and the service's own metrics (Prometheus) agreeing with them.
    assert _checks(result) == {
        **dict.fromkeys((*SOAK_GATES, *SOAK_WARNINGS), True),
        "service_metrics_agree": True,
        "service_gates": True,  # the DLQ stayed empty
    }
    stored = ResultsStore(tmp_path / "data" / "results.duckdb").load(NIGHT)
    assert stored is not None and stored["run_id"] == meta["run_id"]
    assert Path(meta["result_path"]).is_file()


def test_rerunning_a_partition_replaces_its_result(tmp_path: Path) -> None:
    first = _metadata(_materialize(tmp_path, TINY))
    second = _metadata(_materialize(tmp_path, TINY))
    store = ResultsStore(tmp_path / "data" / "results.duckdb")
    nights = store.nights()
    assert [night for night, _ in nights] == [NIGHT]
    assert nights[0][1]["run_id"] == second["run_id"] != first["run_id"]


def test_redis_backed_reference_target(tmp_path: Path, redis_url: str, stream_prefix: str) -> None:
    config = {**TINY, "target_args": ["--stream-prefix", stream_prefix, "--consumers", "2"]}
    result = _materialize(tmp_path, config, redis_url=redis_url)
    assert result.success
    meta = _metadata(result)
    assert meta["count_accepted"] == meta["count_delivered"] == meta["count_attempted"] > 0
    assert meta["target_url"].startswith("http://127.0.0.1:")


def test_a_lossy_target_fails_the_zero_loss_check_not_the_measurement(tmp_path: Path) -> None:
    config = {**TINY, "target_args": ["--fault-drop", "0.1", "--fault-seed", "7"]}
    result = _materialize(tmp_path, config)
    meta = _metadata(result)  # the measurement is recorded ...
    assert meta["count_lost"] > 0
    checks = _checks(result)
    assert checks["zero_loss"] is False  # ... and the blocking check says what is wrong
    assert checks["messages_sent"] is True
    assert not result.success
