"""sends.ndjson -> one entry per sent message: numpy columns plus the id strings.

The lines come from the runner's sealed columnar copy when there is a usable one
(deliverydags.formats.send_columns: the same query's rows, ~5 s less at 10 M sends than parsing
the NDJSON), else from the NDJSON itself. Reading (DuckDB, parallel) and finishing
(numpy/Arrow only) are separate steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from deliverydags.formats import SENDS_FILE, ndjson
from deliverydags.formats.send_columns import (
    ENCODED,
    EXTENDED,
    EXTENDED_NUMERIC,
    EXTENDED_TEXT,
    LINE_COLUMNS,
    NO_SENDS,
    NUMERIC,
    TEXT,
    lines_sql,
    sealed_send_columns,
)
from deliverydags.ledger.duck import Columns, collect, one_chunk, unify_codes
from deliverydags.ledger.timebase import sent_ns

CLASSES = ("accepted", "rejected", "indeterminate")
# Where the ids come from that guess the prefix every id shares (see _sampled_prefix):
# the file's first valid lines and its last bytes.
PREFIX_SAMPLE = 1000
PREFIX_TAIL_BYTES = 1 << 16


@dataclass
class SendLines:
    """Every "dd": 1 line, in file order, as read."""

    ids: pa.ChunkedArray  # without id_prefix
    id_prefix: str  # what every id starts with (stripped: see _sampled_prefix)
    ok: np.ndarray  # bool: all fields present and of the right type
    cols: Columns
    # The v1.1 columns (send_columns.EXTENDED), per line; empty when no line has any.
    ext: dict[str, np.ndarray | pa.ChunkedArray] = field(default_factory=dict)


@dataclass
class SendExtras:
    """What the v1.1 fields say; all None/0 in a run of v1 lines."""

    send_delay_ms: np.ndarray | None = None  # float64, sent - intended, per message with one
    # Per "dd": 1 line (like Sends.ids), for the receipts join; None when no line has one.
    digest: pa.ChunkedArray | None = None
    tenant: pa.ChunkedArray | None = None
    resend_lines: int = 0  # valid lines that repeat a message on purpose ("resend")
    resend_conflicts: int = 0  # ... answered 409
    digests: bool = False  # some message carries a digest (the run checks integrity)
    tenants: bool = False  # some message carries a tenant


@dataclass
class Sends:
    """One entry per sent message (the first valid line of each id), in send order."""

    ids: pa.ChunkedArray  # per "dd": 1 line (not only messages), without id_prefix
    id_prefix: str
    lines: np.ndarray | None  # int64 index into ids of each message; None: the same
    stream: np.ndarray  # int code (narrowest type); only equality matters
    seq: np.ndarray  # int (narrowest type)
    sent_ms: np.ndarray  # float64 as written (empty unless asked for)
    sent_ns: np.ndarray  # int64, exact (see timebase)
    cls: np.ndarray  # int8 index into CLASSES
    status: np.ndarray  # int16 HTTP status of the last try
    variant: np.ndarray  # int code (narrowest type) into variants
    variants: list[str]
    repeated_lines: int  # lines whose id an earlier line already used
    invalid_lines: int  # "dd": 1 lines missing a field or with one of the wrong type
    extra: SendExtras = field(default_factory=SendExtras)

    def msg_of_line(self) -> np.ndarray:
        """Message number of each line of ``ids``, -1 for lines that are not one."""
        if self.lines is None:
            return np.arange(len(self.ids), dtype=np.int32)
        msg = np.full(len(self.ids), -1, dtype=np.int32)
        msg[self.lines] = np.arange(self.lines.size, dtype=np.int32)
        return msg


def read_send_lines(con: duckdb.DuckDBPyConnection, run_dir: Path) -> SendLines:
    """From the sealed columnar copy when there is a usable one, else from the NDJSON."""
    lines = _read_copy(run_dir)
    if lines is not None:
        return lines
    path = run_dir / SENDS_FILE
    src = ndjson(path, LINE_COLUMNS) if path.exists() else NO_SENDS
    prefix = _sampled_prefix(con, src, path)
    extended = False
    lines = _read(con, src, prefix, extended)
    if lines.cols.num.pop("ext").any():  # v1.1 lines: read again, with their columns
        extended = True
        del lines
        lines = _read(con, src, prefix, extended)
    if lines.cols.num.pop("foreign").any():  # the sample misled: strip nothing
        del lines
        lines = _read(con, src, "", extended)
        lines.cols.num.pop("ext", None)
        del lines.cols.num["foreign"]
    return lines


def _read_copy(run_dir: Path) -> SendLines | None:
    """The copy's lines, or None when it is missing, unreadable, not all that was sealed,
    or holds ids without its prefix (see deliverydags.formats.send_columns).

    Column by column, each copied out of its own memory map: at 10 M sends a single pass
    (as from DuckDB) peaks ~0.5 GB higher, with the file's pages and the columns' parts.
    """
    found = sealed_send_columns(run_dir)
    if found is None:
        return None
    copy, prefix = found
    cols = Columns(num={}, text={}, codes={})
    try:
        names = [*NUMERIC, *TEXT, *ENCODED, *EXTENDED]  # "foreign" first
        for name, column in copy.columns(names):
            if name == "foreign":
                if pc.any(column).as_py():
                    return None
            elif name in EXTENDED:  # read only when some line has it
                if name in EXTENDED_NUMERIC:
                    if name == "resend":
                        present = (pc.max(column).as_py() or 0) > 0
                    else:
                        present = column.null_count < len(column)
                    if present:
                        values = column.to_numpy()  # nulls: NaN
                        cols.num[name] = np.array(values, EXTENDED_NUMERIC[name])
                elif column.null_count < len(column):
                    cols.text[name] = pa.chunked_array(
                        [pa.concat_arrays(column.chunks)], pa.string()
                    )
            elif name in NUMERIC:
                values = np.asarray(column.to_numpy(), NUMERIC[name])
                # read-only: a view of the map (one chunk), not a copy
                cols.num[name] = values if values.flags.writeable else values.copy()
                del values
            elif name in TEXT:  # a copy: nothing may keep the map
                cols.text[name] = pa.chunked_array([pa.concat_arrays(column.chunks)], pa.string())
            else:
                cols.codes[name] = unify_codes(column.chunks)
            del column
    except (pa.ArrowException, OSError, ValueError):
        return None
    return _lines(cols, prefix)


def _sampled_prefix(con: duckdb.DuckDBPyConnection, src: str, path: Path) -> str:
    """What the first and the last ids share, to be stripped from every id.

    The k6 library's ids are ``<run id>-<vu>-<seq>``: ~30 bytes that DuckDB's join keeps
    out of line, ~10 once the run id is gone, which it keeps inline. Measured at 10 M
    such ids: ~0.9 GB less at the join's peak. Stripping inside the parse (in parallel)
    costs ~0.3 s there, against ~1.3 s to find and strip the common prefix afterwards.
    Exact: when every send id starts with the prefix, a receipt id equals one iff it has
    the prefix and the same rest; ``_read`` says when one does not.
    """
    ids = [
        row[0]
        for row in con.execute(
            f"SELECT id FROM {src} WHERE dd IN ('1', '1.0') AND id IS NOT NULL "
            f"LIMIT {PREFIX_SAMPLE}"
        ).fetchall()
    ]
    ids += _last_ids(path)
    if len(set(ids)) < 2:
        return ""
    # The lexicographically first and last ids share exactly what all of them share.
    low, high = min(ids), max(ids)
    size = next((i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b), len(low))
    return low[:size]


def _last_ids(path: Path) -> list[str]:
    """The ids of the valid-looking send lines in the file's last ``PREFIX_TAIL_BYTES``."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - PREFIX_TAIL_BYTES))
            lines = f.read().split(b"\n")[1:]  # the first may be cut
    except OSError:
        return []
    ids = []
    for line in lines:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if type(doc) is dict and doc.get("dd") == 1 and type(doc.get("id")) is str:
            ids.append(doc["id"])
    return ids


def _read(con: duckdb.DuckDBPyConnection, src: str, prefix: str, extended: bool) -> SendLines:
    """Every "dd": 1 line, ids less ``prefix``; ``foreign``: a valid id without it.
    ``extended``: with the v1.1 columns, else with ``ext`` (a line has one of them)."""
    cols = collect(
        con,
        lines_sql(src, prefix, extended),
        numeric={**NUMERIC, **(EXTENDED_NUMERIC if extended else {"ext": np.bool_})},
        text=(*TEXT, *(EXTENDED_TEXT if extended else ())),
        encode=ENCODED,
        stream=True,  # measured: copying out overlaps DuckDB's parse, ~10 % faster
    )
    if extended:  # keep only the columns some line has
        for name in EXTENDED_NUMERIC:
            values = cols.num[name]
            if not (values > 0).any() if name == "resend" else np.isnan(values).all():
                del cols.num[name]
        for name in EXTENDED_TEXT:
            if cols.text[name].null_count == len(cols.text[name]):
                del cols.text[name]
    return _lines(cols, prefix)


def _lines(cols: Columns, prefix: str) -> SendLines:
    ids = one_chunk(cols.text.pop("id"))
    ext: dict[str, np.ndarray | pa.ChunkedArray] = {}
    for name in EXTENDED_NUMERIC:
        if name in cols.num:
            ext[name] = cols.num.pop(name)
    for name in EXTENDED_TEXT:
        if name in cols.text:
            ext[name] = one_chunk(cols.text.pop(name))
    return SendLines(ids=ids, id_prefix=prefix, ok=cols.num.pop("ok"), cols=cols, ext=ext)


def finish_sends(raw: SendLines, keep_sent_ms: bool) -> Sends:
    """Drop invalid and repeated lines, convert times (numpy and Arrow only)."""
    num, codes = raw.cols.num, raw.cols.codes
    invalid = raw.ok.size - int(np.count_nonzero(raw.ok))
    extra = SendExtras()
    resend = raw.ext.get("resend")
    is_message = raw.ok
    if resend is not None:  # a resend line is a send record, not a message
        repeat = raw.ok & (resend > 0)
        extra.resend_lines = int(np.count_nonzero(repeat))
        extra.resend_conflicts = int(np.count_nonzero(repeat & (num["status"] == 409)))
        is_message = raw.ok & ~repeat
        del repeat
    lines = None if is_message.all() else np.flatnonzero(is_message)
    del is_message
    later = _repeated(num.pop("h"), lines, raw.ids)
    if later.size:  # the first line of an id wins
        keep = np.ones(len(raw.ids) if lines is None else lines.size, dtype=bool)
        keep[later] = False
        lines = np.flatnonzero(keep) if lines is None else lines[keep]
        del keep

    def pick(a: np.ndarray) -> np.ndarray:
        return a if lines is None else a[lines]

    sent_ms = pick(num.pop("sent_ms"))
    variant, variants = _compact(pick(codes["variant"][0]), codes.pop("variant")[1])
    sent = sent_ns(sent_ms)
    if "intended_ms" in raw.ext:  # in exact ns, like every time the ledger compares
        intended = pick(raw.ext["intended_ms"])
        has = ~np.isnan(intended)
        if has.any():
            extra.send_delay_ms = (sent[has] - sent_ns(intended[has])) / 1e6
        del intended, has
    for name in ("digest", "tenant"):
        column = raw.ext.get(name)
        if column is None:
            continue
        setattr(extra, name, column)
        has = pick(np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), bool))
        setattr(extra, f"{name}s", bool(has.any()))  # some message has one
        del has
    return Sends(
        ids=raw.ids,
        id_prefix=raw.id_prefix,
        lines=lines,
        stream=_narrow(pick(codes.pop("stream")[0])),
        seq=_narrow(pick(num.pop("seq"))),
        sent_ms=sent_ms if keep_sent_ms else np.empty(0),
        sent_ns=sent,
        cls=pick(num.pop("cls")),
        status=pick(num.pop("status")),
        variant=_narrow(variant),
        variants=variants,
        repeated_lines=int(later.size),
        invalid_lines=int(invalid),
        extra=extra,
    )


def _narrow(a: np.ndarray) -> np.ndarray:
    """The smallest of int8/16/32 that holds ``a`` (memory at the join's peak)."""
    if a.size == 0:
        return a
    lo, hi = int(a.min()), int(a.max())
    for dtype in (np.int8, np.int16, np.int32):
        if np.iinfo(dtype).min <= lo and hi <= np.iinfo(dtype).max:
            return a.astype(dtype) if a.dtype != dtype else a
    return a


def _compact(codes: np.ndarray, values: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Drop values no kept line uses (e.g. a variant seen only on a repeated line)."""
    used = np.bincount(codes, minlength=len(values)) > 0
    if used.all():
        return codes, values.to_pylist()
    remap = (np.cumsum(used) - 1).astype(np.int32)
    return remap[codes], values.filter(pa.array(used)).to_pylist()


def _repeated(h: np.ndarray, rows: np.ndarray | None, ids: pa.ChunkedArray) -> np.ndarray:
    """Positions among ``rows`` (all lines if None) whose id an earlier one already
    used, ascending. Consumes ``h`` (the 64-bit hashes of the ids).

    Equal ids have equal hashes. The hash's high bits and the position are packed into
    one uint64 and sorted in place (one SIMD sort, no extra memory); positions whose
    high bits repeat are suspects, and only their id strings are compared.
    """
    if rows is not None:
        h = h[rows]
    n = h.size
    if n < 2:
        return np.empty(0, dtype=np.int64)
    pos_bits = (n - 1).bit_length()
    pos_mask = np.uint64((1 << pos_bits) - 1)
    h &= ~pos_mask
    for start in range(0, n, 1 << 20):  # blockwise: no n-sized temporary
        stop = min(start + (1 << 20), n)
        h[start:stop] |= np.arange(start, stop, dtype=np.uint64)
    h.sort()
    same = np.empty(n - 1, dtype=bool)  # neighbours with the same high bits
    for start in range(0, n - 1, 1 << 20):
        stop = min(start + (1 << 20), n - 1)
        same[start:stop] = (h[start + 1 : stop + 1] ^ h[start:stop]) <= pos_mask
    suspect_mask = np.zeros(n, dtype=bool)
    suspect_mask[1:] |= same
    suspect_mask[:-1] |= same
    suspect = np.sort((h[suspect_mask] & pos_mask).astype(np.int64))
    del h, suspect_mask, same
    if suspect.size == 0:
        return suspect
    taken = suspect if rows is None else rows[suspect]
    table = pa.table({"id": ids.take(taken), "pos": suspect})
    firsts = table.group_by("id").aggregate([("pos", "min")]).column("pos_min")
    first = np.zeros(suspect.size, dtype=bool)
    first[np.searchsorted(suspect, firsts.to_numpy())] = True
    return suspect[~first]
