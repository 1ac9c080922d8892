"""Tonight's rollout decision with the phase history kept in the results store.

The phase history is the list of decisions already recorded for the rollout and
scenario, each night at most once (re-running a night replaces its decision). Keptn-style
SLO scoring, when configured, adds one gate to every phase: the night's SLO evaluation
(against the nights before it) must *pass*; ``warning`` and ``fail`` do not count.
Tonight's delivery below ``critical_delivery_rate`` is a critical alert: rollback.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from deliverydags.config import CRITICAL_DELIVERY_RATE, SOAK_SCENARIO
from deliverydags.history.store import ResultsStore
from deliverydags.review import trend
from deliverydags.review.nights import Metrics, history_of, stored_metrics
from deliverydags.stats.metrics import METRIC_NAMES
from deliverydags.stats.phase_gate import (
    DELIVERY_ROLLOUT,
    SMS_ROLLOUT,
    Gate,
    RolloutConfig,
    decide,
)
from deliverydags.stats.slo import SLOConfig, evaluate_slo

ROLLOUTS: dict[str, RolloutConfig] = {"delivery": DELIVERY_ROLLOUT, "sms": SMS_ROLLOUT}
SLO_METRIC = "slo.pass"  # 1.0 when the night's SLO evaluation passed, else 0.0
KIND = "gate"


@dataclass(frozen=True)
class GateSettings:
    rollout: str = "delivery"
    scenario: str = SOAK_SCENARIO
    slo: SLOConfig | None = None
    slo_previous_nights: int = 7  # what relative SLO criteria compare with
    critical_delivery_rate: float | None = CRITICAL_DELIVERY_RATE

    def config(self) -> RolloutConfig:
        try:
            base = ROLLOUTS[self.rollout]
        except KeyError:
            raise ValueError(
                f"unknown rollout {self.rollout!r}; known: {', '.join(ROLLOUTS)}"
            ) from None
        if self.slo is None:
            return base
        slo_gate = Gate(SLO_METRIC, ">=", 1.0)
        phases = tuple(replace(p, gates=(*p.gates, slo_gate)) for p in base.phases)
        return replace(base, phases=phases)


def _extra_metrics(config: RolloutConfig, slo: SLOConfig | None) -> list[str]:
    names = {g.metric for p in config.phases for g in p.gates}
    names |= {o.sli for o in slo.objectives} if slo else set()
    return sorted(names - set(METRIC_NAMES) - {SLO_METRIC})


def _score_slo(
    per_night: dict[str, Metrics], slo: SLOConfig, previous: int
) -> dict[str, dict[str, Any]]:
    """Each night's SLO evaluation against the ``previous`` stored nights before it."""
    nights = sorted(per_night)
    out = {}
    for i, night in enumerate(nights):
        before = [per_night[n] for n in nights[max(0, i - previous) : i]]
        out[night] = evaluate_slo(slo, per_night[night], before)
        per_night[night][SLO_METRIC] = 1.0 if out[night]["result"] == "pass" else 0.0
    return out


def _critical(tonight: Metrics | None, night: str, limit: float | None) -> list[str]:
    rate = (tonight or {}).get("delivery_rate")
    if limit is None or rate is None or rate >= limit:
        return []
    return [f"delivery rate {rate:.2%} on {night} is below {limit:.0%}"]


def _open_regressions(store: ResultsStore, scenario: str, night: str, per_night: dict) -> list:
    """From tonight's trend report; computed here when trend_comparison has not run
    (the CLI on imported history)."""
    report = store.load_report(night, scenario, trend.KIND)
    if report is not None:
        return report["open_regressions"]
    history = history_of(per_night, last=night)
    if history is None:
        return []
    recorded = [f for f in store.findings(scenario) if f["confirmed_on"] <= night]
    return trend.open_regressions(history, recorded, store.acks(scenario))


def gate_for_night(
    store: ResultsStore, settings: GateSettings, night: str, record: bool = True
) -> dict[str, Any]:
    """Decide ``night``; with ``record`` store the decision (and report) in the store."""
    config = settings.config()
    extra = _extra_metrics(config, settings.slo)
    per_night = stored_metrics(store, settings.scenario, upto=night, extra=extra)
    slo_eval = (
        _score_slo(per_night, settings.slo, settings.slo_previous_nights).get(night)
        if settings.slo
        else None
    )
    history = store.phase_history(config.name, settings.scenario, before=night)
    open_regs = _open_regressions(store, settings.scenario, night, per_night)
    critical = _critical(per_night.get(night), night, settings.critical_delivery_rate)
    decision = decide(config, night, per_night, history, open_regs, critical)
    reasons = list(decision.reasons) + (slo_eval["reasons"] if slo_eval else [])
    detail = {
        **decision.as_dict(),
        "reasons": reasons,
        "rollout": config.name,
        "scenario": settings.scenario,
        "audience": next(p.audience for p in config.phases if p.name == decision.phase_after),
        "gates": {
            p.name: [f"{g.metric} {g.op} {g.limit:g}" for g in p.gates] for p in config.phases
        },
        "previous_decisions": len(history),
        "open_regressions": open_regs,
        "critical_alerts": critical,
        "critical_delivery_rate": settings.critical_delivery_rate,  # notify pages on it too
        "slo": slo_eval,
        "changed": decision.decision in ("promote", "rollback"),
    }
    if record:
        store.save_decision(config.name, settings.scenario, detail)
        store.save_report(night, settings.scenario, f"{KIND}:{config.name}", detail)
    return detail
