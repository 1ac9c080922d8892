"""The chaos domain: the chaos scenarios' assets (one per fault), the nightly chaos job
launched after a green soak, and the notifications that follow it."""

import dagster as dg

from deliverydags.defs.assets.catalog import group_assets
from deliverydags.defs.jobs.chaos import chaos_notifications_job, nightly_chaos_job
from deliverydags.defs.jobs.sensors import chaos_after_green_soak, notify_after_chaos
from deliverydags.run.scenario import CHAOS

defs = dg.Definitions(
    assets=group_assets(CHAOS),
    jobs=[nightly_chaos_job, chaos_notifications_job],
    sensors=[chaos_after_green_soak, notify_after_chaos],
)
