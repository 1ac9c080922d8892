"""A/B comparison of one night from the result's ``by_variant`` counts.

An arm's *sent* is its accepted messages and *delivered* its delivered + late ones, the
same definition as the night's ``delivery_rate``. The control is the configured variant
(default: the first listed); every other variant is compared with it. With more than one
comparison, alpha is split between them (Bonferroni), so a verdict's ``p < alpha`` still
means what it says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deliverydags.stats.ab import compare

KIND = "ab"


def parse_split(text: str) -> dict[str, float]:
    """``llm:0.5,template:0.5`` -> {"llm": 0.5, "template": 0.5} (the DD_VARIANTS syntax)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, share = part.partition(":")
        try:
            out[name.strip()] = float(share) if share else 1.0
        except ValueError:
            raise ValueError(f"bad variant share {part!r}; expected name:share") from None
    return out


def _variants(result: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    by_variant = result.get("by_variant") or {}
    # "" holds messages sent without a variant tag: not an arm.
    return {k: v for k, v in by_variant.items() if k and v.get("attempted", 0) > 0}


def ab_report(
    result: Mapping[str, Any],
    control: str = "",
    split: str = "",
    alpha: float = 0.05,
    mde: float = 0.01,
    power: float = 0.8,
) -> dict[str, Any]:
    arms = _variants(result)
    if len(arms) < 2:
        found = ", ".join(arms) or "none"
        return {
            "variants": list(arms),
            "comparisons": [],
            "verdict": (
                f"Fewer than 2 variants in tonight's result (variants: {found}): "
                "no A/B comparison. Tag messages with the soak's `variants` "
                "(e.g. llm:0.5,template:0.5) to compare them."
            ),
        }
    names = list(arms)
    control = control or names[0]
    if control not in arms:
        raise ValueError(f"control variant {control!r} not in tonight's variants {names}")
    shares = parse_split(split) if split else {}
    others = [n for n in names if n != control]
    level = alpha / len(others)
    comparisons = []
    for name in others:
        a, b = arms[control], arms[name]
        pair = (shares.get(control, 1.0), shares.get(name, 1.0))
        out = compare(
            a["accepted"],
            a["delivered"] + a["late"],
            b["accepted"],
            b["delivered"] + b["late"],
            split=pair,
            alpha=level,
            power=power,
            mde=mde,
        )
        comparisons.append({"control": control, "variant": name, "alpha": level, **out})
    verdict = " ".join(f"[A = {control}, B = {c['variant']}] {c['verdict']}" for c in comparisons)
    return {"variants": names, "control": control, "comparisons": comparisons, "verdict": verdict}
