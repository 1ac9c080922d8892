"""The seed rule: exact semantics on scripted series; a slow reference for the fast one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deliverydags.stats.rule import RuleConfig, scan

LOWER = np.array([1.0])  # worse_sign for a lower-is-better metric
HIGHER = np.array([-1.0])


def col(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)[:, None]


def kinds(result, kind: str) -> list[int]:
    return [e.night_index for e in result.events if e.kind == kind]


def test_step_confirmed_on_third_night_with_frozen_baseline() -> None:
    # 10.5 % step: against a rolling window it would read 8.9 % on its second night.
    x = [100.0] * 10 + [110.5] * 5
    r = scan(col(x), LOWER)
    assert kinds(r, "regression") == [12]
    event = next(e for e in r.events if e.kind == "regression")
    assert event.run_start_index == 10 and event.reference == 100.0
    assert event.magnitude == pytest.approx(0.105)
    assert kinds(r, "warning") == [10, 11]  # nights before confirmation warn
    assert r.open_regression[0]


def test_exactly_ten_percent_is_not_more_than_ten() -> None:
    r = scan(col([100.0] * 10 + [110.0] * 5), LOWER)
    assert kinds(r, "regression") == []
    assert kinds(r, "warning") == [10, 11, 12, 13]  # night 14: its window holds 4 steps
    r = scan(col([1.0] * 10 + [0.9] * 5), HIGHER)  # (1 - 0.9) / 1 is 0.09999999999999998
    assert kinds(r, "regression") == []


def test_direction_aware() -> None:
    assert kinds(scan(col([0.99] * 8 + [0.85] * 3), HIGHER), "regression") == [10]
    assert kinds(scan(col([0.85] * 8 + [0.99] * 3), HIGHER), "regression") == []
    assert kinds(scan(col([100.0] * 8 + [80.0] * 3), LOWER), "regression") == []


def test_a_good_night_resets_the_run() -> None:
    x = [100.0] * 7 + [120, 120, 100, 120, 120] + [100.0]
    r = scan(col(x), LOWER)
    assert kinds(r, "regression") == []
    assert not r.open_regression[0]


def test_missing_night_neither_breaks_nor_counts() -> None:
    x = [100.0] * 7 + [120, math.nan, 120, 120]
    r = scan(col(x), LOWER)
    assert kinds(r, "regression") == [10]
    assert math.isnan(r.relative[8, 0])


def test_fewer_than_window_prior_nights_are_not_judged() -> None:
    x = [100.0, 100, 100, 100, 200, 200, 200, 200, 200, 200]
    r = scan(col(x), LOWER)
    assert np.isnan(r.relative[:7, 0]).all()
    assert not np.isnan(r.relative[7:, 0]).any()
    assert r.events[0].night_index == 7  # first judged night; window mean 157.1
    assert r.reference[7, 0] == pytest.approx((400 + 600) / 7)
    # Gaps do not shorten the window: it is the 7 *observed* nights before.
    y = [100.0, math.nan, 100, 100, 100, 100, 100, math.nan, 100, 130]
    r = scan(col(y), LOWER)
    assert np.isnan(r.relative[:9, 0]).all() and r.relative[9, 0] == pytest.approx(0.3)


def test_zero_reference() -> None:
    r = scan(col([0.0] * 7 + [1.0, 2.0, 1.0, 0.0]), LOWER)
    assert kinds(r, "regression") == [9]
    event = next(e for e in r.events if e.kind == "regression")
    assert event.magnitude == math.inf and event.reference == 0.0
    assert not r.open_regression[0]  # the fourth night was back at 0
    assert r.relative[10, 0] == 0.0
    assert scan(col([0.0] * 8), LOWER).relative[7, 0] == 0.0


def test_single_night_warning_threshold() -> None:
    r = scan(col([100.0] * 7 + [106.0, 100, 104.0]), LOWER)
    assert kinds(r, "warning") == [7]
    assert kinds(r, "regression") == []


def test_regression_closes_when_values_return() -> None:
    x = [100.0] * 7 + [120.0] * 4 + [101.0] + [100.0] * 3
    r = scan(col(x), LOWER)
    assert kinds(r, "regression") == [9]
    assert not r.open_regression[0]
    assert kinds(r, "warning") == [7, 8]  # no repeat while the regression is open


def test_configurable() -> None:
    config = RuleConfig(threshold=0.2, warn_threshold=0.1, window=3, run_length=2)
    r = scan(col([100.0] * 3 + [125.0, 125.0]), LOWER, config)
    assert kinds(r, "regression") == [4]


def reference_rule(x: np.ndarray, sign: float, cfg: RuleConfig) -> tuple[list, np.ndarray]:
    """The rule written the slow, obvious way, one metric, one night at a time."""
    obs = [i for i in range(len(x)) if math.isfinite(x[i])]
    events, rel_out = [], np.full(len(x), np.nan)
    run_start, run_len = None, 0
    for k, t in enumerate(obs):
        anchor = run_start if run_len else k
        if anchor < cfg.window:
            run_len = 0
            continue
        ref = float(np.mean([x[obs[j]] for j in range(anchor - cfg.window, anchor)]))
        delta = sign * (x[t] - ref)
        rel = (
            (0.0 if delta == 0 else math.copysign(math.inf, delta))
            if ref == 0
            else (delta / abs(ref))
        )
        rel_out[t] = rel
        if rel > cfg.threshold + 1e-12:
            if run_len == 0:
                run_start = k
            run_len += 1
            if run_len == cfg.run_length:
                events.append(("regression", t))
        else:
            run_len = 0
        if rel > cfg.warn_threshold + 1e-12 and run_len < cfg.run_length:
            events.append(("warning", t))
    return events, rel_out


def test_vectorised_matches_reference() -> None:
    rng = np.random.default_rng(11)
    cfg = RuleConfig()
    x = np.exp(rng.normal(0, 0.08, (200, 12))) * 100
    x[rng.random(x.shape) < 0.05] = np.nan
    x[120:, 3] *= 1.2
    x[:, 5] = np.round(rng.poisson(0.3, 200))  # zeros: infinite relatives
    signs = np.where(np.arange(12) % 2 == 0, 1.0, -1.0)
    r = scan(x, signs, cfg)
    for m in range(12):
        expected, rel = reference_rule(x[:, m], signs[m], cfg)
        got = sorted((e.kind, e.night_index) for e in r.events if e.metric_index == m)
        assert got == sorted(expected), m
        both = np.isfinite(rel) & np.isfinite(r.relative[:, m])
        assert np.array_equal(np.isnan(rel), np.isnan(r.relative[:, m]))
        np.testing.assert_allclose(r.relative[both, m], rel[both], rtol=1e-9, atol=1e-12)


def test_stationary_year_raises_nothing() -> None:
    rng = np.random.default_rng(2025)
    delivery = np.minimum(0.999 + rng.normal(0, 0.0003, 365), 1.0)
    latency = 120.0 * rng.lognormal(0, 0.01, 365)
    r = scan(np.column_stack([delivery, latency]), np.array([-1.0, 1.0]))
    assert r.events == ()
