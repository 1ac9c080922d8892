"""The review's domain: what the nights mean (windows, trend, baseline, phase gate, A/B,
notifications), history imports, and the jobs, schedule and sensors that drive them."""

import dagster as dg

from deliverydags.defs.assets.baseline import baseline_snapshot
from deliverydags.defs.assets.imports import imported_results
from deliverydags.defs.assets.review import NIGHTLY_REVIEW, REVIEW_CHECKS
from deliverydags.defs.jobs.review import (
    history_import_job,
    nightly_review_job,
    review_after_failed_night,
    stale_results_sensor,
    weekly_baseline_job,
    weekly_baseline_schedule,
)

defs = dg.Definitions(
    assets=[*NIGHTLY_REVIEW, baseline_snapshot, imported_results],
    asset_checks=[*REVIEW_CHECKS],
    jobs=[nightly_review_job, weekly_baseline_job, history_import_job],
    schedules=[weekly_baseline_schedule],
    sensors=[stale_results_sensor, review_after_failed_night],
)
