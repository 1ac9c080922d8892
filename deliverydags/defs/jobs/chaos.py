"""The nightly chaos job: every chaos scenario's asset (the ``chaos`` group), for one
night's partition. Launched by a sensor once that night's soak is green (see jobs/sensors.py)."""

import dagster as dg

from deliverydags.defs.assets.notifications import nightly_notifications
from deliverydags.run.scenario import CHAOS

nightly_chaos_job = dg.define_asset_job(
    "nightly_chaos",
    selection=dg.AssetSelection.groups(CHAOS),
    # One scenario at a time: two faults under load at once would measure each other.
    executor_def=dg.multiprocess_executor.configured({"max_concurrent": 1}),
    description="Faults injected for real against the reference target, recovery measured.",
)


# Re-runs the night's notifications after its chaos job: only what was not sent yet goes
# out (the chaos figures), since every message is sent at most once.
chaos_notifications_job = dg.define_asset_job(
    "chaos_notifications",
    selection=dg.AssetSelection.assets(nightly_notifications),
    description="Send the night's chaos figures to Slack once its chaos job finished.",
)
