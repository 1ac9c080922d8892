"""Rollout phase gate: promote, hold or roll back, night by night.

The rule, for the phase in effect (the last record of the phase history):

- **rollback** when a critical alert is open, or tonight fails a gate of the *previous*
  phase (delivery collapsed below what the phase before already guaranteed). From the
  first phase there is nothing to roll back to: the decision is still ``rollback``
  (stop and look) and the phase stays the first.
- **promote** when every gate of the current phase held on each of the last
  ``nights_required`` (7) calendar nights, all of them after the phase began, and no
  regression is open. A missing night or a failing night breaks the run and the count
  starts again. The last phase is never promoted.
- **hold** otherwise.

The phase history is a plain list of records ``{"night", "phase", "decision"}``, oldest
first; ``GateDecision.record()`` is the record to append. A phase begins the night after
the record that promoted or rolled back to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from deliverydags.stats.history import NightLike, as_night

Op = Literal[">=", ">", "<=", "<"]
Decision = Literal["promote", "hold", "rollback"]

_OPS = {
    ">=": lambda v, lim: v >= lim,
    ">": lambda v, lim: v > lim,
    "<=": lambda v, lim: v <= lim,
    "<": lambda v, lim: v < lim,
}
_FAIL_WORDS = {">=": "below", ">": "not above", "<=": "above", "<": "not below"}


@dataclass(frozen=True)
class Gate:
    metric: str
    op: Op
    limit: float

    def holds(self, value: float | None) -> bool:
        """A missing value never holds: no evidence is not good evidence."""
        if value is None or not math.isfinite(value):
            return False
        return bool(_OPS[self.op](value, self.limit))

    def failure(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return f"{self.metric} has no value"
        return f"{self.metric} {value:.4g} is {_FAIL_WORDS[self.op]} {self.limit:g}"


@dataclass(frozen=True)
class Phase:
    name: str
    gates: tuple[Gate, ...]
    audience: str = ""


@dataclass(frozen=True)
class RolloutConfig:
    name: str
    phases: tuple[Phase, ...]
    nights_required: int = 7

    def index(self, phase: str) -> int:
        for i, p in enumerate(self.phases):
            if p.name == phase:
                return i
        raise ValueError(f"phase {phase!r} is not in rollout {self.name!r}")


def _delivery_phase(limit: float) -> Phase:
    return Phase(f"{limit:.1%}".replace(".0%", "%"), (Gate("delivery_rate", ">=", limit),))


# Delivery targets tighten phase by phase: 95 % -> 98 % -> 99 % -> 99.5 %.
DELIVERY_ROLLOUT = RolloutConfig(
    "delivery", tuple(_delivery_phase(x) for x in (0.95, 0.98, 0.99, 0.995))
)

# SMS rollout: the audience grows, the gates stay the same.
SMS_GATES = (Gate("delivery_rate", ">=", 0.95), Gate("opt_out_rate", "<", 0.05))
SMS_ROLLOUT = RolloutConfig(
    "sms",
    tuple(
        Phase(name, SMS_GATES, audience)
        for name, audience in (
            ("internal", "5 internal users"),
            ("beta", "50 beta users"),
            ("10%", "10% of users"),
            ("25%", "25% of users"),
            ("50%", "50% of users"),
            ("100%", "all users"),
        )
    ),
)


@dataclass(frozen=True)
class GateDecision:
    night: str
    decision: Decision
    phase_before: str
    phase_after: str
    nights_counted: tuple[str, ...]  # newest first
    reasons: tuple[str, ...]

    def record(self) -> dict[str, str]:
        """The phase-history record for this night."""
        return {"night": self.night, "phase": self.phase_after, "decision": self.decision}

    def as_dict(self) -> dict[str, Any]:
        return {
            "night": self.night,
            "decision": self.decision,
            "phase_before": self.phase_before,
            "phase_after": self.phase_after,
            "nights_counted": list(self.nights_counted),
            "reasons": list(self.reasons),
        }


def _current_phase(
    config: RolloutConfig, history: Sequence[Mapping[str, Any]]
) -> tuple[int, date | None]:
    """Index of the phase in effect, and the night of the decision that started it."""
    if not history:
        return 0, None
    index = config.index(str(history[-1]["phase"]))
    began = None
    for record in reversed(history):
        if record.get("decision") in ("promote", "rollback"):
            began = as_night(record["night"])
            break
    return index, began


def _describe_regression(item: str | Mapping[str, Any]) -> str:
    if isinstance(item, str):
        return item
    text = f"{item.get('metric')} ({item.get('detector', 'trend')}"
    magnitude = item.get("magnitude")
    if isinstance(magnitude, int | float):
        text += f", {magnitude:.1%} worse"
    return text + f", since {item.get('night')})"


def decide(
    config: RolloutConfig,
    night: NightLike,
    nightly: Mapping[NightLike, Mapping[str, float | None]],
    phase_history: Sequence[Mapping[str, Any]] = (),
    open_regressions: Sequence[str | Mapping[str, Any]] = (),
    critical_alerts: Sequence[str] = (),
) -> GateDecision:
    """Tonight's decision from ``{night: {metric: value}}`` and the phase history."""
    tonight = as_night(night)
    values = {as_night(k): v for k, v in nightly.items()}
    index, began = _current_phase(config, phase_history)
    phase = config.phases[index]
    need = config.nights_required
    reasons: list[str] = []

    tonight_values = values.get(tonight)
    rollback = False
    for alert in critical_alerts:
        reasons.append(f"Critical alert: {alert}.")
        rollback = True
    if tonight_values is not None and index > 0:
        previous = config.phases[index - 1]
        for gate in previous.gates:
            if not gate.holds(tonight_values.get(gate.metric)):
                reasons.append(
                    f"{tonight}: {gate.failure(tonight_values.get(gate.metric))}, "
                    f"the previous phase's gate ({previous.name})."
                )
                rollback = True

    counted: list[date] = []
    day = tonight
    while len(counted) < need and (began is None or day > began):
        record = values.get(day)
        if record is None or not all(g.holds(record.get(g.metric)) for g in phase.gates):
            break
        counted.append(day)
        day -= timedelta(days=1)

    if rollback:
        after = max(index - 1, 0)
        if index == 0:
            reasons.append(f"Already at the first phase ({phase.name}): stop and investigate.")
        else:
            reasons.append(f"Roll back from {phase.name} to {config.phases[after].name}.")
        return _decision(tonight, "rollback", config, index, after, counted, reasons)

    if tonight_values is None:
        reasons.append(f"No result for {tonight}: the count of good nights starts again.")
    else:
        failing = [g for g in phase.gates if not g.holds(tonight_values.get(g.metric))]
        reasons += [f"{tonight}: {g.failure(tonight_values.get(g.metric))}." for g in failing]
    for item in open_regressions:
        reasons.append(f"Open regression: {_describe_regression(item)}; promotion waits.")
    if len(counted) < need:
        since = f" since the phase began on {began + timedelta(days=1)}" if began else ""
        reasons.append(
            f"{len(counted)} of {need} nights in a row meet the gates of {phase.name}{since}."
        )
    elif index == len(config.phases) - 1:
        reasons.append(f"All gates held for {need} nights; {phase.name} is the last phase.")
    elif not open_regressions:
        nxt = config.phases[index + 1].name
        reasons.append(f"All gates of {phase.name} held on each of the last {need} nights.")
        reasons.append(f"Promote from {phase.name} to {nxt}.")
        return _decision(tonight, "promote", config, index, index + 1, counted, reasons)
    return _decision(tonight, "hold", config, index, index, counted, reasons)


def _decision(
    night: date,
    decision: Decision,
    config: RolloutConfig,
    before: int,
    after: int,
    counted: list[date],
    reasons: list[str],
) -> GateDecision:
    return GateDecision(
        night=night.isoformat(),
        decision=decision,
        phase_before=config.phases[before].name,
        phase_after=config.phases[after].name,
        nights_counted=tuple(d.isoformat() for d in counted),
        reasons=tuple(reasons),
    )
