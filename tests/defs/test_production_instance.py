"""Production mode: the shipped dagster.yaml (Postgres storage from env, queued runs, one
load test at a time) loads, and a real message_soak run executes with it."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from deliverydags.defs.assets.catalog import message_soak
from tests.conftest import ROOT, soak_resources

pytestmark = pytest.mark.integration

TINY = {"rate": 20.0, "duration_s": 3.0, "deadlines_s": [2.0, 4.0, 6.0]}


@pytest.fixture
def production_home(tmp_path: Path, postgres_env: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in postgres_env.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_production_yaml_uses_postgres_queue_and_pool_limit(production_home: Path) -> None:
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert str(pools.pool_granularity).lower().endswith("run")


def test_message_soak_run_is_recorded_in_postgres(production_home: Path, tmp_path: Path) -> None:
    night = datetime.now(UTC).strftime("%Y-%m-%d")
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [message_soak],
            partition_key=night,
            instance=instance,
            run_config={"ops": {"message_soak": {"config": TINY}}},
            resources=soak_resources(tmp_path),
        )
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.is_success
        materialization = instance.get_latest_materialization_event(dg.AssetKey("message_soak"))
        assert materialization is not None and materialization.run_id == result.run_id
        counts = materialization.asset_materialization.metadata
        assert counts["count_accepted"].value == counts["count_delivered"].value > 0
