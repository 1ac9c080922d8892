"""Nightly results in DuckDB, one row per (night, scenario), so later assets query across
nights. Writing a night again replaces it. DuckDB takes one writer process at a time;
the `load_test` pool (one run at a time) serialises the writers in Dagster."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import orjson

from deliverydags.config import SOAK_SCENARIO

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    night DATE NOT NULL,
    scenario VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    run_id VARCHAR,
    started_at TIMESTAMPTZ,
    delivery_rate DOUBLE,
    result JSON NOT NULL,
    stored_at TIMESTAMPTZ DEFAULT current_timestamp,
    PRIMARY KEY (night, scenario)
)
"""


# The nightly review (trend, gate, notifications) keeps its memory next to the results, so
# it survives restarts and a re-run of a night replaces that night's rows (primary keys).
ANALYSIS_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    night DATE NOT NULL, scenario VARCHAR NOT NULL, kind VARCHAR NOT NULL, report JSON NOT NULL,
    stored_at TIMESTAMPTZ DEFAULT current_timestamp, PRIMARY KEY (night, scenario, kind)
);
CREATE TABLE IF NOT EXISTS trend_findings (
    scenario VARCHAR NOT NULL, metric VARCHAR NOT NULL, detector VARCHAR NOT NULL,
    night DATE NOT NULL, direction VARCHAR NOT NULL, confirmed_on DATE NOT NULL,
    finding JSON NOT NULL, first_reported_at TIMESTAMPTZ DEFAULT current_timestamp,
    PRIMARY KEY (scenario, metric, detector, night)
);
CREATE TABLE IF NOT EXISTS trend_acks (
    scenario VARCHAR NOT NULL, metric VARCHAR NOT NULL, night DATE NOT NULL, note VARCHAR,
    acked_at TIMESTAMPTZ DEFAULT current_timestamp, PRIMARY KEY (scenario, metric, night)
);
CREATE TABLE IF NOT EXISTS phase_history (
    rollout VARCHAR NOT NULL, scenario VARCHAR NOT NULL, night DATE NOT NULL,
    phase VARCHAR NOT NULL, decision VARCHAR NOT NULL, detail JSON NOT NULL,
    decided_at TIMESTAMPTZ DEFAULT current_timestamp, PRIMARY KEY (rollout, scenario, night)
);
CREATE TABLE IF NOT EXISTS baselines (
    week DATE NOT NULL, scenario VARCHAR NOT NULL, baseline JSON NOT NULL,
    stored_at TIMESTAMPTZ DEFAULT current_timestamp, PRIMARY KEY (week, scenario)
);
CREATE TABLE IF NOT EXISTS notifications (
    key VARCHAR PRIMARY KEY, channel VARCHAR NOT NULL, detail JSON,
    sent_at TIMESTAMPTZ DEFAULT current_timestamp
)
"""

# Another process holding the write lock (a parallel step of the same run) is waited
# for, not failed on: writes take milliseconds. The command line waits less.
LOCK_WAIT_S = 60.0


class StoreLockedError(RuntimeError):
    """Another process holds the results store; the message is one line."""


def _open(path: Path, read_only: bool, lock_wait_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + lock_wait_s
    pause = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() > deadline:
                holder = re.search(r"PID (\d+)", str(exc))
                who = f"process {holder[1]}" if holder else "another process"
                raise StoreLockedError(
                    f"{path} is in use by {who} (DuckDB allows one writer): "
                    "try again when it has finished"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def _json(doc: Any) -> str:
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS).decode()


class ResultsStore:
    def __init__(self, path: Path, lock_wait_s: float = LOCK_WAIT_S) -> None:
        self.path = path
        self.lock_wait_s = lock_wait_s

    @contextmanager
    def _connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            con = duckdb.connect()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = _open(self.path, read_only, self.lock_wait_s)
        try:
            if not read_only or not self.path.exists():
                con.execute(SCHEMA)
                con.execute(ANALYSIS_SCHEMA)
            yield con
        finally:
            con.close()

    def save(self, night: str, result: dict) -> None:
        """Store ``result`` as the night's result for its scenario, replacing any earlier one."""
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO results "
                "(night, scenario, status, run_id, started_at, delivery_rate, result) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    night,
                    result["scenario"],
                    result.get("status", "passed"),
                    result.get("run_id"),
                    result.get("started_at"),
                    result.get("delivery_rate"),
                    orjson.dumps(result).decode(),
                ],
            )

    def load(self, night: str, scenario: str = SOAK_SCENARIO) -> dict | None:
        with self._connect(read_only=True) as con:
            row = con.execute(
                "SELECT result FROM results WHERE night = ? AND scenario = ?", [night, scenario]
            ).fetchone()
        return orjson.loads(row[0]) if row else None

    def chaos_results(self, night: str) -> list[dict]:
        """The night's stored chaos results (those with a "chaos" part), by scenario."""
        with self._connect(read_only=True) as con:
            rows = con.execute(
                "SELECT result FROM results WHERE night = ? "
                "AND json_extract(result, '$.chaos') IS NOT NULL ORDER BY scenario",
                [night],
            ).fetchall()
        return [orjson.loads(doc) for (doc,) in rows]

    def nights(self, scenario: str = SOAK_SCENARIO) -> list[tuple[str, dict]]:
        """Every stored night of ``scenario``, oldest first, as (YYYY-MM-DD, result)."""
        with self._connect(read_only=True) as con:
            rows = con.execute(
                "SELECT strftime(night, '%Y-%m-%d'), result FROM results "
                "WHERE scenario = ? ORDER BY night",
                [scenario],
            ).fetchall()
        return [(night, orjson.loads(doc)) for night, doc in rows]

    # --- the nightly review's tables -----------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of a read-only query; none when the table is not created yet."""
        with self._connect(read_only=True) as con:
            try:
                return con.execute(sql, list(params)).fetchall()
            except duckdb.CatalogException:
                return []

    def save_many(self, items: Sequence[tuple[str, dict]]) -> None:
        """``save`` for many (night, result) pairs in one transaction (history imports)."""
        rows = [
            [
                night,
                r["scenario"],
                r.get("status", "passed"),
                r.get("run_id"),
                r.get("started_at"),
                r.get("delivery_rate"),
                _json(r),
            ]
            for night, r in items
        ]
        with self._connect() as con:
            con.execute("BEGIN")
            con.executemany(
                "INSERT OR REPLACE INTO results "
                "(night, scenario, status, run_id, started_at, delivery_rate, result) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            con.execute("COMMIT")

    def count(self, scenario: str | None = None) -> int:
        """Stored (night, scenario) rows, of one scenario or all."""
        where, params = ("WHERE scenario = ?", [scenario]) if scenario else ("", [])
        rows = self._rows(f"SELECT count(*) FROM results {where}", params)
        return int(rows[0][0]) if rows else 0

    def save_report(self, night: str, scenario: str, kind: str, report: dict) -> None:
        """One analysis report per (night, scenario, kind); a re-run replaces it."""
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO reports (night, scenario, kind, report) "
                "VALUES (?, ?, ?, ?)",
                [night, scenario, kind, _json(report)],
            )

    def load_report(self, night: str, scenario: str, kind: str) -> dict | None:
        rows = self._rows(
            "SELECT report FROM reports WHERE night = ? AND scenario = ? AND kind = ?",
            [night, scenario, kind],
        )
        return orjson.loads(rows[0][0]) if rows else None

    def reports(self, night: str, scenario: str) -> dict[str, dict]:
        """Every stored report of a night and scenario, by kind."""
        rows = self._rows(
            "SELECT kind, report FROM reports WHERE night = ? AND scenario = ? ORDER BY kind",
            [night, scenario],
        )
        return {kind: orjson.loads(doc) for kind, doc in rows}

    def save_findings(self, scenario: str, findings: Sequence[dict]) -> None:
        """Record trend findings (rows of ``analysis.trend``); a finding already recorded
        keeps its first report time, so a re-run never makes it new again."""
        with self._connect() as con:
            for f in findings:
                con.execute(
                    "INSERT INTO trend_findings "
                    "(scenario, metric, detector, night, direction, confirmed_on, finding) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                    "direction = excluded.direction, confirmed_on = excluded.confirmed_on, "
                    "finding = excluded.finding",
                    [
                        scenario,
                        f["metric"],
                        f["detector"],
                        f["night"],
                        f["direction"],
                        f["confirmed_on"],
                        _json(f),
                    ],
                )

    def findings(self, scenario: str, confirmed_before: str | None = None) -> list[dict]:
        """Recorded findings, oldest confirmation first (optionally only those confirmed
        before a night), each with ``first_reported_at``."""
        where, params = "scenario = ?", [scenario]
        if confirmed_before is not None:
            where += " AND confirmed_on < ?"
            params.append(confirmed_before)
        rows = self._rows(
            f"SELECT finding, strftime(first_reported_at, '%Y-%m-%dT%H:%M:%SZ') "
            f"FROM trend_findings WHERE {where} ORDER BY confirmed_on, metric, detector, night",
            params,
        )
        return [{**orjson.loads(doc), "first_reported_at": at} for doc, at in rows]

    def ack(self, scenario: str, metric: str, night: str, note: str = "") -> None:
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO trend_acks (scenario, metric, night, note) "
                "VALUES (?, ?, ?, ?)",
                [scenario, metric, night, note],
            )

    def acks(self, scenario: str) -> set[tuple[str, str]]:
        """Acknowledged regressions as (metric, night)."""
        rows = self._rows(
            "SELECT metric, strftime(night, '%Y-%m-%d') FROM trend_acks WHERE scenario = ?",
            [scenario],
        )
        return {(m, n) for m, n in rows}

    def save_decision(self, rollout: str, scenario: str, detail: dict) -> None:
        """Tonight's gate decision (``GateDecision.as_dict()`` and more); replaces the night's."""
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO phase_history "
                "(rollout, scenario, night, phase, decision, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    rollout,
                    scenario,
                    detail["night"],
                    detail["phase_after"],
                    detail["decision"],
                    _json(detail),
                ],
            )

    def phase_history(self, rollout: str, scenario: str, before: str | None = None) -> list[dict]:
        """Decisions oldest first, as ``{"night", "phase", "decision", "detail"}`` records."""
        where, params = "rollout = ? AND scenario = ?", [rollout, scenario]
        if before is not None:
            where += " AND night < ?"
            params.append(before)
        rows = self._rows(
            "SELECT strftime(night, '%Y-%m-%d'), phase, decision, detail FROM phase_history "
            f"WHERE {where} ORDER BY night",
            params,
        )
        return [
            {"night": n, "phase": p, "decision": d, "detail": orjson.loads(doc)}
            for n, p, d, doc in rows
        ]

    def save_baseline(self, week: str, scenario: str, baseline: dict) -> None:
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO baselines (week, scenario, baseline) VALUES (?, ?, ?)",
                [week, scenario, _json(baseline)],
            )

    def latest_baseline(self, scenario: str, before: str) -> tuple[str, dict] | None:
        """The newest baseline of a week that began before ``before``, as (week, baseline)."""
        rows = self._rows(
            "SELECT strftime(week, '%Y-%m-%d'), baseline FROM baselines "
            "WHERE scenario = ? AND week < ? ORDER BY week DESC LIMIT 1",
            [scenario, before],
        )
        return (rows[0][0], orjson.loads(rows[0][1])) if rows else None

    def notified(self, key: str) -> bool:
        return bool(self._rows("SELECT 1 FROM notifications WHERE key = ?", [key]))

    def open_pages(self) -> list[str]:
        """Keys of the PagerDuty triggers sent and not resolved since (no ``resolve:<key>``)."""
        rows = self._rows(
            "SELECT key FROM notifications n WHERE channel = 'pagerduty' AND key LIKE 'pd:%' "
            "AND NOT EXISTS (SELECT 1 FROM notifications r WHERE r.key = 'resolve:' || n.key) "
            "ORDER BY sent_at, key"
        )
        return [r[0] for r in rows]

    def mark_notified(self, key: str, channel: str, detail: dict | None = None) -> None:
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO notifications (key, channel, detail) VALUES (?, ?, ?)",
                [key, channel, _json(detail or {})],
            )
