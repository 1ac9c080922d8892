"""Two arms, A (control) and B (variant), compared on delivery rate.

Every quantity comes from the library that defines it, so the numbers are the ones a
statistician would get:

- per-arm rate with a Wilson score interval (``proportion_confint(method="wilson")``);
- ``diff = rate_b - rate_a`` with Newcombe's hybrid score interval
  (``confint_proportions_2indep(method="newcomb")``);
- two-sided two-proportion z-test with pooled variance (``proportions_ztest``; the same p
  as a chi-square test of the 2x2 table without continuity correction);
- sample ratio mismatch: chi-square goodness of fit of the arm sizes against the planned
  split (``scipy.stats.chisquare``), ``srm`` when p < 0.001;
- sample size per arm to detect a *drop* of ``mde`` (absolute) from A's rate at
  ``power`` and ``alpha``, two-sided, equal arms: ``NormalIndPower`` on Cohen's h
  (``proportion_effectsize``), rounded up.
"""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import chisquare
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

SRM_ALPHA = 0.001


def _arm(sent: int, delivered: int, alpha: float) -> dict[str, Any]:
    if sent == 0:
        return {"sent": 0, "delivered": 0, "rate": None, "ci_low": None, "ci_high": None}
    low, high = proportion_confint(delivered, sent, alpha=alpha, method="wilson")
    return {
        "sent": sent,
        "delivered": delivered,
        "rate": delivered / sent,
        "ci_low": float(low),
        "ci_high": float(high),
    }


def two_proportion_p(sent_a: int, delivered_a: int, sent_b: int, delivered_b: int) -> float:
    """Two-sided pooled z-test p; 1.0 when both arms are all-delivered or all-lost."""
    pooled = (delivered_a + delivered_b) / (sent_a + sent_b)
    if pooled in (0.0, 1.0):
        return 1.0  # no variance: the arms cannot differ
    _, p = proportions_ztest([delivered_b, delivered_a], [sent_b, sent_a])
    return float(p)


def srm_p(sent_a: int, sent_b: int, split: tuple[float, float] = (0.5, 0.5)) -> float:
    total = sent_a + sent_b
    share = split[0] / (split[0] + split[1])
    _, p = chisquare([sent_a, sent_b], [total * share, total * (1 - share)])
    return float(p)


def sample_size_per_arm(rate: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Messages per arm to detect ``rate`` -> ``rate - mde`` (two-sided, equal arms)."""
    target = rate - mde if rate - mde >= 0 else rate + mde
    h = abs(float(proportion_effectsize(rate, target)))
    if h == 0:
        raise ValueError("mde must be non-zero")
    n = NormalIndPower().solve_power(
        effect_size=h, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    return math.ceil(float(n) - 1e-9)


def _pct(x: float) -> str:
    return f"{x:.2%}"


def compare(
    sent_a: int,
    delivered_a: int,
    sent_b: int,
    delivered_b: int,
    *,
    split: tuple[float, float] = (0.5, 0.5),
    alpha: float = 0.05,
    power: float = 0.8,
    mde: float = 0.005,
) -> dict[str, Any]:
    """The A/B report: arms, difference, p-values, SRM, sample size and a verdict."""
    for name, sent, delivered in (("a", sent_a, delivered_a), ("b", sent_b, delivered_b)):
        if sent < 0 or delivered < 0 or delivered > sent:
            raise ValueError(f"arm {name}: need 0 <= delivered ({delivered}) <= sent ({sent})")
    a, b = _arm(sent_a, delivered_a, alpha), _arm(sent_b, delivered_b, alpha)
    out: dict[str, Any] = {
        "a": a,
        "b": b,
        "diff": None,
        "diff_ci_low": None,
        "diff_ci_high": None,
        "p_value": None,
        "srm_p_value": None,
        "srm": False,
        "sample_size_per_arm": None,
    }
    if sent_a == 0 or sent_b == 0:
        empty = "A" if sent_a == 0 else "B"
        out["verdict"] = f"Arm {empty} sent nothing: there is nothing to compare."
        return out
    low, high = confint_proportions_2indep(
        delivered_b, sent_b, delivered_a, sent_a, method="newcomb", compare="diff", alpha=alpha
    )
    out.update(
        diff=b["rate"] - a["rate"],
        diff_ci_low=float(low),
        diff_ci_high=float(high),
        p_value=two_proportion_p(sent_a, delivered_a, sent_b, delivered_b),
        srm_p_value=srm_p(sent_a, sent_b, split),
    )
    out["srm"] = out["srm_p_value"] < SRM_ALPHA
    out["sample_size_per_arm"] = sample_size_per_arm(a["rate"], mde, alpha, power)
    out["verdict"] = _verdict(out, alpha, mde)
    return out


def _verdict(r: dict[str, Any], alpha: float, mde: float) -> str:
    a, b = r["a"], r["b"]
    ci = f"{1 - alpha:.0%} CI {r['diff_ci_low']:+.2%} to {r['diff_ci_high']:+.2%}"
    if r["srm"]:
        return (
            f"Sample ratio mismatch (p = {r['srm_p_value']:.2g}): the arms are not the "
            f"planned split ({a['sent']} vs {b['sent']}), so the comparison cannot be trusted."
        )
    rates = f"B {_pct(b['rate'])} vs A {_pct(a['rate'])}"
    if r["p_value"] < alpha:
        word = "worse" if r["diff"] < 0 else "better"
        return (
            f"B delivers {word} than A: {rates} ({r['diff']:+.2%}, {ci}, p = {r['p_value']:.2g})."
        )
    need = r["sample_size_per_arm"]
    enough = min(a["sent"], b["sent"]) >= need
    tail = (
        f"with {min(a['sent'], b['sent'])} per arm a drop of {mde:.2%} would have shown"
        if enough
        else f"{need} per arm are needed to detect a drop of {mde:.2%}"
    )
    return f"No significant difference: {rates} ({ci}, p = {r['p_value']:.2g}); {tail}."
