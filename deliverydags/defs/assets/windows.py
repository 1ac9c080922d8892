"""`delivery_windows`: delivery rate over rolling 1 min / 5 min / 1 h / 24 h windows and
multi-window burn-rate alerts, from the per-message timeline of the night's run files."""

from datetime import UTC, datetime

import dagster as dg

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import ResultsStoreResource
from deliverydags.review.tables import table
from deliverydags.review.windows import KIND, NoRunFiles, windows_report


class WindowsConfig(dg.Config):
    scenario: str = SOAK_SCENARIO
    deadline_s: float = 0.0  # > 0: good = delivered within this many seconds of sending
    step_s: float = 60.0  # evaluate the windows every this many seconds


def _at(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


@dg.asset(
    partitions_def=nightly_partitions,
    deps=[message_soak],
    group_name="review",
    kinds={"duckdb"},
    description="Rolling delivery windows (1m/5m/1h/24h) and burn-rate alerts of the night.",
)
def delivery_windows(
    context: dg.AssetExecutionContext, config: WindowsConfig, results: ResultsStoreResource
) -> dg.MaterializeResult:
    night = context.partition_key
    store = results.store
    result = store.load(night, config.scenario)
    try:
        if result is None:
            raise NoRunFiles(f"no result stored for {night}")
        report = windows_report(result, config.deadline_s or None, config.step_s)
    except NoRunFiles as exc:
        context.log.warning(f"delivery windows not computed: {exc}")
        note = f"Not computed: {exc}."
        store.save_report(night, config.scenario, KIND, {"available": False, "note": note})
        return dg.MaterializeResult(metadata={"available": False, "note": note})
    store.save_report(night, config.scenario, KIND, {"available": True, **report})
    meta: dict = {"available": True, "messages": report["messages"], "good": report["good"]}
    rows = []
    for label, w in report["windows"].items():
        if w["worst_rate"] is not None:
            meta[f"worst_rate_{label}"] = float(w["worst_rate"])
        rows.append(
            (label, w["worst_rate"], _at(w["worst_at"]), w["critical"], w["warning"], w["target"])
        )
    alerts = report["alerts"]
    meta["burn_alerts_page"] = sum(a["severity"] == "page" for a in alerts)
    meta["burn_alerts_ticket"] = sum(a["severity"] == "ticket" for a in alerts)
    meta["windows"] = dg.MetadataValue.md(
        table(("window", "worst rate", "at (UTC)", "< 95 %", "< 98 %", "< 99.5 %"), rows)
        + "\n\nPoints are evaluated every "
        f"{config.step_s:g} s; a band counts the points whose window rate fell in it."
    )
    meta["alerts"] = dg.MetadataValue.json(alerts)
    return dg.MaterializeResult(metadata=meta)
