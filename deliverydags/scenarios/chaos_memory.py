"""Does the target's memory keep growing under steady load? A load runs against the
reference target while a Prometheus scrapes the resident memory of every target process
(API and consumers) each second; after a warm-up the growth of the worst process
(least-squares line through its RSS) must stay under the limit. ``leak_bytes`` turns on
the target's real leak (``--fault-leak-bytes``), the proof that the check can fail. The
figures are :mod:`deliverydags.chaos.memory`."""

from __future__ import annotations

from contextlib import ExitStack

from pydantic import Field

from deliverydags.chaos.memory import chaos_figures, leak_args, watch
from deliverydags.run.result import RunResult
from deliverydags.run.scenario import CHAOS, CheckSpec, Environment, Scenario, ScenarioConfig
from deliverydags.run.settings import Gates

CHECKS = (
    CheckSpec("memory_growth", "RSS growth of the worst target process after the warm-up < limit."),
    CheckSpec("zero_loss", "No accepted message lost while memory was watched."),
    CheckSpec(
        "service_metrics_agree", "The service's metrics agree with the ledger.", blocking=False
    ),
)


class ChaosMemoryConfig(ScenarioConfig):
    """The demo profile by default (100 msg/s for 60 s); the nightly plan may run longer."""

    rate: float = 100.0
    duration_s: float = 60.0
    deadlines_s: list[float] = Field(default_factory=lambda: [30.0, 60.0, 120.0])
    warmup_fraction: float = Field(0.25, description="Share of the run left out of the fit.")
    max_growth: float = Field(0.10, description="Largest RSS growth allowed (0.10: 10%).")
    leak_bytes: int = Field(0, description="> 0: the target keeps this many bytes per message.")
    target_args: list[str] = Field(
        default_factory=list,
        description="Extra reference-target flags.",
    )


def _setup(config: ChaosMemoryConfig, env: Environment, stack: ExitStack):
    hook = watch(env, stack, config.max_growth, config.warmup_fraction)
    settings = env.settings(
        rate=config.rate,
        duration_s=config.duration_s,
        deadlines_s=tuple(config.deadlines_s),
        target_args=(*config.target_args, *leak_args(config.leak_bytes)),
        gates=Gates(p95_latency_ms=1000.0),  # latency is the soak's business here
    )
    return settings, [hook]


def _finish(result: RunResult, config: ChaosMemoryConfig, env: Environment) -> RunResult:
    figures = chaos_figures(result.to_json(), config.leak_bytes, config.warmup_fraction)
    return result.with_sections(chaos=figures)


SCENARIO = Scenario(
    name="chaos_memory",
    description="Memory growth of the reference target under load, from Prometheus.",
    config=ChaosMemoryConfig,
    checks=CHECKS,
    setup=_setup,
    group=CHAOS,
    kinds=frozenset({"k6", "prometheus"}),
    reference_target_only=True,
    prometheus="required",
    finish=_finish,
)
