"""`nightly_notifications`: the night's Slack summary, one Slack message per new
regression or gate change, PagerDuty for critical alerts (resolved by the next green
night); each sent at most once.

Its own asset so that Slack or PagerDuty being down fails only this step: the night's
measurements and decisions upstream are already materialized and stay so.
"""

import dagster as dg

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.assets.ab import ab_comparison
from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.assets.gate import phase_gate
from deliverydags.defs.assets.trend import trend_comparison
from deliverydags.defs.assets.windows import delivery_windows
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import ResultsStoreResource
from deliverydags.defs.resources.notify import PagerDutyResource, SlackResource
from deliverydags.defs.resources.notify.dispatch import dispatch
from deliverydags.notify.messages import (
    Links,
    chaos_key,
    chaos_update,
    plan,
    summary_key,
)
from deliverydags.review.tables import bullets


class NotifyConfig(dg.Config):
    scenario: str = SOAK_SCENARIO
    ui_base_url: str = "http://localhost:3000"  # the Dagster UI the links point to
    # Tonight below this pages PagerDuty. Unset: phase_gate's own, which rolls back on it.
    critical_delivery_rate: float | None = None


def _soak_run_id(context: dg.AssetExecutionContext, night: str) -> str | None:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=message_soak.key, asset_partitions=[night]), limit=1
    ).records
    return records[0].run_id if records else None


@dg.asset(
    partitions_def=nightly_partitions,
    deps=[message_soak, trend_comparison, phase_gate, ab_comparison, delivery_windows],
    group_name="review",
    kinds={"slack"},
    description="Slack summary, regression and gate messages; PagerDuty pages. Never twice.",
)
def nightly_notifications(
    context: dg.AssetExecutionContext,
    config: NotifyConfig,
    results: ResultsStoreResource,
    slack: SlackResource,
    pagerduty: PagerDutyResource,
) -> dg.MaterializeResult:
    night, store = context.partition_key, results.store
    reports = store.reports(night, config.scenario)
    gates = [r for kind, r in reports.items() if kind.startswith("gate:")]
    windows = reports.get("windows")
    links = Links(config.ui_base_url, _soak_run_id(context, night), context.run.run_id)
    # Chaos runs after the soak's review: what is stored when the summary goes is in it;
    # what is stored later goes out as its own message on the next run of this asset.
    chaos = store.chaos_results(night)
    summary_sent = store.notified(summary_key(config.scenario, night))
    outgoing = plan(
        night,
        config.scenario,
        store.load(night, config.scenario),
        reports.get("trend"),
        gates,
        reports.get("ab"),
        windows if windows and windows.get("available") else None,
        links,
        chaos=() if summary_sent else chaos,
        open_pages=store.open_pages(),
        critical_rate=config.critical_delivery_rate,
    )
    if chaos and summary_sent:
        outgoing.append(chaos_update(night, chaos, links))
    done = dispatch(outgoing, store, slack, pagerduty)
    if chaos and summary_key(config.scenario, night) in done.sent:
        store.mark_notified(chaos_key(night, chaos), "slack", {"in": "summary"})
    for line in done.status_lines():
        context.log.info(line)
    failure = done.failure_line()
    if failure:
        raise dg.Failure(failure, allow_retries=False)
    return dg.MaterializeResult(
        metadata={
            "sent": len(done.sent),
            "already_sent": len(done.already_sent),
            "slack": "not configured" if not slack.configured else "configured",
            "pagerduty": "not configured" if not pagerduty.configured else "configured",
            "status": dg.MetadataValue.md(bullets(done.status_lines())),
            "sent_keys": dg.MetadataValue.json(done.sent),
        }
    )
