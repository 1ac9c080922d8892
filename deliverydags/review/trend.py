"""Trend review: both detectors for one night, each change reported once; the CLI overview.

Once-only reporting: a finding (a row of ``analysis.trend``) is recorded in the store on
the night it is first confirmed. Judging night N passes the findings confirmed *before*
N as already reported, so

- a later night never reports it again (``new_changes`` drops it),
- re-running N reproduces N's report (the same finding, its first report time kept),
- a finding recorded for N that a re-run no longer finds is still listed (never lost).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from deliverydags.history.store import ResultsStore
from deliverydags.review.nights import history_of, stored_metrics
from deliverydags.stats import rule as seed_rule
from deliverydags.stats.history import History, as_night
from deliverydags.stats.trend import (
    ChangePointConfig,
    detect_changes,
    judge,
    rule_rows,
    stale_nights,
)

TOLERANCE_NIGHTS = 3  # the change-point night moves by a night or two as data arrives
KIND = "trend"


def _key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (row["metric"], row["detector"], row["night"])


def same_finding(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Rule findings match exactly; change points within ``TOLERANCE_NIGHTS``."""
    if (a["metric"], a["detector"], a["direction"]) != (b["metric"], b["detector"], b["direction"]):
        return False
    if a["detector"] == "rule":
        return a["night"] == b["night"]
    return abs((as_night(a["night"]) - as_night(b["night"])).days) <= TOLERANCE_NIGHTS


def acknowledged(row: Mapping[str, Any], acks: Iterable[tuple[str, str]]) -> bool:
    for metric, night in acks:
        if metric != row["metric"]:
            continue
        days = abs((as_night(night) - as_night(row["night"])).days)
        if days == 0 or (row["detector"] == "change_point" and days <= TOLERANCE_NIGHTS):
            return True
    return False


def open_regressions(
    history: History,
    recorded: list[dict],
    acks: set[tuple[str, str]],
    change_points: ChangePointConfig | None = None,
    rule: seed_rule.RuleConfig | None = None,
) -> list[dict]:
    """Regressions still going on the history's last night and not acknowledged: the seed
    rule's open run, and recorded change points whose new level still holds."""
    regressions, _ = rule_rows(history, rule or seed_rule.RuleConfig())
    rows = [r for r in regressions if r["open"]]
    for change in detect_changes(history, change_points):
        row = change.as_row()
        worse_now = row["direction"] == "worse" and row["open"]
        if worse_now and any(same_finding(row, f) for f in recorded):
            rows.append(row)
    return [r for r in rows if not acknowledged(r, acks)]


def _stale(now: datetime, per_night: Mapping[str, Any], upto: str | None) -> list[dict]:
    if not per_night:
        return []
    rows = stale_nights(now, list(per_night), first_night=min(per_night))
    return [s for s in rows if upto is None or s["night"] <= upto]


def trend_for_night(
    store: ResultsStore,
    scenario: str,
    night: str,
    now: datetime | None = None,
    rule: seed_rule.RuleConfig | None = None,
    change_points: ChangePointConfig | None = None,
) -> dict[str, Any]:
    """Judge ``night`` on the stored history up to it, record what it confirms, store the
    report (kind ``trend``) and return it."""
    now = now or datetime.now(UTC)
    per_night = stored_metrics(store, scenario, upto=night)
    history = history_of(per_night, last=night)
    earlier = store.findings(scenario, confirmed_before=night)
    report: dict[str, Any] = {"regressions": [], "warnings": [], "improvements": []}
    if history is not None:
        # Only change points are matched against what was reported: the seed rule's
        # rows are once-only by construction (reported on the night a run completes).
        reported = [f for f in earlier if f["detector"] == "change_point"]
        report = judge(
            history, rule=rule, change_points=change_points, reported=reported, since=night
        )
        store.save_findings(scenario, report["regressions"] + report["improvements"])
    recorded = {_key(f): f for f in store.findings(scenario) if f["confirmed_on"] == night}
    for kind in ("regressions", "improvements"):
        found = {_key(r) for r in report[kind]}
        worse = kind == "regressions"
        report[kind] = [
            {**r, "first_reported_at": recorded.get(_key(r), {}).get("first_reported_at")}
            for r in report[kind]
        ] + [  # recorded for this night earlier, not found again: still reported
            f
            for k, f in recorded.items()
            if k not in found and (f["direction"] == "worse") == worse
        ]
    acks = store.acks(scenario)
    all_recorded = [f for f in store.findings(scenario) if f["confirmed_on"] <= night]
    out = {
        "night": night,
        "scenario": scenario,
        "has_result": night in per_night,
        "nights_judged": len(per_night),
        "first_night": min(per_night) if per_night else None,
        "regressions": report["regressions"],
        "improvements": report["improvements"],
        "warnings": report["warnings"],
        "open_regressions": (
            open_regressions(history, all_recorded, acks, change_points, rule) if history else []
        ),
        "already_reported": len(earlier),
        "stale": _stale(now, per_night, night),
        "judged_at": now.isoformat(),
    }
    store.save_report(night, scenario, KIND, out)
    return out


def trend_overview(
    store: ResultsStore, scenario: str, now: datetime | None = None
) -> dict[str, Any]:
    """Every regression over the whole stored history (the seed rule's, the change points
    found now, and those the nightly job recorded), each marked acknowledged or not; and
    the stale nights up to now."""
    now = now or datetime.now(UTC)
    per_night = stored_metrics(store, scenario)
    history = history_of(per_night)
    rows: list[dict] = []
    if history is not None:
        rows = judge(history)["regressions"]
    for f in store.findings(scenario):
        if f["direction"] == "worse" and not any(same_finding(f, r) for r in rows):
            rows.append(f)
    acks = store.acks(scenario)
    for row in rows:
        row["acknowledged"] = acknowledged(row, acks)
    rows.sort(key=lambda r: (r["confirmed_on"], r["metric"], r["detector"]))
    return {
        "scenario": scenario,
        "nights": len(per_night),
        "first_night": min(per_night) if per_night else None,
        "last_night": max(per_night) if per_night else None,
        "regressions": rows,
        "unacknowledged": sum(not r["acknowledged"] for r in rows),
        "stale": _stale(now, per_night, None),
    }


def recent_stale_nights(
    store: ResultsStore, scenario: str, now: datetime, days: int
) -> list[dict[str, Any]]:
    """Stale nights among the last ``days`` nights (from the first stored night on)."""
    nights = [n for n, _ in store.nights(scenario)]
    if not nights:
        return []
    since = (now.date() - timedelta(days=days)).isoformat()
    return stale_nights(now, nights, first_night=max(min(nights), since))
