"""Jobs and schedules of the nightly review beyond the nightly run itself.

- ``weekly_baseline``: Mondays 06:00 UTC, the week that ended on Sunday (the latest
  completed weekly partition).
- ``history_import``: past nights from recorded files; launch it as a backfill over a
  range (one run for the whole range).
- ``nightly_review`` + ``review_after_failed_night``: a night whose soak failed a
  blocking check (any lost message) stops its review in that run; the sensor reviews it
  in a run of its own, so a bad night still counts for the trend and the gate, and a
  collapse still rolls back and pages.
- ``stale_results_sensor``: a Slack message when a night has no result 25 h on.
"""

from datetime import UTC, datetime

import dagster as dg

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.assets.baseline import baseline_snapshot, weekly_partitions
from deliverydags.defs.assets.imports import imported_results
from deliverydags.defs.assets.review import NIGHTLY_REVIEW
from deliverydags.defs.assets.trend import trend_comparison
from deliverydags.defs.jobs.nightly import nightly_soak_job
from deliverydags.defs.partitions import latest_partition_schedule
from deliverydags.defs.resources import PagerDutyResource, ResultsStoreResource, SlackResource
from deliverydags.defs.resources.notify.dispatch import dispatch
from deliverydags.notify.messages import stale_alert
from deliverydags.review.trend import recent_stale_nights

RECENT_DAYS = 7

weekly_baseline_job = dg.define_asset_job(
    "weekly_baseline",
    selection=dg.AssetSelection.assets(baseline_snapshot),
    description="The week's per-metric baseline (mean, std, median, n).",
)

weekly_baseline_schedule = latest_partition_schedule(
    weekly_baseline_job, weekly_partitions, "0 6 * * 1", "weekly_baseline_schedule"
)

history_import_job = dg.define_asset_job(
    "history_import",
    selection=dg.AssetSelection.assets(imported_results),
    description="Import recorded result files and k6 summaries into past nights (no k6).",
)


@dg.sensor(
    minimum_interval_seconds=900,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Slack alert when a night has no result 25 h after it began (once per night).",
)
def stale_results_sensor(
    context: dg.SensorEvaluationContext,
    results: ResultsStoreResource,
    slack: SlackResource,
    pagerduty: PagerDutyResource,
) -> dg.SkipReason:
    """Nightly runs that never happened trigger no asset; this notices them within 15 min
    of the 25 h mark. Only the last RECENT_DAYS nights are watched (old gaps in imported
    history are history, not news). A cheap query; the message goes out at most once."""
    scenario = SOAK_SCENARIO
    stale = recent_stale_nights(results.store, scenario, datetime.now(UTC), RECENT_DAYS)
    if not stale:
        return dg.SkipReason("Every recent night has a result within 25 h.")
    done = dispatch([stale_alert(scenario, s) for s in stale], results.store, slack, pagerduty)
    failure = done.failure_line()
    if failure:
        raise RuntimeError(failure)
    nights = ", ".join(s["night"] for s in stale)
    return dg.SkipReason(f"No result for {nights}; {' '.join(done.status_lines())}")


nightly_review_job = dg.define_asset_job(
    "nightly_review",
    selection=dg.AssetSelection.assets(*NIGHTLY_REVIEW),
    description="Trend, gate, A/B, windows and notifications of a night already measured.",
)


@dg.run_failure_sensor(
    monitored_jobs=[nightly_soak_job],
    request_job=nightly_review_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Review a night whose nightly run failed before its review ran.",
)
def review_after_failed_night(
    context: dg.RunFailureSensorContext,
) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    night = run.tags.get("dagster/partition")
    if not night:
        return dg.SkipReason(f"Run {run.run_id} has no partition: nothing to review.")
    latest = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=trend_comparison.key, asset_partitions=[night]), limit=1
    ).records
    if latest and latest[0].run_id == run.run_id:
        return dg.SkipReason(f"Run {run.run_id} reviewed {night} before it failed.")
    return dg.RunRequest(run_key=f"review:{night}:{run.run_id}", partition_key=night)
