"""Seals of the columnar copies kept beside a run's NDJSON files (receipt_columns,
send_columns). A copy is read only while its seal matches the NDJSON it copies (size and
mtime) and, once read, only if it held as many rows as the seal says."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa


def write_seal(run_dir: Path, seal_name: str, ndjson_name: str, **fields: Any) -> None:
    """Vouch (durably) for a copy of ``run_dir/ndjson_name`` as that file is now."""
    stat = (run_dir / ndjson_name).stat()
    seal = {**fields, "ndjson_bytes": stat.st_size, "ndjson_mtime_ns": stat.st_mtime_ns}
    tmp = run_dir / (seal_name + ".tmp")
    with tmp.open("w") as f:
        json.dump(seal, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(run_dir / seal_name)


def remove_copy(run_dir: Path, seal_name: str, copy_name: str) -> None:
    """Remove a copy and its seal (the seal first: a copy without one is never read)."""
    for name in (seal_name, copy_name):
        (Path(run_dir) / name).unlink(missing_ok=True)


def read_seal(run_dir: Path, seal_name: str, ndjson_name: str, version: int) -> dict | None:
    """The seal, or None when there is none of ``version`` that matches the NDJSON now."""
    try:
        seal = json.loads((run_dir / seal_name).read_text())
        stat = (run_dir / ndjson_name).stat()
    except (OSError, ValueError):
        return None
    if (
        not isinstance(seal, dict)
        or seal.get("version") != version
        or seal.get("ndjson_bytes") != stat.st_size
        or seal.get("ndjson_mtime_ns") != stat.st_mtime_ns
        or not isinstance(seal.get("records"), int)
    ):
        return None
    return seal


class SealedCopy:
    """A sealed copy, read batch by batch (each batch's memory goes once it is used):
    ``complete`` after a full read says it held what the seal promised."""

    def __init__(self, path: Path, schema: pa.Schema, records: int) -> None:
        self.path = path
        self.schema = schema
        self.records = records
        self.rows_read = 0

    def reader(self) -> pa.RecordBatchReader:
        source = pa.OSFile(str(self.path))
        try:
            stream = self._open(source)
        except BaseException:
            source.close()
            raise
        self.rows_read = 0

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for batch in stream:
                    self.rows_read += batch.num_rows
                    yield batch
            finally:
                source.close()

        return pa.RecordBatchReader.from_batches(self.schema, batches())

    def columns(self, names: Sequence[str]) -> Iterator[tuple[str, pa.ChunkedArray]]:
        """Each of ``names`` in turn, all rows, from a fresh memory map of the copy (no
        reading into memory; a map goes when nothing refers to it, so keep copies of what
        is kept: then only one column's pages are ever resident). ValueError when the
        copy does not hold what the seal says."""
        for name in names:
            stream = self._open(pa.memory_map(str(self.path)))
            column = stream.read_all().column(name)
            del stream
            if len(column) != self.records:
                raise ValueError(f"{self.path.name}: {len(column)} rows, sealed {self.records}")
            yield name, column
            del column

    def _open(self, source: pa.NativeFile) -> pa.ipc.RecordBatchStreamReader:
        stream = pa.ipc.open_stream(source)
        if not stream.schema.equals(self.schema):
            raise ValueError(f"{self.path.name}: unexpected schema {stream.schema}")
        return stream

    @property
    def complete(self) -> bool:
        return self.rows_read == self.records
