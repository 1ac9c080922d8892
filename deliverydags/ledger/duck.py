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


def ndjson(path: Path, columns: dict[str, str]) -> str:
    """SQL for reading ``columns`` of an NDJSON file.

    ignore_errors: a line that is not JSON (k6 console chatter, a torn last line) or is
    longer than DuckDB's maximum_object_size (16 MB) reads as all NULLs. Values are
    cast the DuckDB way (e.g. "seq": "5" reads as 5).
    """
    cols = ", ".join(f"{k}: '{v}'" for k, v in columns.items())
    lit = "'" + str(path).replace("'", "''") + "'"
    return (
        f"read_json({lit}, format = 'newline_delimited', ignore_errors = true, "
        f"columns = {{{cols}}})"
    )


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
    """Run ``sql`` and copy its columns out of DuckDB's Arrow result.

    A DuckDB Arrow batch stays allocated as long as any of its columns is referenced,
    so each batch is copied out and dropped in turn. The whole result is built first:
    measured at 10 M rows, fetching batch by batch was slower (a join runs less
    parallel) for no lower peak. Columns in ``encode`` are dictionary-encoded.
    """
    if stream:
        batches: Iterator[pa.RecordBatch] = iter(con.sql(sql).to_arrow_reader(1 << 17))
        nums: dict[str, list[np.ndarray]] = {k: [] for k in numeric}
    else:
        table = con.sql(sql).to_arrow_table()
        whole = table.to_batches()
        nums = {k: [np.empty(table.num_rows, t)] for k, t in numeric.items()}
        del table
        whole.reverse()
        batches = iter(whole.pop, None) if whole else iter(())
    texts: dict[str, list[pa.Array]] = {k: [] for k in text}
    codes: dict[str, list[pa.Array]] = {k: [] for k in encode}
    at = 0
    for batch in batches:  # copy a batch out, then drop it: DuckDB frees it as we go
        end = at + batch.num_rows
        for k, dtype in numeric.items():
            values = batch.column(k).to_numpy(zero_copy_only=False)
            if stream:
                nums[k].append(np.array(values, dtype))
            else:
                nums[k][0][at:end] = values
        for k in text:
            texts[k].append(pa.concat_arrays([batch.column(k)]))
        for k in encode:
            codes[k].append(pc.dictionary_encode(batch.column(k)))
        at = end
        del batch
        if not stream and not whole:
            break
    out = Columns(num={}, text={}, codes={})
    for k, dtype in numeric.items():
        parts = nums.pop(k)
        out.num[k] = (
            parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0, dtype)
        )
    for k in text:
        out.text[k] = _one_chunk(texts.pop(k))
        _release()
    for k in encode:
        out.codes[k] = _unify(codes.pop(k))
        _release()
    return out


def _one_chunk(parts: list[pa.Array]) -> pa.ChunkedArray:
    """Strings in one chunk when they fit one buffer: measured, the receipts join built
    from one chunk of ids peaks ~150 MB lower than from one chunk per batch."""
    if sum(p.nbytes for p in parts) < 2**31 - 2**28:
        return pa.chunked_array([pa.concat_arrays(parts)] if parts else [], pa.string())
    return pa.chunked_array(parts, pa.string())


def _numpy(parts: list[pa.Array], dtype: type) -> np.ndarray:
    """One contiguous numpy array (a large allocation of its own) from Arrow chunks."""
    out = np.empty(sum(len(p) for p in parts), dtype=dtype)
    at = 0
    for p in parts:
        out[at : at + len(p)] = p.to_numpy(zero_copy_only=False)
        at += len(p)
    return out


def _release() -> None:
    """Hand Arrow's freed pages back to the OS: the peak RSS is what the budget counts."""
    pa.default_memory_pool().release_unused()


def _unify(parts: list[pa.Array]) -> tuple[np.ndarray, pa.Array]:
    if not parts:
        return np.empty(0, np.int32), pa.array([], pa.string())
    chunks = pa.chunked_array(parts).unify_dictionaries().chunks
    codes = _numpy([c.indices for c in chunks], np.int32)
    return codes, chunks[0].dictionary
