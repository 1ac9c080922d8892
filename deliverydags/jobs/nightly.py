"""The nightly soak job and its 02:10 UTC schedule."""

import dagster as dg

from deliverydags.assets.soak import message_soak

nightly_soak_job = dg.define_asset_job(
    "nightly_soak",
    selection=dg.AssetSelection.assets(message_soak),
    description="Tonight's message soak (500 msg/s for 30 min by default).",
)

# Runs the latest partition, which with end_offset=1 is today's (see partitions.py).
nightly_soak_schedule = dg.build_schedule_from_partitioned_job(
    nightly_soak_job, hour_of_day=2, minute_of_hour=10, name="nightly_soak_schedule"
)
