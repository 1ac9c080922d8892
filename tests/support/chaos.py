"""Materialize one chaos asset for real and read back its metadata and checks."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import psutil

from deliverydags.history.store import ResultsStore
from tests.conftest import soak_resources

NIGHT = "2026-11-21"
# 200 ms batching windows: the victim always holds a batch it has not sent yet.
TARGET = ["--consumers", "2", "--batch-wait-ms", "200"]
BASE = {
    "rate": 150.0,
    "duration_s": 20.0,
    "inject_after_s": 6.0,
    "deadlines_s": [25.0],
    "normal_latency_ms": 1000.0,
    "min_pending": 5,
}


def materialize(
    asset: dg.AssetsDefinition, tmp_path: Path, config: dict
) -> dg.ExecuteInProcessResult:
    name = asset.key.to_user_string()
    return dg.materialize(
        [asset],
        partition_key=NIGHT,
        run_config={"ops": {name: {"config": config}}},
        resources=soak_resources(tmp_path),
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult, name: str) -> dict:
    (event,) = result.asset_materializations_for_node(name)
    return {k: v.value for k, v in event.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def stored(tmp_path: Path, name: str) -> dict | None:
    return ResultsStore(tmp_path / "data" / "results.duckdb").load(NIGHT, name)


def no_orphans() -> None:
    me = psutil.Process(os.getpid())
    names = [" ".join(c.cmdline()) for c in me.children(recursive=True)]
    assert not [n for n in names if "redis-server" in n or "deliverydags.target" in n], names
