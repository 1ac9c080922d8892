"""Bad chaos configuration: one actionable line, the asset fails, nothing left running."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from deliverydags.defs.assets.catalog import SCENARIO_ASSETS
from tests.conftest import soak_resources
from tests.support.chaos import NIGHT, no_orphans

chaos_consumer_kill = SCENARIO_ASSETS["chaos_consumer_kill"]
chaos_redis_outage = SCENARIO_ASSETS["chaos_redis_outage"]

pytestmark = pytest.mark.integration


def _failure(asset: dg.AssetsDefinition, tmp_path: Path, config: dict, **target: str) -> str:
    name = asset.key.to_user_string()
    result = dg.materialize(
        [asset],
        partition_key=NIGHT,
        run_config={"ops": {name: {"config": config}}},
        resources=soak_resources(tmp_path, **target),
        raise_on_error=False,
    )
    assert not result.success
    (event,) = result.get_step_failure_events()
    return event.step_failure_data.user_failure_data.description


def test_unknown_signal(tmp_path: Path) -> None:
    msg = _failure(chaos_consumer_kill, tmp_path, {"signal": "SIGHUP"})
    assert msg == "signal must be one of SIGKILL, SIGSTOP, not 'SIGHUP'"
    no_orphans()


def test_fault_after_the_load(tmp_path: Path) -> None:
    msg = _failure(chaos_redis_outage, tmp_path, {"duration_s": 10.0, "inject_after_s": 10.0})
    assert msg.startswith("inject_after_s (10) must be less than duration_s (10)")
    assert "\n" not in msg
    no_orphans()


def test_external_target_is_refused(tmp_path: Path) -> None:
    msg = _failure(chaos_redis_outage, tmp_path, {}, url="http://127.0.0.1:9")
    assert "cannot run against a target URL" in msg
