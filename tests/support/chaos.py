"""Materialize one chaos asset for real and read back its metadata and checks."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from deliverydags.history.store import ResultsStore
from tests.conftest import soak_resources

NIGHT = "2026-11-21"


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
