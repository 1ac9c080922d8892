"""`phase_gate`: tonight's rollout decision (promote / hold / rollback) with the phase
history kept in the results store; optional Keptn-style SLO scoring; on promote or
rollback an optional signed action webhook."""

import dagster as dg
from pydantic import Field

from deliverydags.config import CRITICAL_DELIVERY_RATE, SOAK_SCENARIO
from deliverydags.defs.assets.trend import trend_comparison
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import ResultsStoreResource
from deliverydags.defs.resources.notify import ActionWebhookResource, NotificationError
from deliverydags.review.phase_gate import GateSettings, gate_for_night
from deliverydags.review.tables import bullets, table
from deliverydags.stats.slo import Objective, SLOConfig


class SLOObjectiveConfig(dg.Config):
    """One Keptn objective: ``pass_criteria=[["<=+10%", "<600"]]`` (sets OR, criteria AND)."""

    sli: str
    pass_criteria: list[list[str]] = Field(default_factory=list)
    warning_criteria: list[list[str]] = Field(default_factory=list)
    weight: float = 1.0
    key_sli: bool = False


class GateConfig(dg.Config):
    rollout: str = "delivery"  # "delivery" (95 -> 98 -> 99 -> 99.5 %) or "sms" (audiences)
    scenario: str = SOAK_SCENARIO
    critical_delivery_rate: float = (
        CRITICAL_DELIVERY_RATE  # tonight below this: critical alert, rollback
    )
    slo_objectives: list[SLOObjectiveConfig] = Field(default_factory=list)
    slo_pass_score: float = 90.0
    slo_warning_score: float = 75.0
    slo_aggregate: str = "avg"
    slo_previous_nights: int = 7
    action_webhook_url: str = ""  # POSTed the decision on promote or rollback (signed)

    def settings(self) -> GateSettings:
        slo = None
        if self.slo_objectives:
            slo = SLOConfig(
                tuple(
                    Objective.of(o.sli, o.pass_criteria, o.warning_criteria, o.weight, o.key_sli)
                    for o in self.slo_objectives
                ),
                self.slo_pass_score,
                self.slo_warning_score,
                self.slo_aggregate,  # type: ignore[arg-type]  # checked by evaluate_slo
            )
        return GateSettings(
            rollout=self.rollout,
            scenario=self.scenario,
            slo=slo,
            slo_previous_nights=self.slo_previous_nights,
            critical_delivery_rate=self.critical_delivery_rate or None,
        )


def _call_webhook(
    url: str, detail: dict, webhook: ActionWebhookResource, results: ResultsStoreResource
) -> dg.AssetCheckResult:
    if not detail["changed"] or not url:
        why = "no webhook configured" if detail["changed"] else f"decision is {detail['decision']}"
        return dg.AssetCheckResult(check_name="action_webhook", passed=True, description=why)
    key = (
        f"action:{detail['rollout']}:{detail['scenario']}:{detail['night']}:"
        f"{detail['decision']}:{detail['phase_after']}"
    )
    store = results.store
    if store.notified(key):
        return dg.AssetCheckResult(
            check_name="action_webhook", passed=True, description=f"already called ({key})"
        )
    try:
        reply = webhook.call(url, {"event": "phase_gate", **detail}, key)
    except NotificationError as exc:
        return dg.AssetCheckResult(check_name="action_webhook", passed=False, description=str(exc))
    store.mark_notified(key, "action_webhook", {"status": reply.status, "url": url})
    return dg.AssetCheckResult(
        check_name="action_webhook",
        passed=True,
        description=f"{detail['decision']} sent to {url} (HTTP {reply.status})",
    )


@dg.asset(
    partitions_def=nightly_partitions,
    deps=[trend_comparison],
    group_name="review",
    kinds={"duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            "action_webhook",
            asset="phase_gate",
            description="On promote or rollback the configured action webhook took the call.",
        )
    ],
    description="Rollout phase gate: promote after 7 good nights, hold, or roll back.",
)
def phase_gate(
    context: dg.AssetExecutionContext,
    config: GateConfig,
    results: ResultsStoreResource,
    action_webhook: ActionWebhookResource,
) -> dg.MaterializeResult:
    try:
        settings = config.settings()
        detail = gate_for_night(results.store, settings, context.partition_key)
    except ValueError as exc:  # unknown rollout, bad SLO criterion: a config error
        raise dg.Failure(str(exc), allow_retries=False) from None
    context.log.info(
        f"{detail['rollout']}: {detail['decision']} ({detail['phase_before']} -> "
        f"{detail['phase_after']}): " + " ".join(detail["reasons"])
    )
    meta: dict = {
        "decision": detail["decision"],
        "phase": detail["phase_after"],
        "phase_before": detail["phase_before"],
        "rollout": detail["rollout"],
        "nights_counted": len(detail["nights_counted"]),
        "open_regressions": len(detail["open_regressions"]),
        "reasons": dg.MetadataValue.md(bullets(detail["reasons"])),
        "decision_json": dg.MetadataValue.json(detail),
    }
    if detail["slo"] is not None:
        slo = detail["slo"]
        meta["slo_score"] = float(slo["score"])
        meta["slo_result"] = slo["result"]
        meta["slo"] = dg.MetadataValue.md(
            table(
                ("sli", "value", "status", "score", "weight", "key"),
                [
                    (o["sli"], o["value"], o["status"], o["score"], o["weight"], o["key_sli"])
                    for o in slo["objectives"]
                ],
            )
        )
    check = _call_webhook(config.action_webhook_url, detail, action_webhook, results)
    if not check.passed:
        context.log.error(f"action webhook: {check.description}")
    return dg.MaterializeResult(metadata=meta, check_results=[check])
