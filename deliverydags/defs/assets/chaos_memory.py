"""`chaos_memory`: does the target's memory keep growing under steady load?

A load runs against the reference target while a Prometheus scrapes the resident memory
of every target process (API and consumers) each second; after a warm-up the growth of
the worst process (least-squares line through its RSS) must stay under the limit.
``leak_bytes`` turns on the target's real leak (--fault-leak-bytes), the proof that the
check can fail. The fault and its figures are :mod:`deliverydags.chaos.memory`; this
module is the Dagster wiring.
"""

import dagster as dg
from pydantic import Field

from deliverydags.chaos.memory import chaos_figures, leak_args
from deliverydags.defs.assets.load_run import run_load, setup_errors_fail_the_step
from deliverydags.defs.checks import check_results
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import (
    DeliveryTargetResource,
    K6Resource,
    PrometheusResource,
    ResultsStoreResource,
)
from deliverydags.prometheus import MemoryCheck, service_report
from deliverydags.run.runner import new_run_id
from deliverydags.run.settings import Gates, RunSettings

ASSET = "chaos_memory"
CHECKS = {
    "memory_growth": ("RSS growth of the worst target process after the warm-up < limit.", True),
    "zero_loss": ("No accepted message lost while memory was watched.", True),
    "service_metrics_agree": ("The service's metrics agree with the ledger.", False),
}


class ChaosMemoryConfig(dg.Config):
    """The demo profile by default (100 msg/s for 60 s); the nightly plan may run longer."""

    rate: float = 100.0
    duration_s: float = 60.0
    deadlines_s: list[float] = Field(default_factory=lambda: [30.0, 60.0, 120.0])
    warmup_fraction: float = 0.25
    max_growth: float = 0.10
    leak_bytes: int = 0  # > 0: the target keeps this many bytes per accepted message
    target_args: list[str] = Field(default_factory=list)


@dg.asset(
    partitions_def=nightly_partitions,
    pool="load_test",
    group_name="chaos",
    kinds={"k6", "prometheus"},
    check_specs=[
        dg.AssetCheckSpec(name, asset=ASSET, description=desc, blocking=blocking)
        for name, (desc, blocking) in CHECKS.items()
    ],
    description="Memory growth of the reference target under load, from Prometheus.",
)
def chaos_memory(
    context: dg.AssetExecutionContext,
    config: ChaosMemoryConfig,
    k6: K6Resource,
    target: DeliveryTargetResource,
    results: ResultsStoreResource,
    prometheus: PrometheusResource,
) -> dg.MaterializeResult:
    if target.url:
        raise dg.Failure("chaos_memory runs against the reference target; unset the target URL")
    night = context.partition_key
    run_id = new_run_id()
    run_dir = results.run_dir(night, run_id)
    settings = RunSettings(
        target_url=None,
        rate=config.rate,
        duration_s=config.duration_s,
        deadlines_s=tuple(config.deadlines_s),
        collector_addr=target.collector_addr,
        redis_url=target.redis_url,
        target_args=(*config.target_args, *leak_args(config.leak_bytes)),
        k6_binary=k6.path(),
        gates=Gates(p95_latency_ms=1000.0),  # latency is the soak's business here
    )
    check = MemoryCheck(limit=config.max_growth, warmup_fraction=config.warmup_fraction)
    with (
        setup_errors_fail_the_step(),
        prometheus.hook(run_dir, run_id, memory_check=check) as hook,
    ):
        context.log.info(f"memory from {hook.describe}")
        result = run_load(context, settings, target, run_dir, [hook])
    result["scenario"] = ASSET
    result["chaos"] = chaos_figures(result, config.leak_bytes, config.warmup_fraction)
    results.store.save(night, result)
    prom = result.get("prometheus") or {}
    return dg.MaterializeResult(
        metadata={
            **{k: v for k, v in result["chaos"].items() if v is not None},
            **service_report.numbers(prom),
            "status": result["status"],
            "run_id": result["run_id"],
            "ledger_vs_service": dg.MetadataValue.md(service_report.markdown(prom, result)),
            "result": dg.MetadataValue.json(result),
        },
        check_results=check_results(result, CHECKS, missing=service_report.error(result)),
    )
