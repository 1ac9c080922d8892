"""The send lines as the ledger's columns, and a copy of them kept while k6 runs.

``lines_sql`` is the one query that turns the lines of sends.ndjson into the ledger's
columns. It works line by line, so pieces of the file give the rows the whole file gives.

sends.ndjson (k6's console output) stays the record. While k6 appends to it, the runner's
``SendCopier`` runs every new piece of whole lines through that query into
``sends.arrows`` (an Arrow IPC stream). Once k6 has exited the rest of the file (a torn
last line included) follows and the copy is sealed: ``sends.arrows.json`` holds the row
count, the id prefix stripped (the run id's) and the size and mtime of the sends.ndjson
it copies. The ledger reads the copy only while that seal matches sends.ndjson and every
id starts with the prefix; otherwise (a copy that failed, a file edited since, a script
of one's own whose ids do not start with the run id, a run written by other tools) it
parses sends.ndjson. Measured at 10 M sends (bench/bench_ledger.py, 2 cores): the ledger's
parse took ~5.8 s, reading the copy 0.6-1.3 s; writing the copy took 13-21 CPU-s, spread
over the run (under 1% of a core at 1,000 msg/s).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deliverydags.formats import SENDS_FILE, ndjson
from deliverydags.formats.column_seal import SealedCopy, read_seal, remove_copy, write_seal

COLUMNS_FILE = SENDS_FILE.removesuffix(".ndjson") + ".arrows"
SEAL_FILE = COLUMNS_FILE + ".json"
COLUMNS_VERSION = 2  # 2: the v1.1 columns (EXTENDED)

# What read_json takes of a line. "dd" read as text tells 1 from true or 1.5 (a
# JSON-typed column would also tell it from "1", at ~20 % more parse time).
LINE_COLUMNS = {
    "dd": "VARCHAR",
    "id": "VARCHAR",
    "stream": "VARCHAR",
    "seq": "BIGINT",
    "sent_ms": "DOUBLE",
    "class": "VARCHAR",
    "status": "SMALLINT",
    "variant": "VARCHAR",
    # contract v1.1, each optional (see deliverydags.formats): declared always (read_json
    # only parses what a query selects), selected only where a run has them.
    "intended_ms": "DOUBLE",
    "digest": "VARCHAR",
    "tenant": "VARCHAR",
    "resend": "VARCHAR",
}
# A relation with LINE_COLUMNS and no rows, for a missing sends.ndjson.
NO_SENDS = (
    "(SELECT NULL::VARCHAR AS dd, NULL::VARCHAR AS id, NULL::VARCHAR AS stream, "
    "NULL::BIGINT AS seq, NULL::DOUBLE AS sent_ms, NULL::VARCHAR AS class, "
    "NULL::SMALLINT AS status, NULL::VARCHAR AS variant, NULL::DOUBLE AS intended_ms, "
    "NULL::VARCHAR AS digest, NULL::VARCHAR AS tenant, NULL::VARCHAR AS resend WHERE false)"
)
# Beyond year 2255 in ms: sent_ms * 10**6 would overflow int64 ns.
_MAX_SENT_MS = 9e12
NUMERIC = {
    "foreign": np.bool_,  # an id without the prefix (first: the copy's reader checks it first)
    "ok": np.bool_,  # all fields present and of the right type
    "h": np.uint64,  # hash of the id
    "seq": np.int64,
    "sent_ms": np.float64,
    "cls": np.int8,  # index into CLASSES, -1 when unknown
    "status": np.int16,
}
TEXT = ("id",)  # without the prefix
ENCODED = ("stream", "variant")
# The v1.1 columns, null (resend: 0) on a line without them. A run of v1 lines has none, and
# then the ledger reads none of them (the copy: its null counts say so; the NDJSON: the
# ``ext`` flag of ``lines_sql``): they cost a v1 run nothing but that flag.
RESEND_KINDS = ("same", "changed")  # codes 1, 2; any other non-empty "resend" is 3
EXTENDED_NUMERIC = {"intended_ms": np.float64, "resend": np.int8}
EXTENDED_TEXT = ("digest", "tenant")
EXTENDED = (*EXTENDED_NUMERIC, *EXTENDED_TEXT)
_CODES = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("foreign", pa.bool_()),
        ("stream", _CODES),
        ("seq", pa.int64()),
        ("sent_ms", pa.float64()),
        ("cls", pa.int8()),
        ("status", pa.int16()),
        ("variant", _CODES),
        ("h", pa.uint64()),
        ("ok", pa.bool_()),
        ("intended_ms", pa.float64()),
        ("resend", pa.int8()),
        ("digest", pa.string()),
        ("tenant", pa.string()),
    ]
)


def lines_sql(src: str, prefix: str, extended: bool = True) -> str:
    """Every "dd": 1 line of ``src`` (read_json of LINE_COLUMNS), in file order, as the
    columns of SCHEMA (strings plain, not encoded), ids less ``prefix``.

    Junk lines read as all NULLs and are not "dd": 1 lines; a "dd": 1 line missing a
    field or with one of the wrong type is one, with ``ok`` false. Of the v1.1 fields,
    ``intended_ms`` is NULL unless a finite time; ``resend`` 0 when missing or "", else
    its code (RESEND_KINDS). Without ``extended`` the EXTENDED columns are left out
    and ``ext`` says whether a line has any of them.
    """
    if prefix:
        lit = "'" + prefix.replace("'", "''") + "'"
        has_prefix = f"starts_with(id, {lit})"
        id_sql = f"CASE WHEN {has_prefix} THEN substr(id, {len(prefix) + 1}) END AS id"
        foreign = f"coalesce(NOT {has_prefix}, false) AS foreign"
    else:
        id_sql, foreign = "id", "false AS foreign"
    return f"""
        SELECT {id_sql}, {foreign}, coalesce(stream, '') AS stream, coalesce(seq, 0) AS seq,
               coalesce(sent_ms, 0) AS sent_ms,
               coalesce(cls, -1) AS cls, coalesce(status, 0) AS status,
               coalesce(variant, '') AS variant, hash(id) AS h,
               coalesce(id IS NOT NULL AND stream IS NOT NULL AND seq IS NOT NULL
                        AND cls IS NOT NULL AND isfinite(sent_ms)
                        AND abs(sent_ms) < {_MAX_SENT_MS}, false) AS ok{_extended_sql(extended)}
        FROM (
            SELECT *, CASE class WHEN 'accepted' THEN 0 WHEN 'rejected' THEN 1
                                 WHEN 'indeterminate' THEN 2 END::TINYINT AS cls
            FROM {src} WHERE dd IN ('1', '1.0')
        )
        """


def _extended_sql(extended: bool) -> str:
    if not extended:
        return (
            ",\n               coalesce(intended_ms IS NOT NULL OR digest IS NOT NULL "
            "OR tenant IS NOT NULL OR resend IS NOT NULL, false) AS ext"
        )
    kinds = " ".join(f"WHEN '{k}' THEN {i + 1}" for i, k in enumerate(RESEND_KINDS))
    return f""",
               CASE WHEN isfinite(intended_ms) AND abs(intended_ms) < {_MAX_SENT_MS}
                    THEN intended_ms END AS intended_ms,
               CASE WHEN resend IS NULL OR resend = '' THEN 0
                    ELSE CASE resend {kinds} ELSE 3 END END::TINYINT AS resend,
               digest, tenant"""


class SendColumnWriter:
    """Appends the send lines of successive pieces of sends.ndjson to
    ``run_dir/sends.arrows``; ``seal`` vouches for the copy once the pieces are the file.

    Opening removes any earlier copy and seal.
    """

    def __init__(self, run_dir: Path, prefix: str) -> None:
        self.run_dir = Path(run_dir)
        self.prefix = prefix
        self.bytes = 0  # of sends.ndjson, in the pieces so far
        self.rows = 0
        discard(self.run_dir)
        self._scratch = Path(tempfile.mkdtemp(prefix=".sends-copy-", dir=self.run_dir))
        self._con = duckdb.connect(
            ":memory:", config={"threads": 1, "preserve_insertion_order": True}
        )
        self._con.execute("SET enable_progress_bar = false")
        self._file = (self.run_dir / COLUMNS_FILE).open("wb")
        self._writer = pa.ipc.new_stream(self._file, SCHEMA)

    def add(self, piece: bytes) -> None:
        """The next bytes of sends.ndjson: whole lines, but for the file's very end."""
        path = self._scratch / "piece.ndjson"
        # DuckDB (2.x) skips a byte-order mark at a file's start, as the ledger's parse of
        # the whole file does; elsewhere a line that starts with one is junk. So a later
        # piece gets an empty line first (DuckDB skips it) and its first line stays junk.
        path.write_bytes(piece if self.bytes == 0 else b"\n" + piece)
        sql = lines_sql(ndjson(path, LINE_COLUMNS), self.prefix)
        for batch in self._con.sql(sql).to_arrow_reader(1 << 16):
            self._writer.write_batch(_encoded(batch))
            self.rows += batch.num_rows
        self.bytes += len(piece)

    def seal(self) -> None:
        """Close the copy and seal it; ValueError (and no copy) unless its pieces are
        sends.ndjson as it is now."""
        self._close()
        path = self.run_dir / SENDS_FILE
        size = path.stat().st_size if path.exists() else None
        if size != self.bytes:
            discard(self.run_dir)
            raise ValueError(f"{SENDS_FILE} holds {size} bytes, the copy {self.bytes}")
        write_seal(
            self.run_dir,
            SEAL_FILE,
            SENDS_FILE,
            version=COLUMNS_VERSION,
            records=self.rows,
            prefix=self.prefix,
        )

    def abandon(self) -> None:
        self._close()
        discard(self.run_dir)

    def _close(self) -> None:
        if self._file.closed:
            return
        try:
            self._writer.close()
        finally:
            self._file.close()
            self._con.close()
            shutil.rmtree(self._scratch, ignore_errors=True)


def _encoded(batch: pa.RecordBatch) -> pa.RecordBatch:
    cols = {
        name: pc.dictionary_encode(batch.column(name)) if name in ENCODED else batch.column(name)
        for name in SCHEMA.names
    }
    return pa.record_batch(list(cols.values()), names=list(cols)).cast(SCHEMA)


_READ_BYTES = 1 << 26  # at most this much of sends.ndjson in memory at once


class SendCopier:
    """Keeps the copy of ``run_dir/sends.ndjson`` while k6 writes it: a thread passes
    the whole lines added since its last look, every ``every_s``. ``finish`` (after k6
    has exited) seals it; ``close`` drops an unfinished one. The copy only saves the
    ledger time: when anything goes wrong there is none, and ``error`` says why."""

    def __init__(self, run_dir: Path, prefix: str, every_s: float = 5.0) -> None:
        self._path = Path(run_dir) / SENDS_FILE
        self._writer: SendColumnWriter | None = SendColumnWriter(Path(run_dir), prefix)
        self._every_s = every_s
        self._offset = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="send-columns", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self._every_s) and self.error is None:
            self._copy(final=False)

    def _copy(self, final: bool) -> None:
        """Pass on what was added since the last look: its whole lines, or all if ``final``."""
        assert self._writer is not None
        try:
            with self._path.open("rb") as f:
                # Up to the size seen now: chasing k6's writes would parse a few lines
                # at a time, and each parse has a fixed cost (~10 ms).
                size = os.fstat(f.fileno()).st_size
                while self._offset < size:
                    f.seek(self._offset)
                    data = f.read(min(_READ_BYTES, size - self._offset))
                    at_end = final and self._offset + len(data) == size
                    end = len(data) if at_end else data.rfind(b"\n") + 1
                    if end == 0:
                        if len(data) == _READ_BYTES:
                            raise ValueError(f"a line over {_READ_BYTES} bytes")
                        return
                    self._writer.add(data[:end])
                    self._offset += end
        except FileNotFoundError:
            return
        except Exception as exc:  # any failure only means no copy
            self.error = f"{type(exc).__name__}: {exc}"

    def finish(self) -> bool:
        """Copy the rest of sends.ndjson (k6 has exited) and seal; False: no copy."""
        self._stop.set()
        self._thread.join()
        writer = self._writer
        if writer is None:
            return False
        if self.error is None:
            self._copy(final=True)
        self._writer = None
        if self.error is None:
            try:
                writer.seal()
                return True
            except Exception as exc:  # any failure only means no copy
                self.error = f"{type(exc).__name__}: {exc}"
        writer.abandon()
        return False

    def close(self) -> None:
        """Stop following; an unsealed copy is removed."""
        self._stop.set()
        self._thread.join()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abandon()


def discard(run_dir: Path) -> None:
    remove_copy(run_dir, SEAL_FILE, COLUMNS_FILE)


def sealed_send_columns(run_dir: Path) -> tuple[SealedCopy, str] | None:
    """The sealed copy of sends.ndjson and the prefix its ids lack, or None when there is
    none that matches sends.ndjson as it is now."""
    seal = read_seal(Path(run_dir), SEAL_FILE, SENDS_FILE, COLUMNS_VERSION)
    if seal is None or not isinstance(seal.get("prefix"), str):
        return None
    return SealedCopy(Path(run_dir) / COLUMNS_FILE, SCHEMA, seal["records"]), seal["prefix"]
