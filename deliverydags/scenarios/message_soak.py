"""The nightly soak: contract-v1 messages at a constant arrival rate (500 msg/s for
30 min by default, the seed's profile), every message accounted for by the ledger.

Its checks are the run's gates; ``service_metrics_agree`` (not blocking) compares the
ledger with the service's own metrics in Prometheus for the run's window: the ledger is
the verdict on delivery, a disagreement says the service's metrics (or the harness) lie.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Literal

from pydantic import Field

from deliverydags.config import DEFAULT_DEADLINES_S, SOAK_SCENARIO
from deliverydags.prometheus.service_gates import ServiceGate
from deliverydags.run.scenario import CheckSpec, Environment, Scenario, ScenarioConfig
from deliverydags.run.settings import ConfigError, Gates

CHECKS = (
    CheckSpec("messages_sent", "The scenario sent at least one message."),
    CheckSpec("zero_loss", "No accepted message lost (no valid receipt by the last deadline)."),
    CheckSpec("zero_failed", "No accepted message reported failed by the target."),
    CheckSpec("p95_latency_ms", "p95 send-to-receipt latency below the limit."),
    CheckSpec(
        "error_rate", "Share of messages not accepted (rejected or unanswered) below the limit."
    ),
    CheckSpec("k6_thresholds", "None of k6's own thresholds crossed."),
    CheckSpec("zero_out_of_order", "Out-of-order messages (per stream) within the limit (0)."),
    CheckSpec("duplicate_rate", "Duplicate receipts over accepted messages within the limit."),
    CheckSpec("p50_latency_ms", "p50 below the limit (50 ms).", blocking=False, warning=True),
    CheckSpec("p99_latency_ms", "p99 below the limit (500 ms).", blocking=False, warning=True),
    CheckSpec(
        "service_metrics_agree",
        "The service's own metrics, read from Prometheus for the run's window, agree with "
        "the ledger (delivered, failed, p95 latency) within the stated tolerance.",
        blocking=False,  # a Prometheus outage says nothing about delivery
    ),
    CheckSpec(
        "service_gates",
        "Every gate on the service's own metrics (service_gates: PromQL over the run's "
        "window) held; by default the DLQ stayed empty.",
        blocking=False,
    ),
)
# The seed's: the dead-letter queue stays empty. A user adds their own beside it.
DLQ_EMPTY = "dlq_empty: max(max_over_time(dlq_depth{target}[{window}])) == 0"


# The delivery seed's load profiles: (messages per second, seconds). A profile replaces
# rate and duration.
PROFILES = {
    "soak": (500.0, 1800.0),
    "1k_per_hour": (1_000 / 3600, 3600.0),
    "10k_per_hour": (10_000 / 3600, 3600.0),
    "50k_per_hour": (50_000 / 3600, 3600.0),
}


class SoakConfig(ScenarioConfig):
    """The nightly profile by default (the seed's soak: 500 msg/s for 30 min)."""

    profile: Literal["", "soak", "1k_per_hour", "10k_per_hour", "50k_per_hour"] = Field(
        "", description="A named load profile instead of rate and duration."
    )

    scenario: str = Field(
        SOAK_SCENARIO,
        description="The k6 script: a name under k6/ or a path to your own .js.",
        json_schema_extra={"flag": "--script"},
    )
    rate: float = Field(500.0, description="Messages per second.")
    duration_s: float = Field(1800.0, description="Seconds of load.")
    deadlines_s: list[float] = Field(
        default_factory=lambda: list(DEFAULT_DEADLINES_S),
        description="Receipt deadlines in seconds, increasing.",
    )
    payload_bytes: int = Field(1024, description="Bytes of payload per message.")
    variants: str = Field("", description="A/B split, e.g. llm:0.5,template:0.5.")
    target_args: list[str] = Field(
        default_factory=list,
        description="Reference target only: extra flags, e.g. --fault-drop=0.01.",
    )
    max_lost: int = 0
    max_failed: int = 0
    p95_latency_ms: float = Field(100.0, json_schema_extra={"flag": "--p95-ms"})
    max_error_rate: float = 0.001
    max_out_of_order: int = 0
    max_duplicate_rate: float = Field(0.001, description="Duplicates over accepted messages.")
    p50_warn_ms: float = Field(50.0, description="p50 latency above this is a warning.")
    p99_warn_ms: float = Field(500.0, description="p99 latency above this is a warning.")
    service_gates: list[str] = Field(
        default_factory=lambda: [DLQ_EMPTY],
        description="Gates on the service's metrics, 'NAME: PROMQL OP LIMIT' ({target}: "
        "its series selector, {window}: the run's window).",
    )


def _setup(config: SoakConfig, env: Environment, stack: ExitStack):
    rate, duration_s = PROFILES.get(config.profile, (config.rate, config.duration_s))
    try:
        gates = tuple(ServiceGate.parse(line) for line in config.service_gates)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    hooks = []
    if env.prometheus is not None:  # stops with the run, however it ends
        hook = stack.enter_context(env.prometheus(service_gates=gates))
        env.log(f"service metrics: {hook.describe}")
        hooks.append(hook)
    settings = env.settings(
        scenario=config.scenario,
        rate=rate,
        duration_s=duration_s,
        deadlines_s=tuple(config.deadlines_s),
        payload_bytes=config.payload_bytes,
        variants=config.variants,
        target_args=tuple(config.target_args),
        gates=Gates(
            max_lost=config.max_lost,
            max_failed=config.max_failed,
            p95_latency_ms=config.p95_latency_ms,
            max_error_rate=config.max_error_rate,
            max_out_of_order=config.max_out_of_order,
            max_duplicate_rate=config.max_duplicate_rate,
            p50_latency_ms=config.p50_warn_ms,
            p99_latency_ms=config.p99_warn_ms,
        ),
    )
    return settings, hooks


SCENARIO = Scenario(
    name=SOAK_SCENARIO,
    description="Tonight's message soak: k6 load, signed receipts, exact ledger, gates.",
    config=SoakConfig,
    checks=CHECKS,
    setup=_setup,
    kinds=frozenset({"k6", "duckdb"}),
    prometheus="optional",
    cli_required=("rate", "duration_s"),  # the contract's command line names both
)
