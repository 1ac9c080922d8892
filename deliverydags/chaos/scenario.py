"""A chaos scenario: the reference target under load, one fault injected mid-load by a
:class:`ChaosHook`, judged by the fault's own checks (the CHAOS RESULT CONVENTION in
``result["chaos"]``; see :mod:`deliverydags.chaos`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from deliverydags.chaos.hook import ChaosHook, ChaosTiming
from deliverydags.chaos.redis_server import RedisServer
from deliverydags.run.scenario import CHAOS, CheckSpec, Environment, Scenario, ScenarioConfig
from deliverydags.run.settings import ConfigError, Gates

# Errors and slow messages are what a fault causes: the run's own gates pass them (only
# loss fails), and the fault's checks judge the rest.
CHAOS_GATES = Gates(max_lost=0, max_failed=10**9, p95_latency_ms=1e9, max_error_rate=0.99)


class ChaosConfig(ScenarioConfig):
    """Shared knobs; a scenario subclasses it to change defaults or add its own."""

    script: str = Field("message_soak", description="The k6 script that carries the load.")
    rate: float = 200.0
    duration_s: float = 90.0
    inject_after_s: float = Field(20.0, description="The fault goes in this long into the load.")
    hold_s: float = Field(0.0, description="How long the fault lasts (0: instantaneous).")
    normal_latency_ms: float = Field(1000.0, description="Delivery is back within this bound.")
    recover_within_s: float = 30.0
    deadlines_s: list[float] = Field(default_factory=lambda: [60.0, 300.0])
    payload_bytes: int = 256
    request_timeout_s: float = Field(10.0, description="k6's: a slower answer is no answer.")
    target_args: list[str] = Field(
        default_factory=list,
        description="Extra reference-target flags.",
    )

    def timing(self) -> ChaosTiming:
        return ChaosTiming(self.inject_after_s, self.hold_s, self.normal_latency_ms)

    def fault_target_args(self) -> list[str]:
        """Target flags the fault needs besides ``target_args``."""
        return []


@dataclass
class ChaosEnv:
    """What a fault factory gets besides the config."""

    run_dir: Path
    redis: RedisServer | None  # the run's own Redis (broker="own_redis")


FaultFactory = Callable[[ChaosConfig, ChaosEnv], ChaosHook]


def chaos_scenario(
    *,
    name: str,
    description: str,
    checks: Mapping[str, str],
    fault: FaultFactory,
    config: type[ChaosConfig] = ChaosConfig,
    broker: Literal["own_redis", "target"] = "own_redis",
) -> Scenario:
    """``fault``'s scenario. ``checks``: gate name -> description, each blocking.
    ``broker``: "own_redis" starts a redis-server on a free loopback port for this run
    (``env.redis``: the fault may stop and start it for real); "target" uses the
    environment's Redis (none: the embedded queue)."""

    def setup(cfg: ChaosConfig, env: Environment, stack: ExitStack):
        if cfg.inject_after_s >= cfg.duration_s:
            raise ConfigError(
                f"inject_after_s ({cfg.inject_after_s:g}) must be less than duration_s "
                f"({cfg.duration_s:g}): the fault goes in mid-load"
            )
        redis, redis_url = None, env.redis_url
        if broker == "own_redis":
            redis = stack.enter_context(RedisServer(env.run_dir / "redis"))
            redis_url = redis.url
            env.log(f"own redis-server on {redis_url} (AOF, fsync always)")
        try:
            hook = fault(cfg, ChaosEnv(env.run_dir, redis))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        stack.callback(hook.close)  # released before the Redis above stops
        settings = env.settings(
            scenario=cfg.script,
            target_url=None,
            redis_url=redis_url,
            rate=cfg.rate,
            duration_s=cfg.duration_s,
            deadlines_s=tuple(cfg.deadlines_s),
            payload_bytes=cfg.payload_bytes,
            target_args=(*cfg.target_args, *cfg.fault_target_args()),
            request_timeout_s=cfg.request_timeout_s,
            gates=CHAOS_GATES,
        )
        return settings, [hook]

    return Scenario(
        name=name,
        description=description,
        config=config,
        checks=tuple(CheckSpec(check, desc) for check, desc in checks.items()),
        setup=setup,
        group=CHAOS,
        kinds=frozenset({"k6", "redis"} if broker == "own_redis" else {"k6"}),
        reference_target_only=True,
    )
