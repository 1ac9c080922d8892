"""Multi-objective SLO scoring the way Keptn's lighthouse service does it.

Each objective names an SLI (a metric), ``pass`` and ``warning`` criteria and a weight:

- ``pass`` and ``warning`` are lists of criteria *sets*: one satisfied set is enough (OR),
  and every criterion inside a set must hold (AND). A criterion is an operator
  (``<``, ``<=``, ``=``, ``>=``, ``>``) and a number: ``"<=600"`` is a fixed threshold,
  ``"<=+10%"`` / ``"<=-5%"`` / ``"<+20"`` compare with the aggregate (avg by default) of
  previous values. With no previous values a relative criterion holds.
- pass scores the full weight, warning half, fail 0. An objective without pass criteria
  is informative: status ``info``, not scored. A missing SLI value fails.
- score = 100 * points / (sum of weights of scored objectives); 100 when nothing is
  scored. ``pass`` at >= ``pass_score`` (90 %), ``warning`` at >= ``warning_score``
  (75 %), else ``fail``. A failed *key* objective makes the result ``fail`` whatever the
  score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["pass", "warning", "fail", "info"]
Aggregate = Literal["avg", "p50", "p90", "p95"]

_CRITERION = re.compile(r"^(<=|>=|<|>|=)([+-]?)(\d+(?:\.\d*)?|\.\d+)(%?)$")


@dataclass(frozen=True)
class Criterion:
    text: str
    op: str
    value: float
    relative: bool  # compare with previous values, not a fixed number
    percent: bool
    increase: bool

    @classmethod
    def parse(cls, text: str) -> Criterion:
        match = _CRITERION.match(text.replace(" ", ""))
        if not match:
            raise ValueError(f"invalid SLO criterion {text!r} (e.g. '<=600', '<=+10%')")
        op, sign, number, percent = match.groups()
        # As Keptn: '%' always means relative to previous values; so does a sign.
        return cls(text, op, float(number), bool(sign or percent), bool(percent), sign != "-")

    def target(self, baseline: float | None) -> float | None:
        if not self.relative:
            return self.value
        if baseline is None:
            return None
        if self.percent:
            factor = 100.0 + self.value if self.increase else 100.0 - self.value
            return baseline * factor / 100.0
        return baseline + self.value if self.increase else baseline - self.value

    def holds(self, measured: float, baseline: float | None) -> tuple[bool, float | None]:
        target = self.target(baseline)
        if target is None:  # relative, nothing to compare with: holds (as Keptn)
            return True, None
        ok = {
            "<": measured < target,
            "<=": measured <= target,
            "=": measured == target,
            ">=": measured >= target,
            ">": measured > target,
        }[self.op]
        return ok, target


def _sets(spec: Sequence[Sequence[str] | str]) -> tuple[tuple[Criterion, ...], ...]:
    out = []
    for item in spec:
        texts = [item] if isinstance(item, str) else list(item)
        out.append(tuple(Criterion.parse(t) for t in texts))
    return tuple(out)


@dataclass(frozen=True)
class Objective:
    sli: str
    pass_criteria: tuple[tuple[Criterion, ...], ...] = ()
    warning_criteria: tuple[tuple[Criterion, ...], ...] = ()
    weight: float = 1.0
    key_sli: bool = False

    @classmethod
    def of(
        cls,
        sli: str,
        pass_: Sequence[Sequence[str] | str] = (),
        warning: Sequence[Sequence[str] | str] = (),
        weight: float = 1.0,
        key_sli: bool = False,
    ) -> Objective:
        """``Objective.of("latency_ms.p95", pass_=[["<=+10%", "<600"]], warning=["<=800"])``."""
        return cls(sli, _sets(pass_), _sets(warning), float(weight), key_sli)


@dataclass(frozen=True)
class SLOConfig:
    objectives: tuple[Objective, ...]
    pass_score: float = 90.0
    warning_score: float = 75.0
    aggregate: Aggregate = "avg"

    @classmethod
    def from_keptn(cls, slo: Mapping[str, Any]) -> SLOConfig:
        """From a Keptn ``slo.yaml`` document (already parsed)."""
        objectives = []
        for obj in slo.get("objectives") or []:
            objectives.append(
                Objective.of(
                    obj["sli"],
                    [c["criteria"] for c in obj.get("pass") or []],
                    [c["criteria"] for c in obj.get("warning") or []],
                    float(obj.get("weight", 1)),
                    bool(obj.get("key_sli", False)),
                )
            )
        total = slo.get("total_score") or {}
        comparison = slo.get("comparison") or {}
        return cls(
            tuple(objectives),
            float(str(total.get("pass", "90%")).rstrip("%")),
            float(str(total.get("warning", "75%")).rstrip("%")),
            comparison.get("aggregate_function", "avg"),
        )


def aggregate(values: Sequence[float], how: Aggregate = "avg") -> float | None:
    """Keptn's aggregate of previous values (its percentile interpolates at p * (n + 1))."""
    if not values:
        return None
    if how == "avg":
        return sum(values) / len(values)
    p = {"p50": 0.5, "p90": 0.9, "p95": 0.95}[how]
    ordered = sorted(values)
    pos = p * (len(ordered) + 1)
    if pos < 1:
        return ordered[0]
    if pos >= len(ordered):
        return ordered[-1]
    lower, upper = ordered[int(pos) - 1], ordered[int(pos)]
    return lower + (pos - math.floor(pos)) * (upper - lower)


def _any_set(
    sets: tuple[tuple[Criterion, ...], ...], value: float, baseline: float | None
) -> tuple[bool, list[dict[str, Any]]]:
    satisfied, targets = False, []
    for criteria in sets:
        results = [(c, *c.holds(value, baseline)) for c in criteria]
        satisfied |= all(ok for _, ok, _ in results)
        targets += [{"criteria": c.text, "target": t, "violated": not ok} for c, ok, t in results]
    return satisfied, targets


def evaluate_slo(
    config: SLOConfig,
    values: Mapping[str, float | None],
    previous: Sequence[Mapping[str, float | None]] = (),
) -> dict[str, Any]:
    """Score ``values`` (SLI -> value) against ``config``; ``previous`` for relative criteria."""
    rows, points, maximum, key_failed = [], 0.0, 0.0, False
    for obj in config.objectives:
        scored = bool(obj.pass_criteria)
        maximum += obj.weight if scored else 0.0
        value = values.get(obj.sli)
        row: dict[str, Any] = {
            "sli": obj.sli,
            "value": value,
            "weight": obj.weight,
            "key_sli": obj.key_sli,
            "targets": [],
        }
        if value is None or not math.isfinite(value):
            status, score = "fail", 0.0
        elif not scored:
            status, score = "info", 0.0
        else:
            history = [
                float(p[obj.sli])
                for p in previous
                if p.get(obj.sli) is not None and math.isfinite(float(p[obj.sli]))
            ]
            baseline = aggregate(history, config.aggregate)
            passed, row["targets"] = _any_set(obj.pass_criteria, value, baseline)
            warned = False
            if not passed and obj.warning_criteria:
                warned, warn_targets = _any_set(obj.warning_criteria, value, baseline)
                row["targets"] = warn_targets + row["targets"]
            status = "pass" if passed else "warning" if warned else "fail"
            score = obj.weight if passed else 0.5 * obj.weight if warned else 0.0
        key_failed |= obj.key_sli and status == "fail"
        points += score
        rows.append({**row, "status": status, "score": score})
    total = 100.0 if maximum == 0 else 100.0 * points / maximum
    if key_failed:
        result = "fail"
    elif total >= config.pass_score:
        result = "pass"
    elif total >= config.warning_score:
        result = "warning"
    else:
        result = "fail"
    reasons = [
        f"Score {total:.1f}% (pass at {config.pass_score:g}%, "
        f"warning at {config.warning_score:g}%): {result}."
    ]
    reasons += [
        f"Key objective {r['sli']} failed: the result is fail whatever the score."
        for r in rows
        if r["key_sli"] and r["status"] == "fail"
    ]
    return {
        "score": total,
        "result": result,
        "key_sli_failed": key_failed,
        "objectives": rows,
        "reasons": reasons,
    }
