"""The nightly soak job and its 02:10 UTC schedule."""

import dagster as dg

from deliverydags.assets.review import NIGHTLY_REVIEW
from deliverydags.assets.soak import message_soak

nightly_soak_job = dg.define_asset_job(
    "nightly_soak",
    # The review runs in the same run, after the soak: its blocking checks stop it.
    selection=dg.AssetSelection.assets(message_soak, *NIGHTLY_REVIEW),
    description="Tonight's message soak (500 msg/s for 30 min by default).",
)

# Runs the latest partition, which with end_offset=1 is today's (see partitions.py).
nightly_soak_schedule = dg.build_schedule_from_partitioned_job(
    nightly_soak_job, hour_of_day=2, minute_of_hour=10, name="nightly_soak_schedule"
)
