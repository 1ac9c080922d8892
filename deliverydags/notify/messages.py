"""What the nightly notifications say, and their dedup keys. Plain code, no I/O.

- Slack: one summary per night and scenario; one message per new regression; one per
  gate change (promote or rollback).
- PagerDuty (critical): delivery below 95 %, or a rollback; resolved by the scenario's
  next green night (passed, nothing to page).

A key is sent at most once, ever (recorded in the results store after a success). Slack
blocks are built with slack-sdk's Block Kit models, within Slack's limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from deliverydags.config import CRITICAL_DELIVERY_RATE

# Slack rejects a message beyond these (invalid_blocks); slack-sdk's models know the first two.
HEADER_LIMIT = HeaderBlock.text_max_length  # 150
SECTION_LIMIT = SectionBlock.text_max_length  # 3000
MAX_BLOCKS = 50


@dataclass(frozen=True)
class Links:
    ui_base_url: str
    soak_run_id: str | None = None
    this_run_id: str | None = None

    def run(self, run_id: str) -> str:
        return f"{self.ui_base_url.rstrip('/')}/runs/{run_id}"

    def asset(self, key: str, night: str) -> str:
        return f"{self.ui_base_url.rstrip('/')}/assets/{key}?partition={quote(night)}"


@dataclass(frozen=True)
class Outgoing:
    key: str
    channel: Literal["slack", "pagerduty"]
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    action: Literal["trigger", "resolve"] = "trigger"  # PagerDuty's event_action


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=_fit(text, HEADER_LIMIT)))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_fit(text, SECTION_LIMIT)))


def _blocks(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """The message's blocks as JSON, at most MAX_BLOCKS: the last one (the links) is kept,
    what does not fit before it is counted in a note. ``to_dict`` validates each."""
    if len(blocks) > MAX_BLOCKS:
        keep = MAX_BLOCKS - 2
        note = _section(f"… {len(blocks) - keep - 1} more block(s) not shown")
        blocks = [*blocks[:keep], note, blocks[-1]]
    return [b.to_dict() for b in blocks]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3%}"


def _regression_line(r: Mapping[str, Any]) -> str:
    size = "" if r.get("magnitude") is None else f" {r['magnitude']:+.1%}"
    p = "" if r.get("p_value") is None else f", p = {r['p_value']:.2g}"
    return f"`{r['metric']}`{size} ({r['detector']}, since {r['night']}{p})"


def _result_text(result: Mapping[str, Any] | None) -> str:
    if result is None:
        return ":grey_question: *No stored result for this night.*"
    counts = result.get("counts") or {}
    lat = result.get("latency_ms") or {}
    icon = ":white_check_mark:" if result.get("status") == "passed" else ":x:"
    keys = ("attempted", "accepted", "delivered", "late", "lost", "duplicates", "out_of_order")
    line = ", ".join(f"{k} {counts[k]}" for k in keys if k in counts)
    p95, p99 = lat.get("p95"), lat.get("p99")
    latency = "" if p95 is None else f"\nlatency p95 {p95:.1f} ms, p99 {(p99 or 0):.1f} ms"
    return (
        f"{icon} *{str(result.get('status', 'unknown')).upper()}* — delivery rate "
        f"*{_pct(result.get('delivery_rate'))}*\n{line}{latency}"
    )


def _secs(value: float | None) -> str:
    return "not recovered" if value is None else f"{value:.1f} s"


def _chaos_line(result: Mapping[str, Any]) -> str:
    """One chaos scenario of the night: its fault and recovery figures."""
    c = result.get("chaos") or {}
    icon = ":white_check_mark:" if result.get("status") == "passed" else ":x:"
    detect = c.get("time_to_detect_s")
    dlq = c.get("dlq")
    return (
        f"{icon} `{result.get('scenario')}` ({c.get('fault', '?')}): "
        f"{str(result.get('status', 'unknown')).upper()} — detect "
        f"{'n/a' if detect is None else f'{detect:.1f} s'}, recover "
        f"{_secs(c.get('time_to_recover_s'))}, lost {c.get('lost', '?')}, duplicates "
        f"{c.get('duplicates', '?')}, DLQ {'n/a' if dlq is None else dlq}"
    )


def _links_block(links: Links, night: str) -> ContextBlock:
    parts = []
    if links.soak_run_id:
        parts.append(f"<{links.run(links.soak_run_id)}|soak run>")
    if links.this_run_id and links.this_run_id != links.soak_run_id:
        parts.append(f"<{links.run(links.this_run_id)}|this run>")
    parts.append(f"<{links.asset('message_soak', night)}|message_soak {night}>")
    return ContextBlock(elements=[MarkdownTextObject(text=_fit(" · ".join(parts), SECTION_LIMIT))])


def summary(
    night: str,
    scenario: str,
    result: Mapping[str, Any] | None,
    trend: Mapping[str, Any] | None,
    gates: Sequence[Mapping[str, Any]],
    ab: Mapping[str, Any] | None,
    windows: Mapping[str, Any] | None,
    links: Links,
    chaos: Sequence[Mapping[str, Any]] = (),
) -> Outgoing:
    """The night's one summary message; ``chaos``: the night's stored chaos results."""
    blocks: list[Block] = [_header(f"{scenario} — {night}"), _section(_result_text(result))]
    if trend is not None:
        new = trend.get("regressions") or []
        lines = [_regression_line(r) for r in new] or ["No new regression."]
        still = len(trend.get("open_regressions") or [])
        stale = [s["night"] for s in trend.get("stale") or []]
        tail = f"\n{still} regression(s) still open." if still else ""
        tail += f"\n:warning: no result for {', '.join(stale)}." if stale else ""
        blocks.append(_section("*Trend*\n" + "\n".join(lines) + tail))
    for g in gates:
        blocks.append(
            _section(
                f"*Gate ({g['rollout']})*: *{g['decision']}* — {g['phase_before']} → "
                f"{g['phase_after']}, {len(g['nights_counted'])} night(s) counted\n"
                + "\n".join(f"• {r}" for r in g["reasons"][:4])
            )
        )
    if ab is not None:
        blocks.append(_section(f"*A/B*\n{ab['verdict']}"))
    if windows is not None:
        alerts = windows.get("alerts") or []
        worst = (windows.get("windows") or {}).get("5m", {}).get("worst_rate")
        text = f"*Windows*: worst 5-minute delivery {_pct(worst)}; {len(alerts)} burn alert(s)"
        blocks.append(_section(text))
    if chaos:
        blocks.append(_section("*Chaos*\n" + "\n".join(_chaos_line(r) for r in chaos)))
    blocks += [DividerBlock(), _links_block(links, night)]
    status = (result or {}).get("status", "no result")
    rate = _pct((result or {}).get("delivery_rate"))
    text = f"{scenario} {night}: {status}, delivery {rate}"
    if chaos:
        passed = sum(r.get("status") == "passed" for r in chaos)
        text += f"; chaos {passed}/{len(chaos)} passed"
    return Outgoing(summary_key(scenario, night), "slack", text, _blocks(blocks))


def summary_key(scenario: str, night: str) -> str:
    return f"slack:summary:{scenario}:{night}"


def chaos_key(night: str, chaos: Sequence[Mapping[str, Any]]) -> str:
    """One key per night and set of chaos scenarios: a scenario stored later is news."""
    return f"slack:chaos:{night}:" + ",".join(sorted(str(r.get("scenario")) for r in chaos))


def chaos_update(night: str, chaos: Sequence[Mapping[str, Any]], links: Links) -> Outgoing:
    """The night's chaos figures on their own, for chaos stored after the summary went."""
    passed = sum(r.get("status") == "passed" for r in chaos)
    blocks = [
        _header(f"Chaos — {night}"),
        _section("*Chaos*\n" + "\n".join(_chaos_line(r) for r in chaos)),
        _links_block(links, night),
    ]
    text = f"chaos {night}: {passed}/{len(chaos)} passed"
    return Outgoing(chaos_key(night, chaos), "slack", text, _blocks(blocks))


def regression(scenario: str, row: Mapping[str, Any], links: Links) -> Outgoing:
    text = f"Regression in {scenario}: {_regression_line(row)}"
    detail = f"confirmed on {row['confirmed_on']}"
    base, now = row.get("baseline"), row.get("value")
    if isinstance(base, int | float) and isinstance(now, int | float):
        detail += f"; baseline {base:.4g}, now {now:.4g}"
    blocks = [
        _section(f":chart_with_upwards_trend: *Regression* in {scenario}\n{_regression_line(row)}"),
        _section(detail),
        _links_block(links, row["confirmed_on"]),
    ]
    key = f"slack:regression:{scenario}:{row['metric']}:{row['detector']}:{row['night']}"
    return Outgoing(key, "slack", text, _blocks(blocks))


def gate_change(gate: Mapping[str, Any], links: Links) -> Outgoing:
    icon = ":rocket:" if gate["decision"] == "promote" else ":rotating_light:"
    head = (
        f"{icon} *{gate['decision'].capitalize()}* ({gate['rollout']}, {gate['scenario']}): "
        f"{gate['phase_before']} → {gate['phase_after']}"
    )
    blocks = [
        _section(head + "\n" + "\n".join(f"• {r}" for r in gate["reasons"])),
        _links_block(links, gate["night"]),
    ]
    key = (
        f"slack:gate:{gate['rollout']}:{gate['scenario']}:{gate['night']}:"
        f"{gate['decision']}:{gate['phase_after']}"
    )
    text = f"{gate['decision']}: {gate['phase_before']} -> {gate['phase_after']}"
    return Outgoing(key, "slack", text, _blocks(blocks))


def pages(
    night: str,
    scenario: str,
    result: Mapping[str, Any] | None,
    gates: Sequence[Mapping[str, Any]],
    critical_rate: float | None = None,
) -> list[Outgoing]:
    """Critical alerts for PagerDuty: delivery below ``critical_rate`` (None: the phase
    gate's, which rolls back on the same rule; 95 % without a gate), a rollback."""
    out = []
    critical_rate = gate_critical_rate(gates) if critical_rate is None else critical_rate
    rate = (result or {}).get("delivery_rate")
    if rate is not None and rate < critical_rate:
        counts = (result or {}).get("counts") or {}
        out.append(
            Outgoing(
                f"pd:delivery:{scenario}:{night}",
                "pagerduty",
                f"{scenario} {night}: delivery rate {rate:.2%} below "
                f"{critical_rate:.0%} ({counts.get('lost', '?')} lost)",
                details={"night": night, "delivery_rate": rate, "counts": counts},
            )
        )
    for g in gates:
        if g["decision"] == "rollback":
            out.append(
                Outgoing(
                    f"pd:rollback:{g['rollout']}:{scenario}:{night}",
                    "pagerduty",
                    f"{scenario} {night}: rollback of {g['rollout']} rollout "
                    f"({g['phase_before']} -> {g['phase_after']})",
                    details={"night": night, "reasons": g["reasons"]},
                )
            )
    return out


def gate_critical_rate(gates: Sequence[Mapping[str, Any]]) -> float:
    """The critical delivery rate the night's phase gates decided with (their decision
    records it): one rule pages and rolls back; 0 when they have it off (None); the
    default when no gate decided."""
    rates = [g["critical_delivery_rate"] or 0.0 for g in gates if "critical_delivery_rate" in g]
    return max(rates, default=CRITICAL_DELIVERY_RATE)


def resolve_key(page_key: str) -> str:
    return f"resolve:{page_key}"


def resolves(
    night: str,
    scenario: str,
    result: Mapping[str, Any] | None,
    gates: Sequence[Mapping[str, Any]],
    open_pages: Sequence[str],
    critical_rate: float | None = None,
) -> list[Outgoing]:
    """PagerDuty resolves when ``night`` is green (passed, nothing to page): one for each
    open incident (``open_pages``: trigger keys sent, not resolved) of this scenario from
    an earlier night. The resolve carries the trigger's dedup key."""
    if (result or {}).get("status") != "passed" or pages(
        night, scenario, result, gates, critical_rate
    ):
        return []
    out = []
    for key in open_pages:
        _, page_scenario, page_night = key.rsplit(":", 2)  # pd:<kind>:...:<scenario>:<night>
        if page_scenario == scenario and page_night < night:
            text = f"{scenario} {night}: green again, resolving {key}"
            resolve = Outgoing(
                resolve_key(key), "pagerduty", text, details={"dedup_key": key}, action="resolve"
            )
            out.append(resolve)
    return out


def stale_alert(scenario: str, stale: Mapping[str, Any]) -> Outgoing:
    text = (
        f"No {scenario} result for {stale['night']}: due by {stale['due_at']} "
        f"(25 h after the night began), {stale['overdue_hours']:.1f} h overdue."
    )
    blocks = [_section(f":hourglass: *Stale night* — {text}")]
    return Outgoing(f"slack:stale:{scenario}:{stale['night']}", "slack", text, _blocks(blocks))


def plan(
    night: str,
    scenario: str,
    result: Mapping[str, Any] | None,
    trend: Mapping[str, Any] | None,
    gates: Sequence[Mapping[str, Any]],
    ab: Mapping[str, Any] | None,
    windows: Mapping[str, Any] | None,
    links: Links,
    chaos: Sequence[Mapping[str, Any]] = (),
    open_pages: Sequence[str] = (),
    critical_rate: float | None = None,
) -> list[Outgoing]:
    """Everything the night may send, critical pages (or their resolves) first."""
    out = pages(night, scenario, result, gates, critical_rate)
    out += resolves(night, scenario, result, gates, open_pages, critical_rate)
    out.append(summary(night, scenario, result, trend, gates, ab, windows, links, chaos))
    out += [regression(scenario, r, links) for r in (trend or {}).get("regressions") or []]
    out += [gate_change(g, links) for g in gates if g["decision"] in ("promote", "rollback")]
    return out
