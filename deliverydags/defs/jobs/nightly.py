"""The nightly soak job and its 02:10 UTC schedule."""

import dagster as dg

from deliverydags.defs.assets.review import NIGHTLY_REVIEW
from deliverydags.defs.partitions import latest_partition_schedule, nightly_partitions
from deliverydags.run.scenario import DELIVERY

nightly_soak_job = dg.define_asset_job(
    "nightly_soak",
    # Every delivery scenario; the review runs in the same run, after the soak: its
    # blocking checks stop it.
    selection=dg.AssetSelection.groups(DELIVERY) | dg.AssetSelection.assets(*NIGHTLY_REVIEW),
    # One load at a time: two scenarios under load at once would measure each other.
    executor_def=dg.multiprocess_executor.configured({"max_concurrent": 1}),
    description="Tonight's message soak (500 msg/s for 30 min by default).",
)

# Runs the latest partition, which with end_offset=1 is today's (see partitions.py).
nightly_soak_schedule = latest_partition_schedule(
    nightly_soak_job, nightly_partitions, "10 2 * * *", "nightly_soak_schedule"
)
