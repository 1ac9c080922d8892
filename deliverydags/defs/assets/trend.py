"""`trend_comparison`: both detectors over the stored history up to the night, each
change reported once (on the night it is confirmed), stale nights flagged; and
`tonight_vs_baseline`, a check of tonight's result against the latest weekly baseline."""

from datetime import UTC, datetime

import dagster as dg

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import ResultsStoreResource
from deliverydags.review import baseline as review_baseline
from deliverydags.review.nights import night_metrics
from deliverydags.review.tables import bullets, table
from deliverydags.review.trend import trend_for_night
from deliverydags.stats.edivisive import EDivisiveConfig
from deliverydags.stats.rule import RuleConfig
from deliverydags.stats.trend import ChangePointConfig


class TrendConfig(dg.Config):
    scenario: str = SOAK_SCENARIO
    rule_threshold: float = 0.10  # the seed: 10 % worse than the last 7 nights ...
    rule_window: int = 7
    rule_run_length: int = 3  # ... 3 nights running
    min_change: float = 0.05  # change points smaller than this are not reported
    confirm_runs: int = 3  # nightly runs in a row that must find a change point
    permutations: int = 99

    def rule(self) -> RuleConfig:
        return RuleConfig(
            threshold=self.rule_threshold, window=self.rule_window, run_length=self.rule_run_length
        )

    def change_points(self) -> ChangePointConfig:
        return ChangePointConfig(
            edivisive=EDivisiveConfig(permutations=self.permutations),
            min_magnitude=self.min_change,
            confirm_runs=self.confirm_runs,
        )


def _rows(rows: list[dict]) -> list[tuple]:
    return [
        (r["metric"], r["detector"], r["night"], r["confirmed_on"], r["magnitude"], r["p_value"])
        for r in rows
    ]


def _markdown(report: dict) -> str:
    head = ("metric", "detector", "since", "confirmed", "magnitude", "p")
    parts = [
        f"**New tonight ({report['night']})** — {len(report['regressions'])} regression(s)",
        table(head, _rows(report["regressions"])) if report["regressions"] else "none",
        f"**Still open** — {len(report['open_regressions'])}",
        table(head, _rows(report["open_regressions"])) if report["open_regressions"] else "none",
        "**Stale nights** (no result 25 h after the night began)",
        bullets(f"{s['night']} ({s['overdue_hours']:.0f} h overdue)" for s in report["stale"]),
    ]
    if report["improvements"]:
        parts += ["**Improvements**", table(head, _rows(report["improvements"]))]
    return "\n\n".join(parts)


@dg.asset(
    partitions_def=nightly_partitions,
    deps=[message_soak],
    group_name="review",
    kinds={"duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            "results_fresh",
            asset="trend_comparison",
            description="Every night up to this one has a result within 25 h of its start.",
        )
    ],
    description="Seed rule + change points over the whole history; new changes reported once.",
)
def trend_comparison(
    context: dg.AssetExecutionContext, config: TrendConfig, results: ResultsStoreResource
) -> dg.MaterializeResult:
    night = context.partition_key
    report = trend_for_night(
        results.store,
        config.scenario,
        night,
        now=datetime.now(UTC),
        rule=config.rule(),
        change_points=config.change_points(),
    )
    for r in report["regressions"]:
        context.log.warning(f"regression: {r['metric']} ({r['detector']}) since {r['night']}")
    stale = [s["night"] for s in report["stale"]]
    return dg.MaterializeResult(
        metadata={
            "new_regressions": len(report["regressions"]),
            "open_regressions": len(report["open_regressions"]),
            "improvements": len(report["improvements"]),
            "warnings": len(report["warnings"]),
            "stale_nights": len(stale),
            "nights_judged": report["nights_judged"],
            "already_reported": report["already_reported"],
            "has_result": report["has_result"],
            "trend": dg.MetadataValue.md(_markdown(report)),
            "report": dg.MetadataValue.json(report),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="results_fresh",
                passed=not stale,
                severity=dg.AssetCheckSeverity.WARN,
                description=(
                    f"No result for {', '.join(stale)}." if stale else "No night is overdue."
                ),
                metadata={"stale_nights": dg.MetadataValue.json(report["stale"])},
            )
        ],
    )


class BaselineCheckConfig(dg.Config):
    scenario: str = SOAK_SCENARIO
    threshold: float = 0.10  # worse than the baseline mean by more than this (relative) ...
    sigmas: float = 3.0  # ... and by more than this many of the week's standard deviations


@dg.asset_check(
    asset=message_soak,
    partitions_def=nightly_partitions,
    description="Tonight against the latest weekly baseline (or the pinned one).",
)
def tonight_vs_baseline(
    context: dg.AssetCheckExecutionContext,
    config: BaselineCheckConfig,
    results: ResultsStoreResource,
) -> dg.AssetCheckResult:
    night = context.partition_key
    store = results.store
    result = store.load(night, config.scenario)
    found = store.latest_baseline(config.scenario, before=night)
    if result is None or found is None:
        missing = "result stored for tonight" if result is None else "baseline of an earlier week"
        return dg.AssetCheckResult(
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"Not judged: no {missing} (materialize baseline_snapshot).",
        )
    week, base = found
    out = review_baseline.compare(base, night_metrics(result), config.threshold, config.sigmas)
    rows = [
        (r["metric"], r["value"], r["mean"], r["std"], r["relative"], r["z"], r["breach"])
        for r in out["rows"]
    ]
    return dg.AssetCheckResult(
        passed=out["passed"],
        severity=dg.AssetCheckSeverity.WARN,
        description=" ".join(out["reasons"]),
        metadata={
            "baseline": f"{base.get('label', week)} (week {week})",
            "breaches": sum(r["breach"] for r in out["rows"]),
            "metrics_judged": out["judged"],
            "comparison": dg.MetadataValue.md(
                table(("metric", "tonight", "mean", "std", "worse by", "z", "breach"), rows)
            ),
        },
    )
