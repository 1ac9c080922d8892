"""A/B comparison against scipy/statsmodels and the textbook formulas."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, chisquare, norm
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from deliverydags.stats.ab import compare, sample_size_per_arm

TOL = 1e-9


def wilson(k: int, n: int, z: float = norm.ppf(0.975)) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe (1998) method 10: the hybrid score interval for p1 - p2."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt(
        (u1 - p1) ** 2 + (p2 - l2) ** 2
    )


arms = st.integers(20, 200_000).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n - 1)))


@settings(max_examples=60, deadline=None)
@given(arms, arms)
def test_every_number_matches_the_libraries(a: tuple[int, int], b: tuple[int, int]) -> None:
    (sa, da), (sb, db) = a, b
    r = compare(sa, da, sb, db)
    for arm, (sent, delivered) in (("a", a), ("b", b)):
        lib = proportion_confint(delivered, sent, alpha=0.05, method="wilson")
        assert r[arm]["rate"] == delivered / sent
        assert r[arm]["ci_low"] == pytest.approx(lib[0], abs=TOL)
        assert r[arm]["ci_high"] == pytest.approx(lib[1], abs=TOL)
        assert (r[arm]["ci_low"], r[arm]["ci_high"]) == pytest.approx(
            wilson(delivered, sent), abs=TOL
        )
    low, high = confint_proportions_2indep(db, sb, da, sa, method="newcomb", compare="diff")
    assert r["diff"] == pytest.approx(db / sb - da / sa, abs=TOL)
    assert (r["diff_ci_low"], r["diff_ci_high"]) == pytest.approx((low, high), abs=TOL)
    assert (r["diff_ci_low"], r["diff_ci_high"]) == pytest.approx(newcombe(db, sb, da, sa), abs=TOL)
    _, p = proportions_ztest([db, da], [sb, sa])
    _, p_chi, _, _ = chi2_contingency([[da, sa - da], [db, sb - db]], correction=False)
    assert r["p_value"] == pytest.approx(p, abs=TOL)
    assert r["p_value"] == pytest.approx(p_chi, abs=TOL)
    _, p_srm = chisquare([sa, sb], [(sa + sb) / 2, (sa + sb) / 2])
    assert r["srm_p_value"] == pytest.approx(p_srm, abs=TOL)
    assert r["srm"] == (p_srm < 0.001)


def power_at(n: float, h: float, alpha: float = 0.05) -> float:
    z = norm.ppf(1 - alpha / 2)
    shift = h * math.sqrt(n / 2)
    return norm.cdf(shift - z) + norm.cdf(-shift - z)


@pytest.mark.parametrize(
    ("rate", "mde"), [(0.999, 0.005), (0.95, 0.01), (0.5, 0.05), (0.003, 0.005)]
)
def test_sample_size_is_the_smallest_with_80_percent_power(rate: float, mde: float) -> None:
    n = sample_size_per_arm(rate, mde)
    target = rate - mde if rate >= mde else rate + mde
    h = abs(float(proportion_effectsize(rate, target)))
    assert power_at(n, h) >= 0.8 > power_at(n - 1, h)
    closed_form = 2 * (norm.ppf(0.975) + norm.ppf(0.8)) ** 2 / h**2  # ignores the far tail
    assert n == math.ceil(closed_form)


def test_verdicts() -> None:
    worse = compare(100_000, 99_900, 100_000, 99_500)
    assert worse["p_value"] < 1e-9 and not worse["srm"]
    assert worse["verdict"].startswith("B delivers worse than A: B 99.50% vs A 99.90% (-0.40%")
    same = compare(10_000, 9_990, 10_000, 9_989, mde=0.0005)
    assert same["verdict"].startswith("No significant difference")
    assert f"{same['sample_size_per_arm']} per arm are needed" in same["verdict"]
    big = compare(400_000, 399_600, 400_000, 399_590)
    assert "with 400000 per arm a drop of 0.50% would have shown" in big["verdict"]
    srm = compare(50_000, 49_950, 48_000, 47_950)
    assert srm["srm"] and srm["verdict"].startswith("Sample ratio mismatch")
    planned = compare(75_000, 74_900, 25_000, 24_970, split=(0.75, 0.25))
    assert not planned["srm"]


def test_edge_cases() -> None:
    perfect = compare(1000, 1000, 1000, 1000)
    assert perfect["p_value"] == 1.0 and perfect["a"]["ci_high"] == pytest.approx(1.0)
    empty = compare(0, 0, 500, 490)
    assert empty["a"]["rate"] is None and empty["verdict"] == (
        "Arm A sent nothing: there is nothing to compare."
    )
    assert set(empty) == set(perfect)
    with pytest.raises(ValueError):
        compare(10, 11, 10, 5)
