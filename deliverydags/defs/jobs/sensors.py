"""Sensors that chain the nightly work: soak → chaos, and a deploy → soak.

- ``chaos_after_green_soak``: each ``message_soak`` materialization whose checks all
  passed launches ``nightly_chaos`` for the same night, once per materialization (run key
  ``chaos:<night>:<soak run id>``): a re-run of a night's soak is a new measurement, so a
  green re-run gets its chaos too; evaluating the same materialization again does not.
  A plain cursor sensor rather than ``@asset_sensor``: that one jumps to the latest
  materialization (a backfill's other nights would be lost) and advances its cursor even
  when the checks, written just after the materialization, have not landed yet.
- ``notify_after_chaos``: each finished ``nightly_chaos`` run (passed or failed) runs the
  night's notifications again, which send the chaos figures the summary could not hold
  (chaos runs after it); run key ``notify:<chaos run id>``.
- ``deploy_change_sensor``: polls the configured target's ``/healthz`` and launches the
  nightly soak job for today's night when the reported version changes.

Both take their first evaluation as the starting point and launch nothing then: turning a
sensor on (or opening ``dagster dev`` on the demo's instance) is not an event.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import dagster as dg

from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.jobs.chaos import chaos_notifications_job, nightly_chaos_job
from deliverydags.defs.jobs.nightly import nightly_soak_job
from deliverydags.defs.resources import DeliveryTargetResource
from deliverydags.run.runner import SetupError, check_target

# Materializations decided per tick at most; the rest wait for the next tick (60 s limit).
MAX_PER_TICK = 25
# The soak writes its checks right after its materialization; a run still "in progress"
# this long after it is a dead process nobody marked failed, not worth holding the queue.
WAIT_FOR_CHECKS_S = 3600.0


def _check_failures(instance: dg.DagsterInstance, record: dg.EventLogRecord) -> list[str] | None:
    """Why the materialization's checks are not all green ([] when they are), or None
    while its run is still going and some check has not been evaluated yet."""
    evaluations: dict[str, dg.AssetCheckEvaluation] = {}
    for entry in instance.all_logs(
        record.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ):
        evaluation = entry.asset_check_evaluation
        if evaluation and evaluation.asset_key == message_soak.key:
            evaluations[evaluation.check_name] = evaluation
    expected = sorted(key.name for key in message_soak.check_keys)
    missing = [name for name in expected if name not in evaluations]
    run = instance.get_run_by_id(record.run_id) if record.run_id else None
    pending = run is not None and not run.is_finished
    if missing and pending and time.time() - record.timestamp < WAIT_FOR_CHECKS_S:
        return None
    failures = [f"{name} not evaluated" for name in missing]
    for name in expected:
        evaluation = evaluations.get(name)
        # A warning (the soak's p50 / p99) is shown, never a reason to hold chaos back.
        warning = evaluation is not None and evaluation.severity == dg.AssetCheckSeverity.WARN
        if evaluation and not evaluation.passed and not warning:
            failures.append(f"{name} failed{_observed(evaluation)}")
    return failures


def _observed(evaluation: dg.AssetCheckEvaluation) -> str:
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    if "observed" in meta and "limit" in meta:
        return f" (observed {meta['observed']}, limit {meta['limit']})"
    return ""


@dg.sensor(
    job=nightly_chaos_job,
    minimum_interval_seconds=60,
    # On by default so the nightly schedule's soak is followed by chaos without a click;
    # its first tick only records where it starts, so a fresh `dagster dev` launches nothing.
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch nightly_chaos for a night once its message_soak checks are all green.",
)
def chaos_after_green_soak(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    if context.cursor is None:
        latest = instance.fetch_materializations(message_soak.key, limit=1).records
        start = latest[0].storage_id if latest else 0
        return dg.SensorResult(
            skip_reason=f"Starting point recorded (storage id {start}); chaos follows the "
            "green message_soak materializations after it.",
            cursor=str(start),
        )
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=message_soak.key, after_storage_id=int(context.cursor)),
        limit=MAX_PER_TICK,
        ascending=True,
    ).records
    cursor, requests, skipped = int(context.cursor), [], []
    for record in records:
        night = record.partition_key
        failures = _check_failures(instance, record)
        if failures is None:  # its checks are still being written: decide next tick
            break
        cursor = record.storage_id
        if not night:
            skipped.append(f"run {record.run_id}: materialization without a night")
        elif failures:
            skipped.append(f"{night} (run {record.run_id}): {'; '.join(failures)}")
        else:
            requests.append(
                dg.RunRequest(
                    run_key=f"chaos:{night}:{record.run_id}",
                    partition_key=night,
                    tags={"deliverydags/trigger": "soak", "deliverydags/soak_run": record.run_id},
                )
            )
    for line in skipped:
        context.log.info(f"No chaos for {line}")
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=str(cursor))
    if skipped:
        return dg.SensorResult(
            skip_reason="No chaos for " + " | ".join(skipped), cursor=str(cursor)
        )
    waiting = " (one is waiting for its checks)" if records else ""
    return dg.SensorResult(
        skip_reason=f"No new message_soak materialization decided{waiting}.", cursor=str(cursor)
    )


@dg.sensor(
    job=nightly_soak_job,
    minimum_interval_seconds=60,
    # Off by default: a deploy then costs a full soak (30 min at 500 msg/s) on the service,
    # which its operator turns on deliberately; with no target URL it has nothing to watch.
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Launch today's soak when the target's /healthz reports a new version.",
)
def deploy_change_sensor(
    context: dg.SensorEvaluationContext, target: DeliveryTargetResource
) -> dg.SensorResult | dg.SkipReason:
    if not target.url:
        return dg.SkipReason(
            "No target URL configured (DELIVERYDAGS_TARGET_URL): each run starts its own "
            "reference target, so there is no deployment to watch."
        )
    try:
        version = check_target(target.url)
    except SetupError as exc:
        return dg.SkipReason(str(exc))  # cursor unchanged: the next tick compares again
    previous = context.cursor
    if previous is None:
        # First sight is not a deploy: the nightly schedule already covers this version.
        return dg.SensorResult(
            skip_reason=f"Watching {target.url}: version {version} (a soak runs when it changes).",
            cursor=version,
        )
    if version == previous:
        return dg.SkipReason(f"Version still {version}.")
    night = datetime.now(UTC).strftime("%Y-%m-%d")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                # Night and both versions: a later rollback or redeploy is a new run.
                run_key=f"deploy:{night}:{previous}->{version}",
                partition_key=night,
                tags={
                    "deliverydags/trigger": "deploy",
                    "deliverydags/version": version,
                    "deliverydags/previous_version": previous,
                },
            )
        ],
        cursor=version,
    )


@dg.sensor(
    job=chaos_notifications_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a night's chaos job finishes, send its figures to Slack (once).",
)
def notify_after_chaos(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
    if context.cursor is None:
        return dg.SensorResult(
            skip_reason="Starting point recorded; chaos runs finishing after it are notified.",
            cursor=str(time.time()),
        )
    since = float(context.cursor)
    records = context.instance.get_run_records(
        dg.RunsFilter(
            job_name=nightly_chaos_job.name,
            statuses=finished,
            updated_after=datetime.fromtimestamp(since, UTC),
        ),
        limit=MAX_PER_TICK,
        order_by="update_timestamp",
        ascending=True,
    )
    requests = []
    for record in records:
        since = max(since, record.update_timestamp.timestamp())
        night = record.dagster_run.tags.get("dagster/partition")
        if night:
            requests.append(
                dg.RunRequest(run_key=f"notify:{record.dagster_run.run_id}", partition_key=night)
            )
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=str(since))
    return dg.SensorResult(
        skip_reason="No chaos run finished since the last tick.", cursor=str(since)
    )
