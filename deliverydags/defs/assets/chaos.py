"""``chaos_asset``: one chaos scenario as a nightly asset (group ``chaos``, pool
``load_test``), its checks the scenario's gates, its figures in the metadata."""

# No `from __future__ import annotations`: Dagster reads the config parameter's type.
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import orjson
from pydantic import Field

from deliverydags.chaos.hook import ChaosHook, ChaosTiming
from deliverydags.chaos.redis_server import RedisServer, RedisServerError
from deliverydags.defs.assets.load_run import run_load, setup_errors_fail_the_step
from deliverydags.defs.checks import check_results, metadata_value
from deliverydags.defs.jobs.chaos import CHAOS_GROUP
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import DeliveryTargetResource, K6Resource, ResultsStoreResource
from deliverydags.run.runner import new_run_id
from deliverydags.run.settings import ConfigError, Gates, RunSettings
from deliverydags.run.summary import markdown

# The convention's figures, always present in result["chaos"] and in the metadata.
CHAOS_KEYS = (
    "fault",
    "injected_at",
    "released_at",
    "time_to_detect_s",
    "time_to_recover_s",
    "lost",
    "duplicates",
    "dlq",
)


class ChaosConfig(dg.Config):
    """Shared knobs; a scenario subclasses it to change defaults or add its own."""

    script: str = "message_soak"  # the k6 scenario that carries the load
    rate: float = 200.0
    duration_s: float = 90.0
    inject_after_s: float = 20.0
    hold_s: float = 0.0
    normal_latency_ms: float = 1000.0
    recover_within_s: float = 30.0
    deadlines_s: list[float] = Field(default_factory=lambda: [60.0, 300.0])
    payload_bytes: int = 256
    request_timeout_s: float = 10.0  # k6's: an answer slower than this is no answer
    target_args: list[str] = Field(default_factory=list)

    def timing(self) -> ChaosTiming:
        return ChaosTiming(self.inject_after_s, self.hold_s, self.normal_latency_ms)

    def settings(self, target: DeliveryTargetResource, k6_binary: str, redis_url: str | None):
        if self.inject_after_s >= self.duration_s:
            raise ConfigError(
                f"inject_after_s ({self.inject_after_s:g}) must be less than duration_s "
                f"({self.duration_s:g}): the fault goes in mid-load"
            )
        return RunSettings(
            scenario=self.script,
            target_url=None,
            rate=self.rate,
            duration_s=self.duration_s,
            deadlines_s=tuple(self.deadlines_s),
            payload_bytes=self.payload_bytes,
            collector_addr=target.collector_addr,
            collector_url=target.collector_url,
            redis_url=redis_url,
            target_args=tuple(self.target_args),
            k6_binary=k6_binary,
            request_timeout_s=self.request_timeout_s,
            # Errors and slow messages are what a fault causes: only loss fails the run
            # by the ledger's own gates; the scenario's gates judge the rest.
            gates=Gates(max_lost=0, max_failed=10**9, p95_latency_ms=1e9, max_error_rate=0.99),
        )


@dataclass
class ChaosEnv:
    """What a hook factory gets besides the config."""

    run_dir: Path
    redis: RedisServer | None  # the run's own Redis (broker="own_redis")


HookFactory = Callable[[ChaosConfig, ChaosEnv], ChaosHook]


def chaos_asset(
    *,
    name: str,
    description: str,
    checks: Mapping[str, str],
    hook: HookFactory,
    config_type: type[ChaosConfig] = ChaosConfig,
    broker: str = "own_redis",
) -> dg.AssetsDefinition:
    """An asset that runs the reference target under load with ``hook``'s fault.

    ``checks``: gate name -> description; each becomes a blocking asset check fed by
    the gate of that name in the result (a missing gate fails its check).
    ``broker``: "own_redis" starts a redis-server on a free loopback port for this run
    (``env.redis``); "target" uses DeliveryTargetResource.redis_url (None: embedded queue).
    """
    if broker not in ("own_redis", "target"):
        raise ValueError(f"broker must be 'own_redis' or 'target', not {broker!r}")

    @dg.asset(
        name=name,
        partitions_def=nightly_partitions,
        pool="load_test",
        group_name=CHAOS_GROUP,
        kinds={"k6", "redis"} if broker == "own_redis" else {"k6"},
        check_specs=[
            dg.AssetCheckSpec(check, asset=name, description=desc, blocking=True)
            for check, desc in checks.items()
        ],
        description=description,
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: config_type,  # type: ignore[valid-type]
        k6: K6Resource,
        target: DeliveryTargetResource,
        results: ResultsStoreResource,
    ) -> dg.MaterializeResult:
        if target.url:
            raise dg.Failure(
                f"{name} injects faults into the reference target's own processes; "
                "it cannot run against target.url (unset it for chaos runs)",
                allow_retries=False,
            )
        night = context.partition_key
        run_dir = results.run_dir(night, new_run_id())
        with setup_errors_fail_the_step(RedisServerError), ExitStack() as stack:
            redis = None
            redis_url = target.redis_url
            if broker == "own_redis":
                redis = stack.enter_context(RedisServer(run_dir / "redis"))
                redis_url = redis.url
                context.log.info(f"own redis-server on {redis_url} (AOF, fsync always)")
            settings = config.settings(target, k6.path(), redis_url)
            try:
                fault = hook(config, ChaosEnv(run_dir, redis))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            stack.callback(fault.close)  # released before the Redis above stops
            result = run_load(context, settings, target, run_dir, [fault])
        result["scenario"] = name
        # The scenario's verdict is its own checks: a fault is meant to cost latency,
        # errors and k6 thresholds, which the soak's gates (kept in "gates") would fail.
        result["status"] = "passed" if chaos_passed(result, checks) else "failed"
        (run_dir / "result.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        results.store.save(night, result)
        context.log.info("\n" + markdown(result))
        return dg.MaterializeResult(
            metadata=chaos_metadata(result, run_dir),
            check_results=check_results(
                result, checks, missing="not evaluated", missing_limit="a gate"
            ),
        )

    return _asset


def chaos_passed(result: dict, checks: Mapping[str, str] | None = None) -> bool:
    """All the scenario's gates held (every gate when ``checks`` is None)."""
    gates = result.get("gates") or []
    return bool(gates) and all(g["passed"] for g in gates if checks is None or g["name"] in checks)


def chaos_metadata(result: dict, run_dir: Path) -> dict:
    chaos = result.get("chaos") or {}
    meta: dict = {key: metadata_value(chaos.get(key)) for key in CHAOS_KEYS}
    meta.update({k: metadata_value(v) for k, v in chaos.items() if k not in meta and k != "error"})
    if "error" in chaos:
        meta["chaos_error"] = str(chaos["error"])
    counts = result["counts"]
    meta.update({f"count_{k}": int(v) for k, v in counts.items()})
    meta.update(
        status=result["status"],
        run_id=result["run_id"],
        report=dg.MetadataValue.md(markdown(result)),
        result=dg.MetadataValue.json(result),
        result_path=dg.MetadataValue.path(str(run_dir / "result.json")),
    )
    return meta
