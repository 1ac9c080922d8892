"""What every asset that runs a load does around ``run_check``: stop on Dagster's
interrupts, fail with one line on a setup error, never store an aborted run."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from deliverydags.defs.resources import DeliveryTargetResource
from deliverydags.procs import ServiceError
from deliverydags.run.hooks import RunHook
from deliverydags.run.k6 import K6Error
from deliverydags.run.runner import HarnessError, SetupError, run_check
from deliverydags.run.settings import ConfigError, RunSettings

SETUP_ERRORS = (ConfigError, SetupError, K6Error, ServiceError)


@contextmanager
def setup_errors_fail_the_step(*more: type[Exception]) -> Iterator[None]:
    """A bad config, missing k6 or unreachable service: the step fails with its one line
    (no traceback wall, no retry)."""
    try:
        yield
    except (*SETUP_ERRORS, *more) as exc:
        # A harness failure voids the night: no result, so no check speaks of the target.
        failed_for = "harness" if isinstance(exc, HarnessError) else "setup"
        raise dg.Failure(
            str(exc), metadata={"failed_for": failed_for}, allow_retries=False
        ) from None


def run_load(
    context: dg.AssetExecutionContext,
    settings: RunSettings,
    target: DeliveryTargetResource,
    run_dir: Path,
    hooks: Sequence[RunHook],
) -> dict:
    """``run_check`` for an asset; a terminated run (aborted result) fails the step."""
    result = run_check(
        settings,
        target.secrets(),
        run_dir,
        log=context.log.info,
        interrupts=(KeyboardInterrupt, dg.DagsterExecutionInterruptedError),
        hooks=hooks,
    )
    if result["status"] == "aborted":
        raise dg.Failure(f"run aborted; partial result (not stored) in {run_dir / 'result.json'}")
    return result
