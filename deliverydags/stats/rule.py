"""The seed's regression rule, vectorised across metrics.

Precisely, for each metric separately and only over *observed* nights (nights with a
value; a missing night is skipped, neither breaking nor extending anything, and the
staleness check reports it):

- The reference of a night is the mean of the ``window`` (7) observed nights before it.
  While a breach run is going on, the reference stays frozen at the ``window`` nights
  before the run began: otherwise the run's own bad nights drag the mean towards them
  (a 10 % step judged against a window holding 1 and 2 bad nights reads as 8.4 % and
  6.9 % and would never make 3 nights).
- Fewer than ``window`` observed nights before the reference point: the night is not
  judged (no warning, no breach) and any run in progress ends.
- ``relative`` is how much worse the night is than the reference, relative to
  ``abs(reference)``, signed so worse is positive. A zero reference has no scale: an
  equal value is 0, any move the bad way +inf, the good way -inf (0 lost on every night
  of the week, then 1 lost, is a breach).
- A breach is ``relative > threshold`` (strictly more, as the seed says: exactly 10 %
  is not a breach). ``run_length`` (3) consecutive observed breaches confirm a
  regression, reported once, on the night that completes the run. It stays *open* while
  the run goes on and closes on the first judged night that is not a breach.
- A warning is a night with ``relative > warn_threshold`` that is not part of an
  already confirmed run (the nights before confirmation do warn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

# Relative changes are ratios of floats: (1.1 - 1.0) / 1.0 is 0.10000000000000009.
# Compare with a tolerance far below any threshold anyone would configure.
_TOL = 1e-12


@dataclass(frozen=True)
class RuleConfig:
    threshold: float = 0.10
    warn_threshold: float = 0.05
    window: int = 7
    run_length: int = 3

    def __post_init__(self) -> None:
        if self.window < 1 or self.run_length < 1:
            raise ValueError("window and run_length must be at least 1")


@dataclass(frozen=True)
class RuleEvent:
    kind: Literal["regression", "warning"]
    metric_index: int
    night_index: int  # the night it is reported on
    run_start_index: int  # first night of the breach run (the night itself for warnings)
    magnitude: float  # relative change that night, worse positive (inf: zero reference)
    reference: float
    value: float


@dataclass(frozen=True)
class RuleScan:
    relative: np.ndarray  # (nights, metrics); NaN where not judged
    reference: np.ndarray  # (nights, metrics); NaN where not judged
    breach: np.ndarray  # (nights, metrics) bool
    open_regression: np.ndarray  # (metrics,) bool: a confirmed run still going on the last night
    events: tuple[RuleEvent, ...]


def worse_relative(values: np.ndarray, reference: np.ndarray, worse_sign: np.ndarray) -> np.ndarray:
    """Vectorised ``baseline.relative_change``: worse positive, +-inf for a zero reference."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _worse_relative(values, reference, worse_sign)


def _worse_relative(values: np.ndarray, reference: np.ndarray, sign: np.ndarray) -> np.ndarray:
    delta = sign * (values - reference)
    scaled = delta / np.abs(reference)
    at_zero = np.where(delta == 0, 0.0, np.copysign(np.inf, delta))
    return np.where(reference == 0, at_zero, scaled)


def _prefix_by_observation(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """P[j, m] = sum of the first j observed values of metric m (gaps squeezed out)."""
    nights, metrics = values.shape
    before = np.cumsum(observed, axis=0) - observed
    running = np.cumsum(np.where(observed, values, 0.0), axis=0)
    prefix = np.zeros((nights + 1, metrics))
    rows, cols = np.nonzero(observed)
    prefix[before[rows, cols] + 1, cols] = running[rows, cols]
    return prefix


def scan(values: np.ndarray, worse_sign: np.ndarray, config: RuleConfig = RuleConfig()) -> RuleScan:
    """Apply the rule to every metric of ``values`` (nights x metrics, NaN = missing)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("values must be 2-D (nights x metrics)")
    nights, metrics = x.shape
    sign = np.broadcast_to(np.asarray(worse_sign, dtype=np.float64), (metrics,))
    window, needed = config.window, config.run_length
    observed = np.isfinite(x)
    before = np.cumsum(observed, axis=0) - observed  # observed nights before each night
    prefix = _prefix_by_observation(x, observed)
    cols = np.arange(metrics)

    relative = np.full_like(x, np.nan)
    reference = np.full_like(x, np.nan)
    breach = np.zeros_like(observed)
    confirmed = np.zeros_like(observed)
    warned = np.zeros_like(observed)
    run_start_at = np.full(x.shape, -1)

    in_run = np.zeros(metrics, dtype=bool)
    run_obs_start = np.zeros(metrics, dtype=np.int64)  # reference point, in observed nights
    run_night_start = np.zeros(metrics, dtype=np.int64)
    run_len = np.zeros(metrics, dtype=np.int64)
    # Zero references divide by zero and missing nights are NaN: both are handled.
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(nights):
            seen = observed[t]
            end = np.where(in_run, run_obs_start, before[t])
            judged = seen & (end >= window)
            ref = (prefix[end, cols] - prefix[np.maximum(end - window, 0), cols]) / window
            rel = _worse_relative(x[t], ref, sign)
            hit = judged & (rel > config.threshold + _TOL)

            starting = hit & ~in_run
            run_obs_start = np.where(starting, before[t], run_obs_start)
            run_night_start = np.where(starting, t, run_night_start)
            # An observed night that is not a breach (judged or not) ends the run;
            # a missing night leaves it as it was.
            run_len = np.where(hit, run_len + 1, np.where(seen, 0, run_len))
            in_run = run_len > 0

            relative[t] = np.where(judged, rel, np.nan)
            reference[t] = np.where(judged, ref, np.nan)
            breach[t] = hit
            confirmed[t] = hit & (run_len == needed)
            warned[t] = judged & (rel > config.warn_threshold + _TOL) & (run_len < needed)
            run_start_at[t] = np.where(confirmed[t], run_night_start, -1)

    def events_of(kind: Literal["regression", "warning"], mask: np.ndarray) -> list[RuleEvent]:
        t, m = np.nonzero(mask)
        start = run_start_at[t, m] if kind == "regression" else t
        columns = (t, m, start, relative[t, m], reference[t, m], x[t, m])
        rows = zip(*(c.tolist() for c in columns), strict=True)
        return [RuleEvent(kind, mi, ti, si, rel, ref, v) for ti, mi, si, rel, ref, v in rows]

    events = events_of("regression", confirmed) + events_of("warning", warned)
    events.sort(key=lambda e: (e.night_index, e.metric_index, e.kind))
    return RuleScan(relative, reference, breach, run_len >= needed, tuple(events))
