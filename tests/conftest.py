"""Shared fixtures: the machine's real Redis and PostgreSQL (fail clearly when absent)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# Two tiers. A module that needs servers, processes, k6 or sockets says so with
# `pytestmark = pytest.mark.integration`; every other test is the unit tier
# (`.venv/bin/pytest -m "not integration"`, under a minute), and is held to it: in a unit
# test, starting a process or opening a network connection fails the test.
class _NotAUnitTest(AssertionError):
    pass


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise _NotAUnitTest(f"a unit test {what}: mark its module pytest.mark.integration")

    return refuse


@pytest.fixture(autouse=True)
def _unit_tier_stays_pure(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("started a process"))
        monkeypatch.setattr(socket.socket, "connect", _refuse("opened a connection"))
        monkeypatch.setattr(socket.socket, "connect_ex", _refuse("opened a connection"))
        monkeypatch.setattr(socket.socket, "bind", _refuse("opened a server"))
    yield


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    host = os.environ.get("REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("REDIS_PORT", "6379"))
    if not _reachable(host, port):
        pytest.fail(
            f"Redis is not reachable at {host}:{port}: start it or set REDIS_HOST/REDIS_PORT"
        )
    return f"redis://{host}:{port}/0"


@pytest.fixture(scope="session")
def postgres_env() -> dict[str, str]:
    env = {
        "DAGSTER_PG_HOST": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
        "DAGSTER_PG_PORT": os.environ.get("DAGSTER_PG_PORT", "5432"),
        "DAGSTER_PG_USER": os.environ.get("DAGSTER_PG_USER", "postgres"),
        "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", ""),
        "DAGSTER_PG_DB": os.environ.get("DAGSTER_PG_DB", "test"),
    }
    if not _reachable(env["DAGSTER_PG_HOST"], int(env["DAGSTER_PG_PORT"])):
        pytest.fail(
            f"PostgreSQL is not reachable at {env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}: "
            "start it or set DAGSTER_PG_HOST/DAGSTER_PG_PORT"
        )
    return env


@pytest.fixture
def stream_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of the test's own, deleted afterwards."""
    import redis

    prefix = f"ddtest-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`deliverydags ARGS` as a user runs it: a separate process, stdin closed."""
    return subprocess.run(
        [sys.executable, "-m", "deliverydags.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        cwd=ROOT,
    )


# The soak's checks fed by the run's own gates (blocking); its service check is not.
SOAK_GATES = (
    "messages_sent",
    "zero_loss",
    "zero_failed",
    "p95_latency_ms",
    "error_rate",
    "k6_thresholds",
    "zero_out_of_order",
    "duplicate_rate",
)
SOAK_WARNINGS = ("p50_latency_ms", "p99_latency_ms")


def soak_resources(tmp_path: Path, **target: str) -> dict:
    """The asset's resources with results kept under ``tmp_path``."""
    from deliverydags.defs.resources import (
        DeliveryTargetResource,
        K6Resource,
        PrometheusResource,
        ResultsStoreResource,
    )

    return {
        "k6": K6Resource(),
        "target": DeliveryTargetResource(**target),
        "results": ResultsStoreResource(data_dir=str(tmp_path / "data")),
        "prometheus": PrometheusResource(),  # a private one per run (the binary must exist)
    }
