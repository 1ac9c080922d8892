"""The code location: every asset, job, schedule and sensor, with resources chosen from
the environment (no target URL set: the bundled reference target)."""

import os

import dagster as dg

from deliverydags.assets.soak import message_soak
from deliverydags.jobs.nightly import nightly_soak_job, nightly_soak_schedule
from deliverydags.resources import DeliveryTargetResource, K6Resource, ResultsStoreResource


def _env(name: str) -> dg.EnvVar | None:
    """EnvVar for a setting the user chose to set; None keeps the default."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def _target() -> DeliveryTargetResource:
    fields = {
        "url": _env("DELIVERYDAGS_TARGET_URL"),
        "token": _env("DELIVERYDAGS_TARGET_TOKEN"),
        "callback_secret": _env("DELIVERYDAGS_CALLBACK_SECRET"),
        "collector_addr": _env("DELIVERYDAGS_COLLECTOR_ADDR"),
        "collector_url": _env("DELIVERYDAGS_COLLECTOR_URL"),
        "redis_url": _env("DELIVERYDAGS_REDIS_URL"),
    }
    return DeliveryTargetResource(**{k: v for k, v in fields.items() if v is not None})


def _results() -> ResultsStoreResource:
    data_dir = _env("DELIVERYDAGS_DATA_DIR")
    return ResultsStoreResource(data_dir=data_dir) if data_dir else ResultsStoreResource()


defs = dg.Definitions(
    assets=[message_soak],
    jobs=[nightly_soak_job],
    schedules=[nightly_soak_schedule],
    resources={"k6": K6Resource(), "target": _target(), "results": _results()},
)
