"""Stop the target's Redis mid-load and start it again ``hold_s`` later (``mode="hang"``:
SIGSTOP/SIGCONT): the API answers fast 503s while it is down, nothing accepted is lost,
failures land in the dead-letter queue, delivery is back within the limit. The fault is
:mod:`deliverydags.chaos.redis_outage`."""

from __future__ import annotations

from pydantic import Field

from deliverydags.chaos import stream_prefix
from deliverydags.chaos.redis_outage import RedisOutage
from deliverydags.chaos.scenario import ChaosConfig, ChaosEnv, chaos_scenario

CHECKS = {
    "zero_loss_of_accepted": "Every message answered 202 has a receipt (ledger lost == 0).",
    "answered_503_during_outage": (
        "Messages sent while Redis was down were refused with 503, none left without an "
        "answer (k6 request timeout) or answered otherwise."
    ),
    "recovered_within_s": (
        "After Redis returned, delivery back within the normal latency bound and the "
        "outage's backlog delivered within the limit (s)."
    ),
    "failed_in_dlq": "Every message the target reported failed is in its dead-letter queue.",
}


class RedisOutageConfig(ChaosConfig):
    hold_s: float = 10.0  # the outage
    recover_within_s: float = 60.0
    request_timeout_s: float = 3.0  # a hanging API makes messages indeterminate
    client_tries: int = 1
    mode: str = "stop"  # "stop": SIGTERM, restart on release; "hang": SIGSTOP, SIGCONT
    target_args: list[str] = Field(default_factory=lambda: ["--consumers", "2"])


def _fault(config: RedisOutageConfig, env: ChaosEnv) -> RedisOutage:
    assert env.redis is not None
    if config.client_tries < 1:
        raise ValueError("client_tries must be >= 1")
    return RedisOutage(
        config.timing(),
        env.redis,
        stream_prefix(config.target_args),
        config.recover_within_s,
        config.client_tries,
        config.mode,
    )


SCENARIO = chaos_scenario(
    name="chaos_redis_outage",
    description="Stop the target's Redis mid-load and start it again: fast 503s, nothing "
    "accepted lost, failures in the DLQ, delivery back within 60 s.",
    checks=CHECKS,
    fault=_fault,  # type: ignore[arg-type]
    config=RedisOutageConfig,
)
