"""The whole code location loads, and what users rely on in the UI is there."""

from datetime import UTC, datetime

import dagster as dg

from deliverydags.assets.soak import GATE_CHECKS
from deliverydags.definitions import defs


def test_every_job_schedule_and_sensor_resolves() -> None:
    repo = defs.get_repository_def()
    for job in repo.get_all_jobs():
        assert job.name
    for schedule in repo.schedule_defs:
        defs.resolve_schedule_def(schedule.name)
    for sensor in repo.sensor_defs:
        defs.resolve_sensor_def(sensor.name)


def test_message_soak_is_daily_partitioned_pooled_and_checked() -> None:
    soak = defs.resolve_assets_def("message_soak")
    assert isinstance(soak.partitions_def, dg.DailyPartitionsDefinition)
    assert soak.partitions_def.timezone == "UTC"
    assert soak.node_def.pool == "load_test"
    checks = {key.name for key in soak.check_keys}
    assert checks == set(GATE_CHECKS)
    assert all(spec.blocking for spec in soak.check_specs)


def test_nightly_schedule_runs_todays_partition_at_0210_utc() -> None:
    schedule = defs.resolve_schedule_def("nightly_soak_schedule")
    assert schedule.cron_schedule == "10 2 * * *"
    assert schedule.execution_timezone == "UTC"
    tick = datetime(2026, 11, 23, 2, 10, tzinfo=UTC)
    requests = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=tick))
    assert [r.partition_key for r in requests.run_requests] == ["2026-11-23"]


def test_nightly_defaults_are_the_seed_soak_profile() -> None:
    from deliverydags.assets.soak import SoakConfig

    config = SoakConfig()
    assert (config.rate, config.duration_s) == (500.0, 1800.0)
    assert config.deadlines_s == [30.0, 300.0, 900.0]
    assert (config.p95_latency_ms, config.max_error_rate, config.max_lost) == (100.0, 0.001, 0)
