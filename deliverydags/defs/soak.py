"""The nightly soak's domain: the asset, its job and schedule, and the deploy sensor that
re-runs it when the target's version changes."""

import dagster as dg

from deliverydags.defs.assets.soak import message_soak
from deliverydags.defs.jobs.nightly import nightly_soak_job, nightly_soak_schedule
from deliverydags.defs.jobs.sensors import deploy_change_sensor

defs = dg.Definitions(
    assets=[message_soak],
    jobs=[nightly_soak_job],
    schedules=[nightly_soak_schedule],
    sensors=[deploy_change_sensor],
)
