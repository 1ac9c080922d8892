"""Overload: drive the target past its backlog bound. It must answer 429 with a
``Retry-After`` header, the load honours it (k6 waits as told and tries again, up to its
tries), and the ledger proves that nothing accepted was lost: zero lost, every 429
counted (retried ones included), the time spent under backpressure reported. Against
the reference target the bound is made small (``--max-backlog``) and its delivery slowed
(a share of messages held ``slow_s`` by ``--fault-delay``), so the load outruns it."""

from __future__ import annotations

from contextlib import ExitStack

from pydantic import Field

from deliverydags.formats.send_records import read_sends
from deliverydags.run.checks import Check
from deliverydags.run.result import RunResult
from deliverydags.run.scenario import CheckSpec, Environment, LoadConfig, Scenario
from deliverydags.run.settings import Gates

CHECKS = (
    CheckSpec("zero_loss", "No message the target accepted (202) was lost."),
    CheckSpec("backpressure_reached", "The target answered 429: the load passed its bound."),
    CheckSpec("retry_after_on_429", "Every 429 carried a Retry-After header."),
    CheckSpec(
        "refused_only_with_429", "Every refused message was refused with 429, none unanswered."
    ),
)


class OverloadConfig(LoadConfig):
    rate: float = 300.0
    duration_s: float = 20.0
    deadlines_s: list[float] = Field(default_factory=lambda: [10.0, 30.0])
    max_backlog: int = Field(20, description="Reference target: accepted, unacknowledged cap.")
    slow_share: float = Field(0.3, description="Reference target: share of deliveries slowed.")
    slow_s: float = Field(2.0, description="Reference target: how long a slowed one waits.")


def _setup(config: OverloadConfig, env: Environment, stack: ExitStack):
    pressure = [
        f"--max-backlog={config.max_backlog}",
        f"--fault-delay={config.slow_share:g}",
        f"--fault-delay-s={config.slow_s:g}",
    ]
    settings = config.settings(
        env,
        # A user's service is overloaded by the rate alone; its own flags are its own.
        target_args=tuple(config.target_args)
        if env.target_url
        else (*pressure, *config.target_args),
        # Refusals and slow deliveries are what overload costs: loss is the gate here.
        gates=Gates(max_failed=10**9, p95_latency_ms=1e9, max_error_rate=0.99),
    )
    return settings, []


def _finish(result: RunResult, config: OverloadConfig, env: Environment) -> RunResult:
    sends = list(read_sends(env.run_dir))
    answers = sum(s.answers_429 for s in sends)
    missing = sum(s.no_retry_after for s in sends)
    seconds = sorted({int(s.sent_ms // 1000) for s in sends if s.answers_429})
    refused = {k: v for k, v in (result.sections.get("rejected_by_status") or {}).items()}
    other = {k: v for k, v in refused.items() if k != "429"}
    unanswered = result.counts["indeterminate"]
    return result.with_sections(
        overload={
            "answers_429": answers,
            "messages_refused_429": int(refused.get("429", 0)),
            "messages_accepted_after_429": sum(1 for s in sends if s.answers_429 and s.accepted),
            "backpressure_s": len(seconds),  # seconds of load in which a send met a 429
        }
    ).with_checks(
        Check("backpressure_reached", answers > 0, answers, "> 0"),
        Check("retry_after_on_429", answers > 0 and missing == 0, missing, 0),
        Check(
            "refused_only_with_429",
            not other and unanswered == 0,
            {"other_statuses": other, "unanswered": unanswered},
            "429 only",
        ),
    )


SCENARIO = Scenario(
    name="overload",
    description="Past the backlog bound: 429 with Retry-After, honoured, nothing accepted "
    "lost, every 429 counted.",
    config=OverloadConfig,
    checks=CHECKS,
    setup=_setup,
    finish=_finish,
    figures=("overload",),
)
