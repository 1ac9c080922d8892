"""``scenario_asset``: a catalog scenario (``deliverydags/scenarios/``) as a nightly asset:
daily partitions, pool ``load_test``, its config as the launchpad's fields, its checks
as asset checks fed by the run's gates, its figures in the metadata."""

# No `from __future__ import annotations`: Dagster reads the config parameter's type.

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import dagster as dg
import pydantic

from deliverydags.defs.checks import check_results, metadata_value
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import (
    DeliveryTargetResource,
    K6Resource,
    PrometheusResource,
    ResultsStoreResource,
)
from deliverydags.prometheus import service_report
from deliverydags.run.result import RunResult
from deliverydags.run.runner import SETUP_ERRORS, HarnessError, new_run_id
from deliverydags.run.scenario import (
    Environment,
    Scenario,
    ScenarioConfig,
    missing_reason,
    run_scenario,
)
from deliverydags.run.summary import markdown

# The CHAOS RESULT CONVENTION's figures, always in a chaos result's metadata.
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


@contextmanager
def setup_errors_fail_the_step() -> Iterator[None]:
    """A bad config, missing k6 or unreachable service: the step fails with its one line
    (no traceback wall, no retry)."""
    try:
        yield
    except SETUP_ERRORS as exc:
        # A harness failure voids the night: no result, so no check speaks of the target.
        failed_for = "harness" if isinstance(exc, HarnessError) else "setup"
        raise dg.Failure(
            str(exc), metadata={"failed_for": failed_for}, allow_retries=False
        ) from None


def dagster_config(model: type[ScenarioConfig]) -> type[dg.Config]:
    """The scenario's knobs as a ``dg.Config`` with the same fields (the run config's
    field names are the scenario's: an instance's saved launchpad configs keep working)."""
    fields = {name: (f.annotation, f) for name, f in model.model_fields.items()}
    return pydantic.create_model(  # type: ignore[call-overload]
        model.__name__, __base__=dg.Config, __doc__=model.__doc__, **fields
    )


def scenario_asset(scenario: Scenario) -> dg.AssetsDefinition:
    config_type = dagster_config(scenario.config)

    @dg.asset(
        name=scenario.name,
        partitions_def=nightly_partitions,
        pool="load_test",
        group_name=scenario.group,
        kinds=set(scenario.kinds),
        check_specs=[
            dg.AssetCheckSpec(
                c.name, asset=scenario.name, description=c.description, blocking=c.blocking
            )
            for c in scenario.checks
        ],
        description=scenario.description,
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: config_type,  # type: ignore[valid-type]
        k6: K6Resource,
        target: DeliveryTargetResource,
        results: ResultsStoreResource,
        prometheus: PrometheusResource,
    ) -> dg.MaterializeResult:
        night = context.partition_key
        run_id = new_run_id()
        run_dir = results.run_dir(night, run_id)
        with setup_errors_fail_the_step():
            knobs = scenario.config.model_validate(config.model_dump())
            env = Environment(
                run_dir=run_dir,
                run_id=run_id,
                target_url=target.url,
                collector_addr=target.collector_addr,
                collector_url=target.collector_url,
                redis_url=target.redis_url,
                k6_binary=k6.path(),
                log=context.log.info,
                prometheus=partial(prometheus.hook, run_dir, run_id),
            )
            result = run_scenario(
                scenario,
                knobs,
                env,
                target.secrets(),
                interrupts=(KeyboardInterrupt, dg.DagsterExecutionInterruptedError),
            )
        if result.status == "aborted":
            raise dg.Failure(
                f"run aborted; partial result (not stored) in {run_dir / 'result.json'}"
            )
        doc = result.to_json()
        results.store.save(night, doc)
        context.log.info("\n" + markdown(doc))
        return dg.MaterializeResult(
            metadata={
                **run_metadata(result, run_dir),
                **{k: metadata_value(result.sections.get(k)) for k in scenario.figures},
            },
            check_results=check_results(
                result.checks,
                scenario.check_names,
                missing=missing_reason(result),
                warnings=[c.name for c in scenario.checks if c.warning],
            ),
        )

    return _asset


def run_metadata(result: RunResult, run_dir: Path) -> dict:
    """What the UI shows of a run: counts, latency, delivery rate, the service's figures
    beside the ledger's (when read), the fault's figures (a chaos run), the result."""
    doc = result.to_json()
    meta: dict = {f"count_{k}": int(v) for k, v in result.counts.items()}
    lat = result.latency_ms
    meta.update({f"latency_{k}_ms": float(v) for k, v in lat.items() if v is not None})
    if result.delivery_rate is not None:
        meta["delivery_rate"] = float(result.delivery_rate)
    if "prometheus" in result.sections:
        prom = result.section("prometheus")
        meta.update(service_report.numbers(prom))
        meta["ledger_vs_service"] = dg.MetadataValue.md(service_report.markdown(prom, doc))
    if "chaos" in result.sections:
        chaos = result.section("chaos")
        meta.update({key: metadata_value(chaos.get(key)) for key in CHAOS_KEYS})
        meta.update(
            {k: metadata_value(v) for k, v in chaos.items() if k not in meta and k != "error"}
        )
        if "error" in chaos:
            meta["chaos_error"] = str(chaos["error"])
    meta.update(
        status=result.status,
        run_id=result.run_id,
        target_url=dg.MetadataValue.url(result.target_url),
        target_version=result.sections.get("target_version", ""),
        report=dg.MetadataValue.md(markdown(doc)),
        result=dg.MetadataValue.json(doc),
        result_path=dg.MetadataValue.path(str(run_dir / "result.json")),
    )
    return meta
