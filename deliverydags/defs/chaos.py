"""The chaos domain: one asset per fault, the nightly chaos job launched after a green
soak, and the notifications that follow it."""

import dagster as dg

from deliverydags.defs.assets.chaos_consumer_kill import chaos_consumer_kill
from deliverydags.defs.assets.chaos_memory import chaos_memory
from deliverydags.defs.assets.chaos_pool_exhaustion import chaos_pool_exhaustion
from deliverydags.defs.assets.chaos_redis_outage import chaos_redis_outage
from deliverydags.defs.jobs.chaos import chaos_notifications_job, nightly_chaos_job
from deliverydags.defs.jobs.sensors import chaos_after_green_soak, notify_after_chaos

defs = dg.Definitions(
    assets=[chaos_memory, chaos_consumer_kill, chaos_redis_outage, chaos_pool_exhaustion],
    jobs=[nightly_chaos_job, chaos_notifications_job],
    sensors=[chaos_after_green_soak, notify_after_chaos],
)
