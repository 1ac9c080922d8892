"""`chaos_pool_exhaustion`: the target's Postgres pool exhausted mid-load, for real.

The reference target runs with ``--postgres-dsn`` (the machine's Postgres) and records
every admitted message in a table of its own before publishing it, through a pool of
``pool_size`` connections (target/database.py). The fault: this run opens its own
connection and takes ``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` on that table. Every
INSERT of the target then blocks holding its pool connection, the pool is exhausted,
acquires time out, and the target's circuit breaker should open and answer 503 at once
(with Retry-After) instead of letting requests hang. ``hold_s`` later the lock is
released (ROLLBACK) and admission must come back within ``recover_within_s``.

Each run gets its own ``--stream-prefix`` (so its own table), dropped at the end.
Evidence of the answers' speed is k6's own per-request records (``--out json``, gzip):
``http_req_duration`` with its ``status`` tag. The breaker's state and the pool's use
are sampled from the target's /metrics while the fault is on.

Plain Python: the scenario (deliverydags.scenarios.chaos_pool_exhaustion) builds
:class:`PoolExhaustion` from its config (:class:`PoolKnobs`, the Postgres connection
arguments).
"""

from __future__ import annotations

import gzip
import math
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import psycopg2
from prometheus_client.parser import text_string_to_metric_families
from psycopg2 import sql

from deliverydags.chaos.hook import ChaosHook, ChaosTiming, gate, recovered_gate
from deliverydags.chaos.probes import dlq_depth, stream_prefix
from deliverydags.formats.send_records import read_sends
from deliverydags.run.hooks import RunContext
from deliverydags.target.database import table_name

K6_POINTS_FILE = "k6_points.json.gz"
SAMPLE_EVERY_S = 0.2
LOCK_TIMEOUT = "5s"  # the LOCK waits at most this for the target's in-flight INSERTs
CONNECT_TIMEOUT_S = 5
VU_SECONDS = 12.0  # a message's worst time in a VU: 3 tries, 2 sleeps of <= 5 s (k6/lib)
MAX_VUS = 2000


class TableLock:
    """An ACCESS EXCLUSIVE lock on one table, held by a connection of our own."""

    def __init__(self, pg: dict, table: str) -> None:
        self.pg = pg
        self.table = table
        self._conn = None

    def take(self) -> None:
        conn = psycopg2.connect(
            **self.pg, connect_timeout=CONNECT_TIMEOUT_S, application_name="deliverydags-chaos"
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SET lock_timeout = %s", (LOCK_TIMEOUT,))
                cur.execute(
                    sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                        sql.Identifier(self.table)
                    )
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn  # the transaction stays open: the lock is held

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.rollback()
            finally:
                conn.close()


class MetricsSampler:
    """Polls the target's /metrics: breaker state and pool use over time."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/metrics"
        self.samples: list[tuple[int, dict[str, float]]] = []  # (time_ns, values)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=1.0) as resp:
                    text = resp.read().decode()
                values = {
                    f.name: f.samples[0].value
                    for f in text_string_to_metric_families(text)
                    if f.name.startswith("db_") and f.samples
                }
                self.samples.append((time.time_ns(), values))
            except (OSError, ValueError):
                pass  # a missed sample: the next one counts
            self._stop.wait(SAMPLE_EVERY_S)


@dataclass(frozen=True)
class PoolKnobs:
    """The scenario's own knobs (the asset's config fields of the same names)."""

    rate: float  # the load's arrival rate (msg/s): sizes k6's VUs
    recover_within_s: float
    fast_503_s: float  # p95 of the 503 answers while exhausted must be below this
    detect_grace_s: float  # the breaker may take this long to open (> acquire timeout)
    pool_size: int
    breaker: bool  # False: the broken variant (--pg-breaker off)


class PoolExhaustion(ChaosHook):
    fault = "pool_exhaustion"

    def __init__(
        self,
        timing: ChaosTiming,
        knobs: PoolKnobs,
        pg: dict,
        run_dir: Path,
        redis_url: str,
    ) -> None:
        super().__init__(timing)
        self.knobs = knobs
        self.pg = dict(pg)
        self.run_dir = run_dir
        self.redis_url = redis_url
        self.table: str | None = None
        self.prefix = "dd"
        self._table_lock: TableLock | None = None
        self._sampler: MetricsSampler | None = None

    def k6_args(self) -> list[str]:
        return ["--out", f"json={self.run_dir / K6_POINTS_FILE}"]

    def k6_env(self) -> dict[str, str]:
        # A sender honouring Retry-After sleeps up to 5 s between its tries:
        # enough VUs that the arrival rate holds while the breaker is open.
        return {"DD_MAX_VUS": str(min(MAX_VUS, math.ceil(self.knobs.rate * VU_SECONDS)))}

    def before_load(self, ctx: RunContext) -> None:
        self.prefix = stream_prefix(ctx.settings.target_args)
        self.table = table_name(self.prefix)
        self._sampler = MetricsSampler(ctx.target_url)
        self._sampler.start()
        super().before_load(ctx)

    def inject(self, ctx: RunContext) -> None:
        assert self.table is not None
        self._table_lock = TableLock(self.pg, self.table)
        self._table_lock.take()
        self.injected_ns = time.time_ns()  # the moment the lock is held, not asked for
        ctx.log(f"chaos: holding ACCESS EXCLUSIVE on {self.table} for {self.timing.hold_s:g} s")

    def release(self, ctx: RunContext) -> None:
        if self._table_lock is not None:
            self._table_lock.release()

    def observe(self, ctx: RunContext) -> dict:
        if self._sampler is not None:
            self._sampler.stop()
        rows = self._db_rows()
        self._drop_table()
        return {
            "dlq": dlq_depth(self.redis_url, self.prefix),
            "pg_table": self.table,
            **rows,
            **self._answers(),
            **self._breaker(),
        }

    def close(self, ctx: RunContext | None = None) -> None:
        try:
            super().close(ctx)
        finally:
            if self._sampler is not None:
                self._sampler.stop()
            if ctx is None:  # the asset's final cleanup; after_load drops it after observing
                self._drop_table()

    def _db_rows(self) -> dict:
        """Every accepted message must have its row: the DB really is on the request path."""
        accepted = {r.id for r in read_sends(self.run_dir) if r.accepted}
        conn = psycopg2.connect(**self.pg, connect_timeout=CONNECT_TIMEOUT_S)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SELECT id FROM {}").format(sql.Identifier(self.table)))
                rows = {r[0] for r in cur.fetchall()}
        finally:
            conn.close()
        return {"db_rows": len(rows), "accepted_without_row": len(accepted - rows)}

    def _drop_table(self) -> None:
        if self.table is None:
            return
        try:
            conn = psycopg2.connect(**self.pg, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg2.Error:
            return  # nothing we can do; the name is per run, so it harms no other run
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.table)))
        finally:
            conn.close()

    def gates(self, figures: dict, ledger: dict) -> list[dict]:
        p95, hung, n = figures["p95_503_s"], figures["unanswered_during"], figures["n_503"]
        fast = n > 0 and hung == 0 and p95 is not None and p95 < self.knobs.fast_503_s
        observed = {"p95_503_s": p95, "n_503": n, "unanswered": hung}
        return [
            gate("fast_503", fast, observed, self.knobs.fast_503_s),
            recovered_gate(figures, self.knobs.recover_within_s),
            gate("zero_loss_of_accepted", figures["lost"] == 0, figures["lost"], 0),
        ]

    def _answers(self) -> dict:
        """k6's per-request records while the lock was held."""
        assert self.injected_ns is not None and self.released_ns is not None
        grace_ns = int(self.knobs.detect_grace_s * 1e9)
        t, dur, status = _k6_requests(self.run_dir / K6_POINTS_FILE)
        # k6 stamps a request when it ends: its start is the stamp minus its duration.
        start = t - dur * 1e6
        during = (start >= self.injected_ns) & (start < self.released_ns)
        judged = during & (start >= self.injected_ns + grace_ns) & (status == 503)
        all_503 = during & (status == 503)

        def p95(mask: np.ndarray) -> float | None:
            return round(float(np.percentile(dur[mask], 95)) / 1000, 3) if mask.any() else None

        return {
            "requests_during": int(during.sum()),
            "n_503": int(judged.sum()),
            "p95_503_s": p95(judged),
            "p95_503_incl_grace_s": p95(all_503),
            "max_answer_during_s": round(float(dur[during].max()) / 1000, 3)
            if during.any()
            else None,
            "unanswered_during": int((during & (status == 0)).sum()),
            "accepted_during": int((during & (status == 202)).sum()),
        }

    def _breaker(self) -> dict:
        """When the service's breaker opened and closed, and how full its pool got."""
        assert self.injected_ns is not None and self.released_ns is not None
        samples = self._sampler.samples if self._sampler else []
        during = [(t, v) for t, v in samples if self.injected_ns <= t]
        opened = next((t for t, v in during if v.get("db_breaker_open") == 1), None)
        closed = next(
            (t for t, v in during if t >= self.released_ns and v.get("db_breaker_open") == 0),
            None,
        )
        in_use = [v.get("db_pool_in_use", 0.0) for t, v in during if t < self.released_ns]
        waiting = [v.get("db_pool_waiting", 0.0) for t, v in during if t < self.released_ns]
        last = samples[-1][1] if samples else {}

        def since(t: int | None, ref: int) -> float | None:
            return None if t is None else round((t - ref) / 1e9, 3)

        return {
            "breaker": self.knobs.breaker,
            "pool_size": self.knobs.pool_size,
            "breaker_opened_after_s": since(opened, self.injected_ns),
            "breaker_closed_after_release_s": since(closed, self.released_ns)
            if self.knobs.breaker
            else None,
            "breaker_opened_count": int(last.get("db_breaker_opened", 0)),
            "pool_in_use_max": int(max(in_use, default=0)),
            "pool_waiting_max": int(max(waiting, default=0)),
            "metrics_samples": len(samples),
        }


def _k6_requests(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(end time ns, duration ms, status) of every http_req_duration point k6 wrote."""
    ends, durs, codes = [], [], []
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
        for line in f:
            if b'"http_req_duration"' not in line or b'"Point"' not in line:
                continue
            data = orjson.loads(line)["data"]
            ends.append(datetime.fromisoformat(data["time"]).timestamp() * 1e9)
            durs.append(float(data["value"]))
            codes.append(int(data["tags"].get("status") or 0))
    return np.asarray(ends), np.asarray(durs), np.asarray(codes)
