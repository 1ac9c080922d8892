"""E-divisive: the statistic against scipy's distances, the search, the permutation test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist

from deliverydags.stats import edivisive
from deliverydags.stats.edivisive import EDivisiveConfig, e_divisive, qhat_profile


def qhat_by_definition(x: np.ndarray, tau: int) -> float:
    """Matteson & James' Q-hat for the split x[:tau] | x[tau:], alpha = 1."""
    a, b = x[:tau, None], x[tau:, None]
    n, m = len(a), len(b)
    e = (
        2 * cdist(a, b, "cityblock").mean()
        - pdist(a, "cityblock").mean()
        - pdist(b, "cityblock").mean()
    )
    return n * m / (n + m) * e


@pytest.mark.parametrize("n", [4, 9, 17, 40, 101])
def test_qhat_matches_definition(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.round(rng.normal(50, 10, n), 1)  # rounding makes ties
    x[n // 2 :] += 7
    q = qhat_profile(x, min_size=2)
    for tau in range(2, n - 1):
        want = qhat_by_definition(x, tau)
        assert q[tau] == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert np.isnan(q[:2]).all() and np.isnan(q[n - 1 :]).all()


def test_lower_sums_batch_matches_direct() -> None:
    rng = np.random.default_rng(5)
    for n in (2, 3, 10, 50, 130):
        x = np.round(rng.normal(0, 3, n))
        seg = edivisive._Ranked(x)
        ranks = rng.permuted(np.broadcast_to(seg.rank, (7, n)), axis=1)
        y = seg.values[ranks]
        direct = np.tril(np.abs(y[:, :, None] - y[:, None, :]), -1).sum(axis=2)
        got = edivisive._lower_sums(ranks, seg.values)
        np.testing.assert_allclose(got, direct, rtol=1e-9, atol=1e-9)


def test_finds_a_ten_percent_step_on_its_night() -> None:
    rng = np.random.default_rng(1)
    x = 100 * rng.lognormal(0, 0.01, 120)
    x[77:] *= 1.10
    found = e_divisive(x, seed=3)
    assert [s.index for s in found] == [77]
    assert found[0].p_value == 0.01  # no permutation reached it: 1 / (99 + 1)


def test_finds_several_changes() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, 150)
    x[50:] += 4
    x[100:] -= 8
    assert [s.index for s in e_divisive(x, seed=0)] == [50, 100]


def test_nothing_in_a_constant_or_short_series() -> None:
    assert e_divisive(np.full(50, 3.0)) == []
    assert e_divisive(np.array([1.0, 5.0, 1.0, 5.0, 9.0])) == []


def test_seeded_and_deterministic() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(0, 1, 60)
    x[40:] += 0.9
    cfg = EDivisiveConfig(max_pvalue=0.05, permutations=99)
    assert e_divisive(x, cfg, seed=4) == e_divisive(x, cfg, seed=4)


def test_p_value_resolution() -> None:
    x = np.r_[np.zeros(20), np.ones(20)] + np.random.default_rng(0).normal(0, 0.01, 40)
    cfg = EDivisiveConfig(max_pvalue=0.05, permutations=199)
    (split,) = e_divisive(x, cfg, seed=0)
    assert split.index == 20 and split.p_value == pytest.approx(1 / 200)


def test_false_positive_rate_is_controlled() -> None:
    """Without a change, a change is reported in about max_pvalue of the series."""
    rng = np.random.default_rng(123)
    cfg = EDivisiveConfig(max_pvalue=0.05, permutations=99)
    trials = 300
    hits = sum(bool(e_divisive(rng.normal(0, 1, 40), cfg, seed=rng)) for _ in range(trials))
    rate = hits / trials
    print(f"false positive rate under no change: {rate:.3f} (max_pvalue 0.05)")
    assert rate <= 0.09  # binomial(300, 0.05): mean 15, 99.9 % below 27


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        EDivisiveConfig(min_size=1)
    with pytest.raises(ValueError):
        EDivisiveConfig(max_pvalue=0.001, permutations=99)
    with pytest.raises(ValueError):
        e_divisive(np.array([1.0, np.nan, 2.0]))
