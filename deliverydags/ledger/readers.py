"""Read a run's files with DuckDB into columns: numpy arrays, Arrow only for strings.

DuckDB parses the NDJSON in parallel and does the one string-keyed operation (matching
receipts to sends by id, a hash join); everything after that works on dense integer
message numbers in numpy. Never one Python object per message.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deliverydags.formats import RECEIPTS_FILE, REJECTED_FILE, SENDS_FILE
from deliverydags.ledger.timebase import sent_ns

CLASSES = ("accepted", "rejected", "indeterminate")
# Beyond year 2255 in ms: sent_ms * 10**6 would overflow int64 ns.
_MAX_SENT_MS = 9e12


@dataclass
class Sends:
    """One entry per sent message (first line of each id), in send order."""

    ids: pa.ChunkedArray | pa.Array
    stream: np.ndarray  # int32 code; only equality matters
    seq: np.ndarray  # int64
    sent_ms: np.ndarray  # float64, as written (empty unless asked for)
    sent_ns: np.ndarray  # int64, exact (see timebase)
    cls: np.ndarray  # int8 index into CLASSES
    status: np.ndarray  # int16 HTTP status of the last try
    variant: np.ndarray  # int32 code into variants
    variants: list[str]
    repeated_lines: int  # lines whose id an earlier line already used
    invalid_lines: int  # "dd": 1 lines missing a field or with one of the wrong type


@dataclass
class Receipts:
    """The valid receipts (recorded and within close), in no particular order."""

    arrival: np.ndarray  # int64 key, unique, increasing in arrival order
    recv_ns: np.ndarray  # int64
    delivered: np.ndarray  # bool (else failed)
    msg: np.ndarray  # int32 message number, -1 when the id was never sent
    unexpected_ids: pa.Array  # id of each msg == -1 row, in the same row order
    invalid_lines: int


@contextmanager
def connect(run_dir: Path, threads: int | None, memory_limit: str) -> Iterator:
    """A private in-memory DuckDB that may spill into a temp dir inside the run dir."""
    try:
        spill = tempfile.mkdtemp(prefix=".ledger-spill-", dir=run_dir)
    except OSError:  # read-only run dir: spill to the system temp dir
        spill = tempfile.mkdtemp(prefix="ledger-spill-")
    config = {
        "threads": threads or os.cpu_count() or 1,
        "memory_limit": memory_limit,
        "temp_directory": spill,
        "preserve_insertion_order": True,
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")
    try:  # keep the receipts join building on the sends' ids (half the memory)
        con.execute("SET disabled_optimizers = 'build_side_probe_side'")
    except duckdb.Error:
        pass
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _lit(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _json(path: Path, columns: dict[str, str]) -> str:
    cols = ", ".join(f"{k}: '{v}'" for k, v in columns.items())
    # ignore_errors: a line that is not JSON (k6 console chatter, a torn last line) or
    # longer than DuckDB's maximum_object_size (16 MB) reads as all NULLs.
    return (
        f"read_json({_lit(path)}, format = 'newline_delimited', ignore_errors = true, "
        f"columns = {{{cols}}})"
    )


def read_sends(con: duckdb.DuckDBPyConnection, run_dir: Path, keep_sent_ms: bool) -> Sends:
    path = run_dir / SENDS_FILE
    if not path.exists():
        return _sends_from(pa.table(_EMPTY_SENDS), con, keep_sent_ms)
    src = _json(
        path,
        {
            "dd": "VARCHAR",
            "id": "VARCHAR",
            "stream": "VARCHAR",
            "seq": "BIGINT",
            "sent_ms": "DOUBLE",
            "class": "VARCHAR",
            "status": "SMALLINT",
            "variant": "VARCHAR",
        },
    )
    # Junk lines parse to all-NULL rows. "dd" read as text tells 1 from true or 1.5 (a
    # JSON-typed column would also tell it from "1", at 25 % more parse time).
    table = con.sql(f"""
        SELECT id, stream, seq, sent_ms,
               CASE class WHEN 'accepted' THEN 0 WHEN 'rejected' THEN 1
                          WHEN 'indeterminate' THEN 2 END::TINYINT AS cls,
               coalesce(status, 0) AS status, coalesce(variant, '') AS variant,
               hash(id) AS h,
               coalesce(id IS NOT NULL AND stream IS NOT NULL AND seq IS NOT NULL
                        AND cls IS NOT NULL AND isfinite(sent_ms)
                        AND abs(sent_ms) < {_MAX_SENT_MS}, false) AS ok
        FROM {src}
        WHERE dd IN ('1', '1.0')
    """).to_arrow_table()
    return _sends_from(table, con, keep_sent_ms)


_EMPTY_SENDS = {
    "id": pa.array([], pa.string()),
    "stream": pa.array([], pa.string()),
    "seq": pa.array([], pa.int64()),
    "sent_ms": pa.array([], pa.float64()),
    "cls": pa.array([], pa.int8()),
    "status": pa.array([], pa.int16()),
    "variant": pa.array([], pa.string()),
    "h": pa.array([], pa.uint64()),
    "ok": pa.array([], pa.bool_()),
}


def _sends_from(table: pa.Table, con: duckdb.DuckDBPyConnection, keep_sent_ms: bool) -> Sends:
    # Column by column, each converted and released in turn: at 10 M lines every
    # transient copy of the whole table would cost ~0.5 GB.
    cols = {name: table.column(name) for name in table.column_names}
    del table
    ok = _to_np(cols.pop("ok"), np.bool_)
    rows = None if ok.all() else np.flatnonzero(ok)
    invalid = ok.size - (ok.size if rows is None else rows.size)
    del ok
    ids = cols.pop("id") if rows is None else cols.pop("id").take(rows)
    later = _repeated_lines(_to_np(cols.pop("h"), np.uint64, rows), ids, con)
    if later.size:
        keep = np.ones(len(ids), dtype=bool)
        keep[later] = False
        first = np.flatnonzero(keep)
        rows = first if rows is None else rows[first]
        ids = ids.take(first)
    sent_ms = _to_np(cols.pop("sent_ms"), np.float64, rows)
    variant = _codes(cols.pop("variant"), rows)
    return Sends(
        ids=ids,
        stream=_codes(cols.pop("stream"), rows).indices.to_numpy(),
        seq=_to_np(cols.pop("seq"), np.int64, rows),
        sent_ms=sent_ms if keep_sent_ms else np.empty(0),
        sent_ns=sent_ns(sent_ms),
        cls=_to_np(cols.pop("cls"), np.int8, rows),
        status=_to_np(cols.pop("status"), np.int16, rows),
        variant=variant.indices.to_numpy(),
        variants=variant.dictionary.to_pylist(),
        repeated_lines=int(later.size),
        invalid_lines=int(invalid),
    )


def _to_np(col: pa.ChunkedArray, dtype: type, rows: np.ndarray | None = None) -> np.ndarray:
    arr = col.to_numpy().astype(dtype, copy=False) if col.num_chunks else np.empty(0, dtype)
    return arr if rows is None else arr[rows]


def _codes(column: pa.ChunkedArray, rows: np.ndarray | None) -> pa.DictionaryArray:
    """Dense int32 codes for a string column (dictionary in order of first appearance)."""
    if rows is not None:
        column = column.take(rows)
    if column.num_chunks == 0:
        return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string()))
    return pc.dictionary_encode(column).combine_chunks()


def _repeated_lines(
    h: np.ndarray, ids: pa.ChunkedArray, con: duckdb.DuckDBPyConnection
) -> np.ndarray:
    """Lines whose id an earlier line already used (sorted int64 line numbers).

    Equal ids have equal 64-bit hashes, so only the lines whose hash repeats (found by
    one SIMD sort) need their strings compared.
    """
    ordered = np.sort(h)
    repeats = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if repeats.size == 0:
        return np.empty(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(repeats, h), repeats.size - 1)
    lines = np.flatnonzero(repeats[at] == h)
    suspects = pa.table({"id": ids.take(lines), "line": lines})
    con.register("dd_suspects", suspects)
    try:
        later = con.sql("""
            SELECT line FROM (
                SELECT line, row_number() OVER (PARTITION BY id ORDER BY line) AS k
                FROM dd_suspects
            ) WHERE k > 1 ORDER BY line
        """).fetchnumpy()["line"]
    finally:
        con.unregister("dd_suspects")
    return np.asarray(later, dtype=np.int64)


def read_receipts(
    con: duckdb.DuckDBPyConnection,
    run_dir: Path,
    ids: pa.ChunkedArray,
    close_ns: int | None,
    by_line: bool = False,
) -> Receipts:
    """Valid receipts within close, each matched to its message number by id.

    The arrival key is ``n``; with ``by_line`` (when ``n`` repeats, which the format rules
    out but a restarted collector might do) it is the rank by ``n`` then line in the file.
    """
    path = run_dir / RECEIPTS_FILE
    if not path.exists():
        return Receipts(
            arrival=np.empty(0, np.int64),
            recv_ns=np.empty(0, np.int64),
            delivered=np.empty(0, bool),
            msg=np.empty(0, np.int32),
            unexpected_ids=pa.array([], pa.string()),
            invalid_lines=0,
        )
    src = _json(
        path, {"n": "BIGINT", "recv_ns": "BIGINT", "id": "VARCHAR", "status": "VARCHAR"}
    )
    arrival = "n"
    if by_line:  # a table keeps the file's order in rowid
        con.execute(f"CREATE OR REPLACE TEMP TABLE dd_receipts AS SELECT * FROM {src}")
        src = "(SELECT *, row_number() OVER (ORDER BY n, rowid) AS line_rank FROM dd_receipts)"
        arrival = "line_rank"
    close = "TRUE" if close_ns is None else f"recv_ns <= {int(close_ns)}"
    messages = pa.table({"id": ids, "msg": np.arange(len(ids), dtype=np.int32)})
    con.register("dd_messages", messages)
    try:
        table = con.sql(f"""
            WITH r AS (
                SELECT {arrival} AS arrival, recv_ns, id, status = 'delivered' AS delivered,
                       coalesce(n IS NOT NULL AND recv_ns IS NOT NULL AND id IS NOT NULL
                                AND status IN ('delivered', 'failed'), false) AS ok
                FROM {src}
            )
            SELECT r.arrival, r.recv_ns, r.delivered, coalesce(m.msg, -1) AS msg, r.ok,
                   CASE WHEN m.msg IS NULL THEN r.id END AS uid
            FROM r LEFT JOIN dd_messages m ON r.id = m.id
            WHERE NOT r.ok OR {close}
        """).to_arrow_table()
    finally:
        con.unregister("dd_messages")
        con.execute("DROP TABLE IF EXISTS dd_receipts")
    cols = {name: table.column(name) for name in table.column_names}
    del table
    ok = _to_np(cols.pop("ok"), np.bool_)
    rows = None if ok.all() else np.flatnonzero(ok)
    invalid = ok.size - (ok.size if rows is None else rows.size)
    del ok
    msg = _to_np(cols.pop("msg"), np.int32, rows)
    uid = cols.pop("uid")
    uid = uid.take(rows) if rows is not None else uid
    return Receipts(
        arrival=_to_np(cols.pop("arrival"), np.int64, rows),
        recv_ns=_to_np(cols.pop("recv_ns"), np.int64, rows),
        delivered=_to_np(cols.pop("delivered"), np.bool_, rows),
        msg=msg,
        unexpected_ids=uid.filter(pa.array(msg < 0)).combine_chunks(),
        invalid_lines=int(invalid),
    )


def read_rejected(
    con: duckdb.DuckDBPyConnection, run_dir: Path, close_ns: int | None
) -> dict[str, int]:
    """Refused POSTs per reason, within close like the receipts."""
    path = run_dir / REJECTED_FILE
    if not path.exists():
        return {}
    close = "" if close_ns is None else f"AND recv_ns <= {int(close_ns)}"
    src = _json(path, {"recv_ns": "BIGINT", "reason": "VARCHAR"})
    rows = con.execute(f"""
        SELECT reason, count(*) FROM {src}
        WHERE reason IS NOT NULL AND recv_ns IS NOT NULL {close} GROUP BY reason
    """).fetchall()
    return {str(reason): int(n) for reason, n in rows}
