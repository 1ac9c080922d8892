"""DuckDB plumbing: a private connection, NDJSON sources, results copied into numpy."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deliverydags.ledger.scratch import scratch_dir


@contextmanager
def connect(
    run_dir: Path, threads: int | None, memory_limit: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private in-memory DuckDB that may spill into a temp dir inside the run dir."""
    with scratch_dir(run_dir, ".ledger-spill-") as spill:
        config = {
            "threads": threads or os.cpu_count() or 1,
            "memory_limit": memory_limit,
            "temp_directory": str(spill),
            "preserve_insertion_order": True,  # the sends' line order is their send order
        }
        con = duckdb.connect(":memory:", config=config)
        try:
            con.execute("SET enable_progress_bar = false")
            with contextlib.suppress(duckdb.Error):  # older DuckDB: no such optimizer
                # the receipts join must build on the sends' ids (half the memory)
                con.execute("SET disabled_optimizers = 'build_side_probe_side'")
            yield con
        finally:
            con.close()


@dataclass
class Columns:
    """A query result held outside DuckDB: numbers in numpy, strings in Arrow."""

    num: dict[str, np.ndarray]
    text: dict[str, pa.ChunkedArray]
    codes: dict[str, tuple[np.ndarray, pa.Array]]  # int32 codes, values (first-seen order)


def collect(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    numeric: dict[str, type],
    text: Sequence[str] = (),
    encode: Sequence[str] = (),
    stream: bool = False,
) -> Columns:
    """Run ``sql`` and copy its columns out of DuckDB's Arrow batches.

    A DuckDB Arrow batch stays allocated as long as any of its columns is referenced,
    so each batch is copied out and dropped in turn. ``stream``: copy batches while
    DuckDB still produces them (measured faster for a plain scan); else let DuckDB
    build the whole result first (measured faster and lighter for a join). Columns in
    ``encode`` are dictionary-encoded on the way (only the codes stay).
    """
    nums: dict[str, list[np.ndarray]] = {k: [] for k in numeric}
    texts: dict[str, list[pa.Array]] = {k: [] for k in text}
    codes: dict[str, list[pa.Array]] = {k: [] for k in encode}
    for batch in _batches(con, sql, stream):
        for k, dtype in numeric.items():
            nums[k].append(np.array(batch.column(k).to_numpy(zero_copy_only=False), dtype))
        for k in text:
            texts[k].append(pa.concat_arrays([batch.column(k)]))
        for k in encode:
            codes[k].append(pc.dictionary_encode(batch.column(k)))
        del batch
    out = Columns(num={}, text={}, codes={})
    for k, dtype in numeric.items():  # one copy more, but one large array each
        parts = nums.pop(k)
        out.num[k] = np.concatenate(parts) if parts else np.empty(0, dtype)
        del parts
    for k in text:
        out.text[k] = pa.chunked_array(texts.pop(k), pa.string())
    for k in encode:
        out.codes[k] = unify_codes(codes.pop(k))
        release_arrow_memory()
    return out


def _batches(con: duckdb.DuckDBPyConnection, sql: str, stream: bool) -> Iterator[pa.RecordBatch]:
    if stream:
        yield from con.sql(sql).to_arrow_reader(1 << 17)
        return
    batches = con.sql(sql).to_arrow_table().to_batches()
    batches.reverse()
    while batches:  # hand each batch over and forget it, so it can be freed
        yield batches.pop()


def one_chunk(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Strings in one chunk when they fit one buffer: measured, the receipts join built
    from one chunk of ids peaks ~150 MB lower than from one chunk per batch."""
    if column.num_chunks > 1 and column.nbytes < 2**31 - 2**28:
        column = pa.chunked_array([pa.concat_arrays(column.chunks)], column.type)
        release_arrow_memory()
    return column


def release_arrow_memory() -> None:
    """Hand Arrow's freed pages back to the OS: the peak RSS is what the budget counts."""
    pa.default_memory_pool().release_unused()


def unify_codes(parts: list[pa.Array]) -> tuple[np.ndarray, pa.Array]:
    """Dictionary-encoded parts -> int32 codes into one dictionary (values first-seen)."""
    if not parts:
        return np.empty(0, np.int32), pa.array([], pa.string())
    chunks = pa.chunked_array(parts).unify_dictionaries().chunks
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks])
    codes = codes.astype(np.int32, copy=False)
    return codes, chunks[0].dictionary
