"""Partitions shared by every nightly asset.

A night is a UTC calendar day. ``end_offset=1`` makes today's partition exist while it is
in progress, so the 02:10 UTC schedule materializes *today's* partition (not yesterday's)
and a missing night is noticed within 25 h of the day's start.
"""

import dagster as dg

FIRST_NIGHT = "2025-01-01"

nightly_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_NIGHT, end_offset=1, timezone="UTC"
)
