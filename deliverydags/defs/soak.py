"""The nightly delivery domain: the delivery scenarios' assets (the soak first), their
job and schedule, and the deploy sensor that re-runs them when the target's version
changes."""

import dagster as dg

from deliverydags.defs.assets.catalog import group_assets
from deliverydags.defs.jobs.nightly import nightly_soak_job, nightly_soak_schedule
from deliverydags.defs.jobs.sensors import deploy_change_sensor
from deliverydags.run.scenario import DELIVERY

defs = dg.Definitions(
    assets=group_assets(DELIVERY),
    jobs=[nightly_soak_job],
    schedules=[nightly_soak_schedule],
    sensors=[deploy_change_sensor],
)
