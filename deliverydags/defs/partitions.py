"""Partitions shared by every nightly asset.

A night is a UTC calendar day. ``end_offset=1`` makes today's partition exist while it is
in progress, so the 02:10 UTC schedule materializes *today's* partition (not yesterday's)
and a missing night is noticed within 25 h of the day's start.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

FIRST_NIGHT = "2025-01-01"

nightly_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_NIGHT, end_offset=1, timezone="UTC"
)


def latest_partition_schedule(
    job: dg.UnresolvedAssetJobDefinition,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    cron_schedule: str,
    name: str,
) -> dg.ScheduleDefinition:
    """A schedule that runs ``job`` for the latest partition at its tick, as
    ``build_schedule_from_partitioned_job`` does, without its deprecated
    ``run_request_for_partition``. The run key is the partition: a tick is never run twice."""

    @dg.schedule(cron_schedule=cron_schedule, job=job, execution_timezone="UTC", name=name)
    def _latest(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        tick = (context.scheduled_execution_time or datetime.now(UTC)).timestamp()
        key = partitions_def.get_partition_key_for_timestamp(tick)  # the window holding tick
        if partitions_def.end_offset == 0:  # only complete windows exist: the one before
            start = partitions_def.time_window_for_partition_key(key).start.timestamp()
            key = partitions_def.get_partition_key_for_timestamp(start, end_closed=True)
        return dg.RunRequest(run_key=key, partition_key=key)

    return _latest
