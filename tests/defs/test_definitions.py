"""The whole code location loads, and what users rely on in the UI is there."""

from datetime import UTC, datetime

import dagster as dg

from deliverydags.definitions import defs
from deliverydags.scenarios import catalog
from tests.conftest import SOAK_GATES, SOAK_WARNINGS


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
    assert checks == {*SOAK_GATES, *SOAK_WARNINGS, "service_metrics_agree", "service_gates"}
    # The ledger's checks block; the service's metrics agreeing with them does not, nor
    # do the latency warnings.
    blocking = {spec.name: spec.blocking for spec in soak.check_specs}
    assert blocking == {
        **dict.fromkeys(SOAK_GATES, True),
        **dict.fromkeys(SOAK_WARNINGS, False),
        "service_metrics_agree": False,
        "service_gates": False,
    }


def test_chaos_memory_is_a_pooled_nightly_chaos_asset() -> None:
    memory = defs.resolve_assets_def("chaos_memory")
    assert memory.partitions_def == defs.resolve_assets_def("message_soak").partitions_def
    assert memory.node_def.pool == "load_test"
    assert memory.group_names_by_key[dg.AssetKey("chaos_memory")] == "chaos"
    blocking = {spec.name: spec.blocking for spec in memory.check_specs}
    assert blocking["memory_growth"] is True
    job = defs.resolve_job_def("nightly_chaos")
    assert dg.AssetKey("chaos_memory") in job.asset_layer.executable_asset_keys


def test_nightly_schedule_runs_todays_partition_at_0210_utc() -> None:
    schedule = defs.resolve_schedule_def("nightly_soak_schedule")
    assert schedule.cron_schedule == "10 2 * * *"
    assert schedule.execution_timezone == "UTC"
    tick = datetime(2026, 11, 23, 2, 10, tzinfo=UTC)
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    requests = schedule.evaluate_tick(context)
    assert [r.partition_key for r in requests.run_requests] == ["2026-11-23"]


def test_nightly_defaults_are_the_seed_soak_profile() -> None:
    from deliverydags.scenarios.message_soak import SoakConfig

    config = SoakConfig()
    assert (config.rate, config.duration_s) == (500.0, 1800.0)
    assert config.deadlines_s == [30.0, 300.0, 900.0]
    assert (config.p95_latency_ms, config.max_error_rate, config.max_lost) == (100.0, 0.001, 0)


def test_review_assets_run_in_the_nightly_job_after_the_soak() -> None:
    from deliverydags.defs.assets.review import NIGHTLY_REVIEW

    job = defs.resolve_job_def("nightly_soak")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    review = {a.key.to_user_string() for a in NIGHTLY_REVIEW}
    delivery = {name for name, s in catalog().items() if s.group == "delivery"}
    assert "message_soak" in delivery and "throughput_ladder" in delivery
    assert keys == {*delivery, *review}
    assert "message_soak_tonight_vs_baseline" in job.graph.node_dict  # the separate check
    for asset in NIGHTLY_REVIEW:
        review = defs.resolve_assets_def(asset.key)
        assert review.partitions_def == defs.resolve_assets_def("message_soak").partitions_def


def test_baseline_is_weekly_on_mondays_and_imports_backfill_in_one_run() -> None:
    baseline = defs.resolve_assets_def("baseline_snapshot")
    assert isinstance(baseline.partitions_def, dg.WeeklyPartitionsDefinition)
    assert baseline.partitions_def.get_first_partition_key() == "2024-12-30"  # holds 2025-01-01
    schedule = defs.resolve_schedule_def("weekly_baseline_schedule")
    assert schedule.cron_schedule == "0 6 * * 1" and schedule.execution_timezone == "UTC"
    tick = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday: last week, Mon 16 - Sun 22
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    requests = schedule.evaluate_tick(context)
    assert [r.partition_key for r in requests.run_requests] == ["2026-11-16"]
    for name in ("imported_results", "baseline_snapshot"):
        policy = defs.resolve_assets_def(name).backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None  # single run
    assert defs.resolve_sensor_def("stale_results_sensor").minimum_interval_seconds == 900


def test_a_failed_nightly_run_gets_its_review_in_a_run_of_its_own() -> None:
    """A soak stopped by a blocking check (or failing) leaves its night unreviewed in that
    run; the failure sensor asks for the review of that partition, once per failed run."""
    from deliverydags.defs.jobs.review import review_after_failed_night

    night = "2026-11-20"
    with dg.instance_for_test() as instance:
        failed = defs.resolve_job_def("nightly_soak").execute_in_process(
            run_config={"ops": {"message_soak": {"config": {"scenario": "no_such_scenario"}}}},
            partition_key=night,
            instance=instance,
            raise_on_error=False,
        )
        assert not failed.success
        context = dg.build_run_status_sensor_context(
            sensor_name="review_after_failed_night",
            dagster_event=failed.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(failed.run_id),
        ).for_run_failure()
        request = review_after_failed_night(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == night
    assert request.run_key == f"review:{night}:{failed.run_id}"
    job = defs.resolve_job_def("nightly_review")
    assert "message_soak" not in {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
