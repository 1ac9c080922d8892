"""Delivery rate over rolling windows, and multi-window burn-rate alerts.

Inputs are per-message arrays: send time (seconds, any epoch), whether it was delivered,
and when (NaN when not). A message is *good* when it was delivered (within
``deadline_s`` of its send time when one is given). A window ``(t - w, t]`` holds the
messages *sent* in it, judged by their final fate, so a window's rate does not improve
just because its receipts are still on the way.

Burn rate = error ratio / (1 - SLO): 1 spends the error budget exactly over the SLO
period. The alerts follow the Google SRE workbook (ch. 5, "multiwindow, multi-burn-rate"):
an alert fires at ``t`` when the burn rate exceeds the threshold over *both* its long
window (enough budget is gone to matter) and its short window (it is still happening,
so the alert stops soon after the problem does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

WINDOWS_S: dict[str, float] = {"1m": 60.0, "5m": 300.0, "1h": 3600.0, "24h": 86400.0}
SLO = 0.995
# Rate thresholds and their labels, most severe first.
LEVELS: tuple[tuple[float, str], ...] = ((0.95, "critical"), (0.98, "warning"), (0.995, "target"))


@dataclass(frozen=True)
class BurnRule:
    severity: str
    long_s: float
    short_s: float
    burn: float


BURN_RULES: tuple[BurnRule, ...] = (
    BurnRule("page", 3600.0, 300.0, 14.4),  # 2 % of a 30-day budget in 1 h
    BurnRule("ticket", 21600.0, 1800.0, 6.0),  # 5 % of a 30-day budget in 6 h
)


def good_mask(
    sent_at: np.ndarray,
    delivered: np.ndarray,
    delivered_at: np.ndarray | None = None,
    deadline_s: float | None = None,
) -> np.ndarray:
    good = np.asarray(delivered, dtype=bool)
    if deadline_s is not None:
        if delivered_at is None:
            raise ValueError("a deadline needs delivered_at")
        latency = np.asarray(delivered_at, np.float64) - np.asarray(sent_at, np.float64)
        with np.errstate(invalid="ignore"):
            good = good & (latency <= deadline_s)
    return good


def eval_times(sent_at: np.ndarray, step_s: float) -> np.ndarray:
    """A grid every ``step_s`` covering the sends (the last point at or after the last send)."""
    if len(sent_at) == 0:
        return np.empty(0)
    first = np.ceil(np.min(sent_at) / step_s) * step_s
    last = np.ceil(np.max(sent_at) / step_s) * step_s
    return np.arange(first, last + step_s / 2, step_s)


def window_counts(
    sent_at: np.ndarray, good: np.ndarray, window_s: float, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(sent, good) counts of messages sent in (t - window_s, t] for every t in ``at``."""
    order = np.argsort(sent_at, kind="stable")
    times = np.asarray(sent_at, np.float64)[order]
    good_cum = np.concatenate([[0], np.cumsum(np.asarray(good, bool)[order])])
    hi = np.searchsorted(times, at, side="right")
    lo = np.searchsorted(times, np.asarray(at) - window_s, side="right")
    return hi - lo, good_cum[hi] - good_cum[lo]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def rolling_rates(
    sent_at: np.ndarray,
    good: np.ndarray,
    windows: Mapping[str, float] = WINDOWS_S,
    at: np.ndarray | None = None,
    step_s: float = 60.0,
) -> dict[str, Any]:
    """``{"t": times, label: {"sent", "good", "rate"}}``; rate is NaN where nothing was sent."""
    times = eval_times(np.asarray(sent_at), step_s) if at is None else np.asarray(at, float)
    out: dict[str, Any] = {"t": times}
    for label, width in windows.items():
        sent, ok = window_counts(sent_at, good, width, times)
        out[label] = {"sent": sent, "good": ok, "rate": _ratio(ok, sent)}
    return out


def classify(rate: np.ndarray | float) -> np.ndarray:
    """'critical' (< 95 %), 'warning' (< 98 %), 'target' (< 99.5 %: below target),
    'ok' (at or above target), 'no_data' (NaN)."""
    r = np.asarray(rate, dtype=np.float64)
    out = np.full(r.shape, "ok", dtype=object)
    for limit, label in reversed(LEVELS):  # most severe last, so it wins
        out[r < limit] = label
    out[np.isnan(r)] = "no_data"
    return out


def burn_rate(rate: np.ndarray, slo: float = SLO) -> np.ndarray:
    return (1.0 - np.asarray(rate, np.float64)) / (1.0 - slo)


def _intervals(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def burn_alerts(
    sent_at: np.ndarray,
    good: np.ndarray,
    slo: float = SLO,
    rules: Sequence[BurnRule] = BURN_RULES,
    at: np.ndarray | None = None,
    step_s: float = 60.0,
) -> list[dict[str, Any]]:
    """Firing intervals of each rule: both windows' burn rate above its threshold."""
    times = eval_times(np.asarray(sent_at), step_s) if at is None else np.asarray(at, float)
    alerts = []
    for rule in rules:
        burns = []
        for width in (rule.long_s, rule.short_s):
            sent, ok = window_counts(sent_at, good, width, times)
            burns.append(burn_rate(_ratio(ok, sent), slo))
        with np.errstate(invalid="ignore"):
            firing = (burns[0] > rule.burn) & (burns[1] > rule.burn)
        for start, end in _intervals(firing):
            alerts.append(
                {
                    "severity": rule.severity,
                    "long_window_s": rule.long_s,
                    "short_window_s": rule.short_s,
                    "burn_threshold": rule.burn,
                    "start": float(times[start]),
                    "end": float(times[end]),
                    "peak_burn_long": float(np.nanmax(burns[0][start : end + 1])),
                    "peak_burn_short": float(np.nanmax(burns[1][start : end + 1])),
                }
            )
    return sorted(alerts, key=lambda a: (a["start"], a["severity"]))


def delivery_windows(
    sent_at: np.ndarray,
    delivered: np.ndarray,
    delivered_at: np.ndarray | None = None,
    *,
    deadline_s: float | None = None,
    slo: float = SLO,
    step_s: float = 60.0,
) -> dict[str, Any]:
    """Report: per window, the worst rate and how many points fell in each band; alerts."""
    sent_at = np.asarray(sent_at, np.float64)
    good = good_mask(sent_at, delivered, delivered_at, deadline_s)
    rates = rolling_rates(sent_at, good, step_s=step_s)
    windows = {}
    for label in WINDOWS_S:
        rate = rates[label]["rate"]
        bands = classify(rate)
        seen = ~np.isnan(rate)
        worst = int(np.nanargmin(rate)) if seen.any() else None
        windows[label] = {
            "worst_rate": None if worst is None else float(rate[worst]),
            "worst_at": None if worst is None else float(rates["t"][worst]),
            **{name: int(np.count_nonzero(bands == name)) for _, name in LEVELS},
        }
    return {
        "messages": int(sent_at.size),
        "good": int(np.count_nonzero(good)),
        "windows": windows,
        "alerts": burn_alerts(sent_at, good, slo, step_s=step_s),
    }
