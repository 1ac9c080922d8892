"""receipts.ndjson -> the valid receipts, each matched to its message by id (DuckDB's
hash join: the one string-keyed step); rejected.ndjson -> refused POSTs per reason.

The receipts come from the collector's sealed columnar copy when there is one that
matches receipts.ndjson (deliverydags.formats.receipt_columns: the same rows, ~4 CPU-s less at
10 M receipts than parsing the NDJSON), else from the NDJSON itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from deliverydags.formats import RECEIPTS_FILE, REJECTED_FILE, ndjson
from deliverydags.formats.column_seal import SealedCopy
from deliverydags.formats.receipt_columns import sealed_columns
from deliverydags.ledger.duck import Columns, collect

# The columnar copy in the NDJSON's column names and types.
_FROM_COLUMNS = (
    "(SELECT n, recv_ns, id, CASE WHEN delivered THEN 'delivered' ELSE 'failed' END AS status "
    "FROM dd_receipt_columns)"
)


@dataclass
class Receipts:
    """The valid receipts (recorded and within close), in no particular order."""

    arrival: np.ndarray  # int64 key, unique, increasing in arrival order
    recv_ns: np.ndarray  # int64
    delivered: np.ndarray  # bool (else failed)
    msg: np.ndarray  # int32 message number; -1 when the id was never sent
    unexpected_ids: pa.Array  # id of each msg == -1 row, in the same row order
    invalid_lines: int
    # v1.1, None unless the run measures them: per receipt, its digest differs from
    # its message's; it has none. Leaked receipts are counted here and nowhere else.
    corrupt: np.ndarray | None = None
    undigested: np.ndarray | None = None
    leaked: int | None = None
    leaked_ids: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))


@dataclass
class ReceiptChecks:
    """What a v1.1 run asks of its receipts, with the send lines' side of it (per send
    line, like the ids; None: no line has one)."""

    integrity: bool = False  # compare digests: corrupt, undigested
    tenants: bool = False  # compare the callback's tenant with the message's: leaked
    digest: np.ndarray | None = None  # uint64 digest_key per line, 0: none
    tenant: pa.ChunkedArray | None = None

    @property
    def any(self) -> bool:
        return self.integrity or self.tenants


def _digest_key(column: str) -> str:
    """SQL: a digest as a 64-bit key, 0 for none. Digests are compared by key: 64 hex
    digits each would be ~1.3 GB more at the join's peak for 10 M messages. Keys of two
    digests that differ (case aside) are equal with probability 2**-64, so a corrupted
    message could go unseen with that probability; equal digests always have equal keys.
    Both sides are keyed in the same process (DuckDB's hash is not promised stable
    across its versions, so no key is ever stored)."""
    h = f"hash(lower({column}))"
    return f"CASE WHEN {column} IS NULL THEN 0::UBIGINT WHEN {h} = 0 THEN 1::UBIGINT ELSE {h} END"


def digest_keys(con: duckdb.DuckDBPyConnection, digests: pa.ChunkedArray) -> np.ndarray:
    """The uint64 digest key of every digest (0: none), in order."""
    con.register("dd_digests", pa.table({"d": digests}))
    try:
        keys = collect(
            con, f"SELECT {_digest_key('d')} AS k FROM dd_digests", numeric={"k": np.uint64}
        )
    finally:
        con.unregister("dd_digests")
    return keys.num["k"]


def read_receipts(
    con: duckdb.DuckDBPyConnection,
    run_dir: Path,
    ids: pa.ChunkedArray,
    id_prefix: str,
    msg_of_line: np.ndarray,
    close_ns: int | None,
    by_line: bool = False,
    use_columns: bool = True,
    checks: ReceiptChecks | None = None,
) -> Receipts:
    """Valid receipts within close, each matched by id to its message (-1: never sent).

    ``ids``/``msg_of_line``: every "dd": 1 send line's id (less ``id_prefix``) and
    message number (-1 for an invalid or repeated line, which stays out of the match).

    The arrival key is ``n``; with ``by_line`` (when ``n`` repeats, which the format rules
    out but a restarted collector might do) it is the rank by ``n`` then line in the file.
    ``use_columns``: read the collector's sealed columnar copy instead of the NDJSON if
    the run has one; if it turns out not to hold what its seal says, the NDJSON is read
    after all. ``checks``: the v1.1 comparisons, read from the NDJSON (the columnar copy
    holds the v1 columns only).
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
    checks = checks if checks is not None and checks.any else None
    columns = sealed_columns(run_dir) if use_columns and checks is None else None
    extra_cols = {"digest": "VARCHAR", "tenant": "VARCHAR"} if checks else {}
    if columns is None:
        src = ndjson(
            path,
            {
                "n": "BIGINT",
                "recv_ns": "BIGINT",
                "id": "VARCHAR",
                "status": "VARCHAR",
                **extra_cols,
            },
        )
    else:
        con.register("dd_receipt_columns", columns.reader())
        src = _FROM_COLUMNS
    arrival = "n"
    table = ""
    if by_line:  # a table keeps the file's order in rowid
        table = f"CREATE OR REPLACE TEMP TABLE dd_receipts AS SELECT * FROM {src}"
        src = "(SELECT *, row_number() OVER (ORDER BY n, rowid) AS line_rank FROM dd_receipts)"
        arrival = "line_rank"
    close = "TRUE" if close_ns is None else f"recv_ns <= {int(close_ns)}"
    key = "r.id"
    if id_prefix:  # only ids with the prefix can match; compare the rest
        lit = "'" + id_prefix.replace("'", "''") + "'"
        key = f"CASE WHEN starts_with(r.id, {lit}) THEN substr(r.id, {len(id_prefix) + 1}) END"
    send_cols: dict[str, Any] = {"id": ids, "msg": msg_of_line}
    r_extra = s_extra = out_extra = ""
    extra_num: dict[str, type] = {}
    extra_text: tuple[str, ...] = ()
    if checks is not None:
        no_digest = np.zeros(len(ids), np.uint64)
        send_cols["digest"] = checks.digest if checks.digest is not None else no_digest
        tenant = checks.tenant
        send_cols["tenant"] = tenant if tenant is not None else pa.nulls(len(ids), pa.string())
        r_extra, s_extra = ", digest, tenant", ", digest, tenant"
        leaked = "false"
        if checks.tenants:
            leaked = "s.msg IS NOT NULL AND coalesce(r.tenant, '') <> coalesce(s.tenant, '')"
        out_extra = f""",
                   coalesce({leaked}, false) AS leaked,
                   CASE WHEN {leaked} THEN r.id END AS lid,
                   coalesce(s.digest <> 0 AND r.digest IS NOT NULL
                            AND {_digest_key("r.digest")} <> s.digest, false) AS corrupt,
                   r.digest IS NULL AS undigested"""
        extra_num = {"leaked": np.bool_, "corrupt": np.bool_, "undigested": np.bool_}
        extra_text = ("lid",)
    lines = pa.table(send_cols)
    con.register("dd_send_lines", lines)
    try:
        cols = _collect_or_none(
            con,
            table,
            columns,
            f"""
            WITH r AS (
                SELECT coalesce({arrival}, 0) AS arrival, coalesce(recv_ns, 0) AS recv_ns,
                       id, coalesce(status = 'delivered', false) AS delivered,
                       coalesce(n IS NOT NULL AND recv_ns IS NOT NULL AND id IS NOT NULL
                                AND status IN ('delivered', 'failed'), false) AS ok{r_extra}
                FROM {src}
            )
            SELECT r.arrival, r.recv_ns, r.delivered, r.ok, coalesce(s.msg, -1) AS msg,
                   CASE WHEN s.msg IS NULL THEN r.id END AS uid{out_extra}
            FROM r LEFT JOIN (SELECT id, msg{s_extra} FROM dd_send_lines WHERE msg >= 0) s
                 ON {key} = s.id
            WHERE NOT r.ok OR {close}
            """,
            numeric={
                "ok": np.bool_,
                "msg": np.int32,
                "arrival": np.int64,
                "recv_ns": np.int64,
                "delivered": np.bool_,
                **extra_num,
            },
            text=("uid", *extra_text),
        )
    finally:
        con.unregister("dd_send_lines")
        if columns is not None:
            con.unregister("dd_receipt_columns")
        con.execute("DROP TABLE IF EXISTS dd_receipts")
    if cols is None:  # the columnar copy was torn or short: parse the NDJSON
        return read_receipts(
            con, run_dir, ids, id_prefix, msg_of_line, close_ns, by_line, False, checks
        )
    num = cols.num
    valid = num.pop("ok")
    invalid = int(valid.size - np.count_nonzero(valid))
    msg = num.pop("msg")
    uid = cols.text["uid"]
    rc = Receipts(
        arrival=num.pop("arrival"),
        recv_ns=num.pop("recv_ns"),
        delivered=num.pop("delivered"),
        msg=msg,
        unexpected_ids=uid.filter(pa.array(valid & (msg < 0))).combine_chunks(),
        invalid_lines=invalid,
    )
    del msg, uid
    keep = valid
    if checks is not None:
        rc.corrupt = num.pop("corrupt")
        rc.undigested = num.pop("undigested")
        if checks.tenants:
            leaked = num.pop("leaked") & valid
            rows = np.flatnonzero(leaked)
            lid = cols.text["lid"].filter(pa.array(leaked)).combine_chunks()
            rc.leaked_ids = lid.take(pa.array(np.argsort(rc.arrival[rows], kind="stable")))
            rc.leaked = int(rows.size)
            keep = valid & ~leaked
            del leaked, rows, lid
    del num, cols
    return _keep(rc, keep) if not keep.all() else rc


def _collect_or_none(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: SealedCopy | None,
    sql: str,
    **kw: Any,
) -> Columns | None:
    """``collect`` (after creating ``table`` if given); None if the columnar copy proved
    unreadable or not what was sealed."""
    try:
        if table:
            con.execute(table)
        cols = collect(con, sql, **kw)
    except (duckdb.Error, pa.ArrowException, OSError, ValueError):
        if columns is None:
            raise
        return None
    return cols if columns is None or columns.complete else None


def _keep(rc: Receipts, rows: np.ndarray) -> Receipts:
    """Keep ``rows`` (a mask) of every per-receipt array, one array at a time."""
    rc.arrival = rc.arrival[rows]
    rc.recv_ns = rc.recv_ns[rows]
    rc.delivered = rc.delivered[rows]
    rc.msg = rc.msg[rows]
    if rc.corrupt is not None and rc.undigested is not None:
        rc.corrupt = rc.corrupt[rows]
        rc.undigested = rc.undigested[rows]
    return rc


def read_rejected(
    con: duckdb.DuckDBPyConnection, run_dir: Path, close_ns: int | None
) -> dict[str, int]:
    """Refused POSTs per reason, within close like the receipts."""
    path = run_dir / REJECTED_FILE
    if not path.exists():
        return {}
    close = "" if close_ns is None else f"AND recv_ns <= {int(close_ns)}"
    src = ndjson(path, {"recv_ns": "BIGINT", "reason": "VARCHAR"})
    rows = con.execute(f"""
        SELECT reason, count(*) FROM {src}
        WHERE reason IS NOT NULL AND recv_ns IS NOT NULL {close} GROUP BY reason
    """).fetchall()
    return {str(reason): int(n) for reason, n in rows}
