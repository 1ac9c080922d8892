"""`baseline_snapshot`: per-metric mean / std / median / n of a week's nights (Mon-Sun, UTC).

Weeks start on Mondays; the first is the week holding FIRST_NIGHT, and nights before
FIRST_NIGHT are not asked for. A missing night is listed, never silently skipped. A user
can pin a known-good week or set of nights: the snapshot of every week is then that
baseline, labelled pinned. Recomputed from stored results, so a backfill of many weeks is
one run (single-run backfill policy).
"""

from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.partitions import FIRST_NIGHT
from deliverydags.defs.resources import ResultsStoreResource
from deliverydags.review.baseline import baseline_of, week_nights
from deliverydags.review.tables import fmt, table

_first = date.fromisoformat(FIRST_NIGHT)
FIRST_WEEK = (_first - timedelta(days=_first.weekday())).isoformat()  # its Monday

weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=FIRST_WEEK, day_offset=1, timezone="UTC"
)


class BaselineConfig(dg.Config):
    scenario: str = SOAK_SCENARIO
    pinned_week: str = ""  # Monday (YYYY-MM-DD) of a known-good week
    pinned_nights: list[str] = Field(default_factory=list)  # or known-good nights


def _nights(config: BaselineConfig, week: str) -> tuple[list[str], str]:
    if config.pinned_nights:
        return sorted(config.pinned_nights), f"pinned nights {', '.join(config.pinned_nights)}"
    if config.pinned_week:
        return week_nights(config.pinned_week, FIRST_NIGHT), f"pinned week {config.pinned_week}"
    return week_nights(week, FIRST_NIGHT), f"week of {week}"


def _metadata(week: str, label: str, base: dict, weeks: list[str]) -> dict:
    meta: dict = {
        "baseline_from": label,
        "pinned": base["pinned"],
        "nights_present": len(base["present"]),
        "nights_missing": len(base["missing"]),
        "missing_nights": ", ".join(base["missing"]) or "none",
    }
    for name, m in base["metrics"].items():
        key = name.replace(".", "_")
        for stat in ("mean", "std", "median"):
            if m[stat] is not None:
                meta[f"{key}_{stat}"] = float(m[stat])
    rows = [
        (name, m["n"], m["mean"], m["std"], m["median"], ", ".join(m["nights_without_value"]))
        for name, m in base["metrics"].items()
    ]
    head = f"Baseline for week {week} from {label}"
    if len(weeks) > 1:
        head += f" (one run computed {len(weeks)} weeks, {weeks[0]} to {weeks[-1]}; shown: last)"
    meta["baseline"] = dg.MetadataValue.md(
        f"{head}. Missing nights: {fmt(', '.join(base['missing']) or 'none')}.\n\n"
        + table(("metric", "n", "mean", "std", "median", "nights without value"), rows)
    )
    meta["baseline_json"] = dg.MetadataValue.json(base)
    return meta


@dg.asset(
    partitions_def=weekly_partitions,
    deps=[
        dg.AssetDep(
            message_soak,
            partition_mapping=dg.TimeWindowPartitionMapping(
                allow_nonexistent_upstream_partitions=True
            ),
        )
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="review",
    kinds={"duckdb"},
    description="Per-metric mean, std, median and n over the week's nights (or pinned ones).",
)
def baseline_snapshot(
    context: dg.AssetExecutionContext, config: BaselineConfig, results: ResultsStoreResource
) -> dg.MaterializeResult:
    store = results.store
    weeks = list(context.partition_keys)
    base, label = {}, ""
    for week in weeks:
        nights, label = _nights(config, week)
        pinned = bool(config.pinned_nights or config.pinned_week)
        base = baseline_of(store, config.scenario, nights, pinned=pinned)
        store.save_baseline(week, config.scenario, {**base, "week": week, "label": label})
        if base["missing"]:
            context.log.warning(f"week {week}: no result for {', '.join(base['missing'])}")
    return dg.MaterializeResult(metadata=_metadata(weeks[-1], label, base, weeks))
