"""The target's optional Postgres dependency: one row per admitted message.

Before a message is published, POST /v1/messages records it (id, stream, seq) in a
table of this target's own, named after --stream-prefix, through a fixed-size asyncpg
pool: an admission log such as a real service keeps for audit. The row is written
before the publish so a 503 never follows a publish (that would turn into a duplicate
the client cannot know about); a row whose publish then failed only means "admitted".

When the database is slow or locked, the pool's connections stay busy, new requests
wait for one (``acquire_timeout_s``) and fail; after N consecutive failures the breaker
opens and requests are answered 503 at once, without touching the pool, until a trial
call after the cool-down finds the database answering again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .breaker import Breaker, State
from .config import PostgresSettings, SetupError
from .messages import Message

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0
DOWN_LOG_INTERVAL_S = 10.0
_DB_ERRORS = (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class DatabaseDown(Exception):
    """The database cannot take the row now; answer 503 with ``retry_after_s``."""

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def table_name(stream_prefix: str) -> str:
    """This target's table: the prefix as a plain identifier (also what chaos runs lock)."""
    ident = re.sub(r"[^a-z0-9_]", "_", stream_prefix.lower())
    return ident[:54] + "_admitted"  # Postgres keeps 63 bytes of a name


def where(dsn: str) -> str:
    """host:port/db of a DSN, for logs and errors: never its user or password."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


async def _no_reset(conn: asyncpg.Connection) -> None:
    pass


class Database:
    def __init__(self, settings: PostgresSettings, stream_prefix: str) -> None:
        self._s = settings
        self.table = table_name(stream_prefix)
        self._insert = (
            f'INSERT INTO "{self.table}" (id, stream, seq) VALUES ($1, $2, $3) '
            "ON CONFLICT (id) DO NOTHING"
        )
        self.breaker = (
            Breaker(settings.breaker_failures, settings.breaker_cooldown_s)
            if settings.breaker
            else None
        )
        self._pool: asyncpg.Pool | None = None
        self.in_use = 0  # connections held by a request
        self.waiting = 0  # requests waiting for a connection
        self.errors = 0  # acquire timeouts and database errors
        self.rejected = 0  # answered 503 by the open breaker, without the pool
        self._next_log = 0.0

    async def start(self) -> None:
        """Open the pool and create the table; SetupError (no DSN in it) when it cannot."""
        size = self._s.pool_size
        try:
            self._pool = await asyncpg.create_pool(
                self._s.dsn,
                min_size=size,
                max_size=size,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=self._s.query_timeout_s,
                # An admission log may lose its last few ms of rows if Postgres crashes
                # (the message itself is in the broker): no WAL fsync wait per request.
                server_settings={"synchronous_commit": "off"},
                # Requests change no session state: skip the reset query per release.
                reset=_no_reset,
            )
            await self._pool.execute(
                f'CREATE TABLE IF NOT EXISTS "{self.table}" (id text PRIMARY KEY, '
                "stream text NOT NULL, seq bigint NOT NULL, "
                "admitted_at timestamptz NOT NULL DEFAULT now())"
            )
        except (*_DB_ERRORS, ValueError) as exc:
            if self._pool is not None:
                self._pool.terminate()
            reason = type(exc).__name__ if isinstance(exc, ValueError) else exc
            raise SetupError(
                f"cannot use Postgres at {where(self._s.dsn)}: {reason} (check --postgres-dsn)"
            ) from None
        log.info(
            "Postgres %s, table %s, pool of %d, breaker %s",
            where(self._s.dsn),
            self.table,
            size,
            "on" if self.breaker else "off",
        )

    async def record(self, msg: Message) -> None:
        """Write ``msg``'s row or raise DatabaseDown (fast while the breaker is open)."""
        breaker = self.breaker
        if breaker is not None and not breaker.allow():
            self.rejected += 1
            raise DatabaseDown("circuit open", breaker.retry_after_s())
        assert self._pool is not None
        done = False
        try:
            self.waiting += 1
            try:
                conn = await self._pool.acquire(timeout=self._s.acquire_timeout_s)
            finally:
                self.waiting -= 1
            self.in_use += 1
            try:
                await conn.execute(self._insert, msg.id, msg.stream, msg.seq)
            finally:
                self.in_use -= 1
                await self._pool.release(conn)
            done = True
        except _DB_ERRORS as exc:
            done = True
            self.errors += 1
            self._log_down(exc)
            if breaker is not None:
                breaker.failure()
            raise DatabaseDown("database unavailable") from None
        finally:
            if breaker is not None and not done:
                breaker.abandon()  # cancelled: neither a success nor the DB's fault
        if breaker is not None:
            breaker.success()

    def _log_down(self, exc: BaseException) -> None:
        now = asyncio.get_running_loop().time()
        if now >= self._next_log:
            self._next_log = now + DOWN_LOG_INTERVAL_S
            log.warning("database unavailable, answering 503: %s", type(exc).__name__)

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), 5.0)
            except (TimeoutError, *_DB_ERRORS):
                self._pool.terminate()

    def collect(self) -> Iterator[Metric]:
        """Pool and breaker figures for /metrics (registered as a prometheus collector)."""
        state = self.breaker.state if self.breaker else State.CLOSED
        yield GaugeMetricFamily("db_pool_size", "Connections in the pool.", self._s.pool_size)
        yield GaugeMetricFamily("db_pool_in_use", "Connections held by a request.", self.in_use)
        yield GaugeMetricFamily(
            "db_pool_waiting", "Requests waiting for a connection.", self.waiting
        )
        yield GaugeMetricFamily(
            "db_breaker_open",
            "1 while the breaker rejects calls (open or half-open).",
            float(state != State.CLOSED),
        )
        yield GaugeMetricFamily(
            "db_breaker_state", "0 closed, 1 open, 2 half-open (trial allowed).", int(state)
        )
        yield CounterMetricFamily(
            "db_breaker_opened",
            "Times the breaker opened.",
            self.breaker.opened_count if self.breaker else 0,
        )
        yield CounterMetricFamily(
            "db_errors", "Pool acquire timeouts and database errors.", self.errors
        )
        yield CounterMetricFamily(
            "db_rejected", "Requests answered 503 by the open breaker.", self.rejected
        )
