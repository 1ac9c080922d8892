"""The nightly chaos job: every asset in the ``chaos`` group, for one night's partition.
Launched by a sensor once that night's soak is green (see jobs/sensors.py)."""

import dagster as dg

from deliverydags.partitions import nightly_partitions

CHAOS_GROUP = "chaos"

nightly_chaos_job = dg.define_asset_job(
    "nightly_chaos",
    selection=dg.AssetSelection.groups(CHAOS_GROUP),
    partitions_def=nightly_partitions,
    description="Faults injected for real against the reference target, recovery measured.",
)
