"""The nightly review assets in run order, for the nightly job and the definitions."""

from deliverydags.assets.ab import ab_comparison
from deliverydags.assets.gate import phase_gate
from deliverydags.assets.notifications import nightly_notifications
from deliverydags.assets.trend import tonight_vs_baseline, trend_comparison
from deliverydags.assets.windows import delivery_windows

NIGHTLY_REVIEW = (
    trend_comparison,
    phase_gate,
    ab_comparison,
    delivery_windows,
    nightly_notifications,
)
REVIEW_CHECKS = (tonight_vs_baseline,)
