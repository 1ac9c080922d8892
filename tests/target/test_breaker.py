"""The Postgres circuit breaker: its state machine on a fake clock, then the target with a
real Postgres whose table is locked (fast 503 + Retry-After, /metrics, recovery)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson
import psycopg2
import pytest

from deliverydags.target.breaker import Breaker, State
from deliverydags.target.database import table_name
from tests.target.conftest import (
    SECRET,
    TOKEN,
    TargetFactory,
    call,
    messages,
    metrics,
    post_message,
)

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breaker(failures: int = 3, cooldown_s: float = 5.0) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(failures, cooldown_s, clock), clock


def test_opens_after_n_consecutive_failures_only() -> None:
    b, _ = _breaker(3)
    for _ in range(2):
        assert b.allow()
        b.failure()
    b.success()  # a success in between resets the count
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state is State.CLOSED and b.allow()
    b.failure()
    assert b.state is State.OPEN and b.opened_count == 1
    assert not b.allow()


def test_open_rejects_until_cooldown_then_lets_exactly_one_trial_through() -> None:
    b, clock = _breaker(1, 5.0)
    b.failure()
    assert not b.allow() and b.retry_after_s() == 5
    clock.now += 3.2
    assert not b.allow() and b.retry_after_s() == 2  # ceil of the 1.8 s left
    clock.now += 1.8
    assert b.state is State.HALF_OPEN
    assert b.allow()  # the trial
    assert not b.allow() and not b.allow()  # everyone else while it is out
    assert b.state is State.HALF_OPEN


def test_trial_success_closes_and_failure_reopens_for_a_new_cooldown() -> None:
    b, clock = _breaker(1, 5.0)
    b.failure()
    clock.now += 5
    assert b.allow()
    b.failure()  # the trial failed
    assert b.state is State.OPEN and b.opened_count == 2
    clock.now += 4.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow()
    b.success()
    assert b.state is State.CLOSED and b.allow() and b.allow()


def test_abandoned_trial_frees_the_slot_and_late_failures_do_not_extend_open() -> None:
    b, clock = _breaker(1, 5.0)
    b.failure()
    opened_at = clock.now
    clock.now += 2
    b.failure()  # a call let through before it opened fails late
    clock.now = opened_at + 5
    assert b.allow()
    b.abandon()  # cancelled: no answer either way
    assert b.allow()  # a new trial may go


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Breaker(0, 1.0)
    with pytest.raises(ValueError):
        Breaker(1, 0.0)


# -- the target with a real Postgres -------------------------------------------------------


@pytest.fixture
def pg(postgres_env: dict[str, str]) -> dict:
    return {
        "host": postgres_env["DAGSTER_PG_HOST"],
        "port": int(postgres_env["DAGSTER_PG_PORT"]),
        "user": postgres_env["DAGSTER_PG_USER"],
        "dbname": postgres_env["DAGSTER_PG_DB"],
    }


@pytest.fixture
def prefix(pg: dict) -> Iterator[str]:
    """A stream prefix (so a table) of this test's own, dropped afterwards."""
    name = f"ddtest-{uuid.uuid4().hex[:8]}"
    yield name
    conn = psycopg2.connect(**pg)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table_name(name)}"')
    conn.close()


def _dsn(pg: dict) -> str:
    return f"postgresql://{pg['user']}@{pg['host']}:{pg['port']}/{pg['dbname']}"


def _timed_posts(base: str, msgs: list[dict]) -> list[tuple[int, float, dict]]:
    """POST each message concurrently: (status, seconds to answer, headers)."""

    def one(msg: dict) -> tuple[int, float, dict]:
        t = time.monotonic()
        status, headers, _ = call(
            "POST", f"{base}/v1/messages", orjson.dumps(msg), {"Authorization": f"Bearer {TOKEN}"}
        )
        return status, time.monotonic() - t, headers

    with ThreadPoolExecutor(len(msgs)) as pool:
        return list(pool.map(one, msgs))


def _run_locked(target: TargetFactory, pg: dict, prefix: str, *flags: str) -> dict:
    svc = target(
        "--postgres-dsn",
        _dsn(pg),
        "--stream-prefix",
        prefix,
        "--pg-pool-size",
        "2",
        "--pg-acquire-timeout-s",
        "1",
        "--pg-query-timeout-s",
        "1",
        "--pg-breaker-failures",
        "3",
        "--pg-breaker-cooldown-s",
        "4",
        "--allow-callback",
        "127.0.0.1:9",
        *flags,
    )
    cb = "http://127.0.0.1:9/receipts"  # receipts are not what this test looks at
    assert post_message(svc.url, messages(cb, 1, 1, "warm")[0])[0] == 202
    assert metrics(svc.url)["db_breaker_open"] == 0.0
    lock = psycopg2.connect(**pg)
    with lock.cursor() as cur:
        cur.execute(f'LOCK TABLE "{table_name(prefix)}" IN ACCESS EXCLUSIVE MODE')
    try:
        first = _timed_posts(svc.url, messages(cb, 8, 1, "first"))  # exhaust the pool
        time.sleep(0.2)
        later = _timed_posts(svc.url, messages(cb, 8, 1, "later"))
        during = metrics(svc.url)
    finally:
        lock.rollback()
        lock.close()
    deadline = time.monotonic() + 15
    recovered = None
    while time.monotonic() < deadline:
        status, _ = post_message(svc.url, messages(cb, 1, 1, uuid.uuid4().hex[:6])[0])
        if status == 202:
            recovered = metrics(svc.url)
            break
        time.sleep(0.2)
    return {"first": first, "later": later, "during": during, "after": recovered}


@pytest.mark.timeout(90)
def test_locked_table_opens_the_breaker_fast_503_then_recovers(
    target: TargetFactory, pg: dict, prefix: str
) -> None:
    out = _run_locked(target, pg, prefix)
    assert all(status == 503 for status, _, _ in out["first"] + out["later"])
    # The first wave waited for the exhausted pool; once open, answers are immediate.
    assert max(t for _, t, _ in out["first"]) >= 0.9
    assert max(t for _, t, _ in out["later"]) < 0.3
    assert all(int(h["Retry-After"]) >= 1 for _, _, h in out["later"])
    during = out["during"]
    assert during["db_breaker_open"] == 1.0 and during["db_breaker_opened_total"] >= 1
    assert during["db_rejected_total"] >= 8 and during["db_errors_total"] >= 3
    after = out["after"]
    assert after is not None, "no 202 within 15 s of the release"
    assert after["db_breaker_open"] == 0.0 and after["db_pool_in_use"] == 0.0


@pytest.mark.timeout(90)
def test_without_the_breaker_every_request_waits_for_the_pool(
    target: TargetFactory, pg: dict, prefix: str
) -> None:
    out = _run_locked(target, pg, prefix, "--pg-breaker", "off")
    assert all(status == 503 for status, _, _ in out["later"])
    assert min(t for _, t, _ in out["later"]) >= 0.9  # each one hangs for the acquire timeout
    assert out["during"]["db_breaker_open"] == 0.0 and out["during"]["db_rejected_total"] == 0
    assert out["after"] is not None


def _target_cli(*args: str) -> subprocess.CompletedProcess:
    env = {"DELIVERYDAGS_TARGET_TOKEN": TOKEN, "DELIVERYDAGS_CALLBACK_SECRET": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "deliverydags.target", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=30,
    )


def test_unusable_postgres_is_one_line_without_the_password() -> None:
    out = _target_cli("--postgres-dsn", "postgresql://u:s3cr3tpw@127.0.0.1:1/db")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "cannot use Postgres at 127.0.0.1:1/db" in out.stderr
    assert "s3cr3tpw" not in out.stderr + out.stdout
    bad = _target_cli("--postgres-dsn", "mysql://u:s3cr3tpw@h/db")
    assert bad.returncode == 2 and "must be a postgresql:// URL" in bad.stderr
    assert "s3cr3tpw" not in bad.stderr
