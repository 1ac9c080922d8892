"""chaos_pool_exhaustion end to end: the reference target records every message in the
machine's Postgres through a pool of 4; the run locks that table for real (ACCESS
EXCLUSIVE) mid-load. With the breaker the target answers fast 503s and recovers within
60 s with nothing accepted lost; with the breaker off its requests hang on the pool and
the fast_503 check fails."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import psycopg2
import pytest

from deliverydags.defs.assets.catalog import SCENARIO_ASSETS
from deliverydags.scenarios.chaos_pool_exhaustion import CHECKS
from tests.support.chaos import checks, materialize, metadata, stored

chaos_pool_exhaustion = SCENARIO_ASSETS["chaos_pool_exhaustion"]

pytestmark = pytest.mark.integration

NAME = "chaos_pool_exhaustion"
BASE = {
    "rate": 50.0,
    "duration_s": 26.0,
    "inject_after_s": 5.0,
    "hold_s": 12.0,
    "deadlines_s": [30.0],
    "normal_latency_ms": 1000.0,
}


@pytest.fixture
def pg(postgres_env: dict[str, str]) -> dict:
    """The machine's Postgres (the conftest fixture fails clearly when it is absent)."""
    return {
        "pg_host": postgres_env["DAGSTER_PG_HOST"],
        "pg_port": int(postgres_env["DAGSTER_PG_PORT"]),
        "pg_user": postgres_env["DAGSTER_PG_USER"],
        "pg_db": postgres_env["DAGSTER_PG_DB"],
    }


def _table_exists(pg: dict, table: str) -> bool:
    conn = psycopg2.connect(
        host=pg["pg_host"], port=pg["pg_port"], user=pg["pg_user"], dbname=pg["pg_db"]
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (f'"{table}"',))
            return cur.fetchone()[0] is not None
    finally:
        conn.close()


def _no_orphans() -> None:
    me = psutil.Process(os.getpid())
    names = [" ".join(c.cmdline()) for c in me.children(recursive=True)]
    assert not [n for n in names if "redis-server" in n or "deliverydags.target" in n], names


@pytest.mark.timeout(120)
def test_exhausted_pool_answers_fast_503_and_recovers_with_zero_loss(
    tmp_path: Path, pg: dict
) -> None:
    result = materialize(chaos_pool_exhaustion, tmp_path, {**BASE, **pg})
    meta = metadata(result, NAME)
    shown = {k: v for k, v in meta.items() if k not in ("report", "result")}
    print(shown)
    assert checks(result) == dict.fromkeys(CHECKS, True), shown
    assert result.success
    assert meta["fault"] == "pool_exhaustion" and meta["breaker"] is True
    # The lock really exhausted the pool: all 4 connections held, requests queued behind.
    assert meta["pool_in_use_max"] == meta["pool_size"] == 4
    assert meta["pool_waiting_max"] > 0
    # The service's breaker opened within the grace, then answered 503 at once.
    assert 0 < meta["breaker_opened_after_s"] <= 3.0
    assert meta["n_503"] >= 200 and meta["p95_503_s"] < 0.2
    assert meta["unanswered_during"] == 0 and meta["accepted_during"] == 0
    # Released: the breaker closed and admission came back well within 60 s.
    assert meta["breaker_closed_after_release_s"] is not None
    assert 0 <= meta["time_to_recover_s"] <= 20
    assert meta["time_to_detect_s"] is not None and meta["time_to_detect_s"] < 3
    assert meta["lost"] == 0 == meta["count_lost"] and meta["dlq"] == 0
    assert meta["count_rejected"] > 0 and meta["count_accepted"] > 500
    # Every accepted message went through the database first.
    assert meta["db_rows"] == meta["count_accepted"] and meta["accepted_without_row"] == 0
    row = stored(tmp_path, NAME)
    assert row is not None and row["chaos"]["p95_503_s"] == meta["p95_503_s"]
    assert not _table_exists(pg, meta["pg_table"])  # dropped at the end
    _no_orphans()


@pytest.mark.timeout(120)
def test_breaker_off_requests_hang_on_the_pool_and_fast_503_fails(tmp_path: Path, pg: dict) -> None:
    result = materialize(chaos_pool_exhaustion, tmp_path, {**BASE, **pg, "breaker": False})
    meta = metadata(result, NAME)
    shown = {k: v for k, v in meta.items() if k not in ("report", "result")}
    print(shown)
    assert meta["breaker"] is False and meta["breaker_opened_after_s"] is None
    assert meta["pool_in_use_max"] == 4 and meta["n_503"] > 0
    # Each 503 came only after the full acquire timeout (2 s): slow, not a breaker's.
    assert meta["p95_503_s"] >= 1.5
    assert checks(result) == {
        "fast_503": False,
        "recovered_within_s": True,
        "zero_loss_of_accepted": True,
    }
    assert not result.success
    assert not _table_exists(pg, meta["pg_table"])
    _no_orphans()


def test_unreachable_postgres_fails_the_run_with_one_line(tmp_path: Path, pg: dict) -> None:
    from deliverydags.chaos import free_port

    port = free_port()  # nothing listens there
    result = materialize(chaos_pool_exhaustion, tmp_path, {**BASE, **pg, "pg_port": port})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert f"cannot use Postgres at {pg['pg_host']}:{port}/{pg['pg_db']}" in message, message
    assert "\n" not in message.strip()
    _no_orphans()
