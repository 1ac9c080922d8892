"""Payload integrity (contract v1.1 payload digest): string payloads of a size mix up to
64 KiB, each with its SHA-256 kept in the send record; the target returns the digest of
what it delivered. Checks: zero corrupted (a delivered digest differs from the sent one),
zero undigested (a delivered receipt without digest), zero rejected for size (413) below
the limit, and the target's memory grows less than 10% over the run (from Prometheus, as
in ``chaos_memory``). The result holds the histogram of sizes sent. The reference
target's ``--fault-corrupt F`` and ``--fault-undigest F`` make each count fail."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack

from pydantic import Field

from deliverydags.chaos.memory import watch
from deliverydags.formats.send_records import read_sends
from deliverydags.run.checks import Check
from deliverydags.run.result import RunResult
from deliverydags.run.scenario import CheckSpec, Environment, Scenario, ScenarioConfig
from deliverydags.run.settings import ConfigError, Gates

CHECKS = (
    CheckSpec("zero_loss", "No accepted message lost."),
    CheckSpec("zero_corrupted", "No delivered payload whose digest differs from the sent one."),
    CheckSpec("zero_undigested", "No delivered receipt without the payload's digest."),
    CheckSpec("zero_rejected_for_size", "No payload up to the limit answered 413."),
    CheckSpec("memory_growth", "RSS growth of the worst target process after the warm-up < limit."),
    CheckSpec(
        "service_metrics_agree", "The service's metrics agree with the ledger.", blocking=False
    ),
)


class IntegrityConfig(ScenarioConfig):
    rate: float = Field(50.0, description="Messages per second.")
    duration_s: float = Field(60.0, description="Seconds of load.")
    payload_mix: list[float] = Field(
        default_factory=lambda: [256.0, 1024.0, 16384.0, 65536.0],
        description="Payload sizes in bytes (encoded), taken in turn.",
    )
    deadlines_s: list[float] = Field(default_factory=lambda: [10.0, 30.0, 60.0])
    max_growth: float = Field(0.10, description="Largest RSS growth allowed (0.10: 10%).")
    warmup_fraction: float = Field(0.25, description="Share of the run left out of the fit.")
    target_args: list[str] = Field(
        default_factory=list, description="Reference target only: extra flags."
    )


def _setup(config: IntegrityConfig, env: Environment, stack: ExitStack):
    sizes = [int(s) for s in config.payload_mix]
    if not sizes or any(not 2 <= s <= 65536 for s in sizes):
        raise ConfigError(f"payload_mix sizes must be 2 to 65536 bytes, not {config.payload_mix}")
    hook = watch(env, stack, config.max_growth, config.warmup_fraction)
    settings = env.settings(
        rate=config.rate,
        duration_s=config.duration_s,
        deadlines_s=tuple(config.deadlines_s),
        payload_bytes=max(sizes),
        target_args=tuple(config.target_args),
        gates=Gates(p95_latency_ms=1000.0),  # 64 KiB payloads are slower; the soak judges latency
        k6_env=(("DD_INTEGRITY", "on"), ("DD_PAYLOAD_MIX", ",".join(map(str, sizes)))),
    )
    return settings, [hook]


def _finish(result: RunResult, config: IntegrityConfig, env: Environment) -> RunResult:
    sizes = Counter(r.bytes for r in read_sends(env.run_dir) if r.bytes is not None)
    counts = result.counts
    too_large = int((result.sections.get("rejected_by_status") or {}).get("413", 0))
    corrupted, undigested = counts.get("corrupted"), counts.get("undigested")
    return result.with_sections(
        payload_sizes={str(size): n for size, n in sorted(sizes.items())}
    ).with_checks(
        # Not measured (a target without digests makes every receipt undigested) fails.
        Check("zero_corrupted", corrupted == 0, corrupted, 0),
        Check("zero_undigested", undigested == 0, undigested, 0),
        Check("zero_rejected_for_size", too_large == 0, too_large, 0),
    )


SCENARIO = Scenario(
    name="payload_integrity",
    description="Payloads up to 64 KiB with their digests: zero corrupted, undigested or "
    "refused for size, and the target's memory does not grow.",
    config=IntegrityConfig,
    checks=CHECKS,
    setup=_setup,
    finish=_finish,
    kinds=frozenset({"k6", "prometheus"}),
    prometheus="required",
    figures=("payload_sizes",),
)
