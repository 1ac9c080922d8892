"""SIGKILL a consumer of the reference target mid-load (or SIGSTOP it, a hung consumer,
resumed after ``hold_s``): its pending entries must be reclaimed and delivered within the
limit, nothing accepted lost by the ledger, duplicates counted. The fault is
:mod:`deliverydags.chaos.consumer_kill`."""

from __future__ import annotations

from pydantic import Field

from deliverydags.chaos import stream_prefix
from deliverydags.chaos.consumer_kill import ConsumerKill
from deliverydags.chaos.scenario import ChaosConfig, ChaosEnv, chaos_scenario

CHECKS = {
    "zero_loss": "No accepted message lost after a consumer was killed mid-load.",
    "recovered_within_s": (
        "The killed consumer's pending entries delivered, and delivery back within the "
        "normal latency bound, within the limit (s) after the kill."
    ),
}


class ConsumerKillConfig(ChaosConfig):
    recover_within_s: float = 30.0
    signal: str = "SIGKILL"  # or SIGSTOP (a hung consumer, resumed after hold_s)
    min_pending: int = 1  # the victim must hold at least this many pending entries
    target_args: list[str] = Field(default_factory=lambda: ["--consumers", "2"])


def _fault(config: ConsumerKillConfig, env: ChaosEnv) -> ConsumerKill:
    assert env.redis is not None
    return ConsumerKill(
        config.timing(),
        env.redis.url,
        stream_prefix(config.target_args),
        config.signal,
        config.recover_within_s,
        config.min_pending,
    )


SCENARIO = chaos_scenario(
    name="chaos_consumer_kill",
    description="SIGKILL a consumer mid-load: pending entries reclaimed and delivered within 30 s, "
    "zero loss by the ledger, duplicates counted.",
    checks=CHECKS,
    fault=_fault,  # type: ignore[arg-type]
    config=ConsumerKillConfig,
)
