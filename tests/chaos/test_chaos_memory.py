"""chaos_memory for real: a Prometheus reads the RSS of the target's API and consumer
processes (Redis mode); the target's real leak (--fault-leak-bytes) fails the check."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from deliverydags.defs.assets.catalog import SCENARIO_ASSETS
from deliverydags.history.store import ResultsStore
from tests.conftest import soak_resources

chaos_memory = SCENARIO_ASSETS["chaos_memory"]

pytestmark = pytest.mark.integration

NIGHT = "2026-11-22"
LOAD = {"rate": 50.0, "duration_s": 16.0, "deadlines_s": [5.0, 10.0, 20.0]}


def _run(tmp_path: Path, redis_url: str, prefix: str, leak: int) -> dg.ExecuteInProcessResult:
    config = {**LOAD, "leak_bytes": leak, "target_args": ["--stream-prefix", prefix]}
    return dg.materialize(
        [chaos_memory],
        partition_key=NIGHT,
        run_config={"ops": {"chaos_memory": {"config": config}}},
        resources=soak_resources(tmp_path, redis_url=redis_url),
        raise_on_error=False,
    )


def _outcome(result: dg.ExecuteInProcessResult) -> tuple[dict, dict[str, bool]]:
    (event,) = result.asset_materializations_for_node("chaos_memory")
    meta = {k: v.value for k, v in event.metadata.items()}
    return meta, {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_steady_target_keeps_its_memory(tmp_path: Path, redis_url: str, stream_prefix: str) -> None:
    result = _run(tmp_path, redis_url, stream_prefix, leak=0)
    meta, checks = _outcome(result)
    assert checks == {"memory_growth": True, "zero_loss": True, "service_metrics_agree": True}
    assert result.success
    assert meta["rss_growth"] < 0.10 and meta["fault"] == "none (watch)"
    assert meta["lost"] == meta["duplicates"] == meta["dlq"] == 0
    stored = ResultsStore(tmp_path / "data" / "results.duckdb").load(NIGHT, "chaos_memory")
    assert stored is not None and stored["scenario"] == "chaos_memory"
    # Every target process is watched: the API and both consumer processes.
    processes = stored["prometheus"]["memory"]["processes"]
    assert set(processes) == {"api", "consumer-0", "consumer-1"}
    assert stored["chaos"]["rss_growth"] == meta["rss_growth"]


def test_a_leaking_target_fails_the_memory_check(
    tmp_path: Path, redis_url: str, stream_prefix: str
) -> None:
    # 64 KiB per message, ~600 messages after the warm-up: ~40 MiB on a ~50 MiB process.
    result = _run(tmp_path, redis_url, stream_prefix, leak=65536)
    meta, checks = _outcome(result)
    assert checks["memory_growth"] is False
    assert checks["zero_loss"] is True  # the leak costs memory, not messages
    assert not result.success  # blocking
    assert meta["rss_growth"] > 0.10 and meta["rss_worst_process"] == "api"
    assert meta["rss_slope_bytes_per_s"] > 1_000_000  # ~50 msg/s * 64 KiB
    assert meta["fault"] == "memory leak of 65536 B per message"
