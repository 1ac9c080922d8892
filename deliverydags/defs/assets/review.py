"""The nightly review assets in run order, for the nightly job and the definitions."""

from deliverydags.defs.assets.ab import ab_comparison
from deliverydags.defs.assets.gate import phase_gate
from deliverydags.defs.assets.notifications import nightly_notifications
from deliverydags.defs.assets.trend import tonight_vs_baseline, trend_comparison
from deliverydags.defs.assets.windows import delivery_windows

NIGHTLY_REVIEW = (
    trend_comparison,
    phase_gate,
    ab_comparison,
    delivery_windows,
    nightly_notifications,
)
REVIEW_CHECKS = (tonight_vs_baseline,)
