"""Entry points: read the run's files once, judge every message, summarise."""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from deliverydags.config import DEFAULT_DEADLINES_S
from deliverydags.ledger.accounting import ACCEPTED_CLS, FATES, NONE, Books, account
from deliverydags.ledger.duck import connect, release_arrow_memory
from deliverydags.ledger.ordering import arrival_order
from deliverydags.ledger.receipts import (
    ReceiptChecks,
    Receipts,
    digest_keys,
    read_receipts,
    read_rejected,
)
from deliverydags.ledger.result import MEASURES, LedgerResult, summarize
from deliverydags.ledger.scratch import park, scratch_dir, unpark
from deliverydags.ledger.sends import Sends, finish_sends, read_send_lines
from deliverydags.ledger.timebase import deadlines_ns

_PARKED = ("lines", "stream", "seq", "sent_ms", "sent_ns", "cls", "status", "variant")
# DuckDB's own share: parse buffers and the id hash join (~0.8 GB at 10 M messages; a
# bigger run spills into the run dir). numpy's per-message arrays come on top; they are
# parked in files while the join runs (bench/bench_ledger.py measures the whole process).
DEFAULT_MEMORY_LIMIT = "1GB"


def reconcile(
    run_dir: Path,
    deadlines_s: Sequence[float],
    close_ns: int | None = None,
    *,
    threads: int | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    measures: Collection[str] = (),
) -> LedgerResult:
    """The books of the run in ``run_dir`` (the rules: see the package docstring).

    ``deadlines_s``: increasing, counted per message from its send; ``close_ns``: receipts
    (and refused POSTs) with a later ``recv_ns`` are not counted; None counts all.
    ``measures``: the v1.1 measures (``result.MEASURES``) the run's scenario takes, so
    their counts are reported even when its records show none; a measure the records
    show (e.g. sends with digests: "integrity") is reported anyway.
    """
    deadlines = _check_deadlines(deadlines_s)
    asked = _check_measures(measures)
    books, sends, rc, refused = _judge(
        Path(run_dir), deadlines, close_ns, threads, memory_limit, timeline=False, asked=asked
    )
    return summarize(books, sends, rc, refused, deadlines_s, _measured(asked, sends))


def delivery_timeline(
    run_dir: Path,
    close_ns: int | None = None,
    deadlines_s: Sequence[float] = DEFAULT_DEADLINES_S,
    *,
    threads: int | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> pa.Table:
    """One row per accepted message, in send order, for time-window statistics:
    ``sent_ms`` (float64, as sent), ``delivered_recv_ns`` (int64, arrival of its first
    delivered receipt within close; null if none) and ``fate`` (dictionary: delivered,
    late, failed, lost). A full pass over the files, like :func:`reconcile`."""
    deadlines = _check_deadlines(deadlines_s)
    books, sends, _rc, _refused = _judge(
        Path(run_dir), deadlines, close_ns, threads, memory_limit, timeline=True
    )
    accepted = sends.cls == ACCEPTED_CLS
    assert books.first_delivered_recv_ns is not None
    recv = books.first_delivered_recv_ns[accepted]
    fate = pa.DictionaryArray.from_arrays(
        pa.array(books.fate[accepted], type=pa.int8()), pa.array(list(FATES))
    )
    return pa.table(
        {
            "sent_ms": sends.sent_ms[accepted],
            "delivered_recv_ns": pa.array(recv, type=pa.int64(), mask=recv == NONE),
            "fate": fate,
        }
    )


def _judge(
    run_dir: Path,
    deadlines: np.ndarray,
    close_ns: int | None,
    threads: int | None,
    memory_limit: str,
    timeline: bool,
    asked: frozenset[str] = frozenset(),
) -> tuple[Books, Sends, Receipts, dict[str, int]]:
    with scratch_dir(run_dir, ".ledger-park-") as parking:
        with connect(run_dir, threads, memory_limit) as con:
            sends = finish_sends(read_send_lines(con, run_dir), timeline)
            msg_of_line = sends.msg_of_line()
            checks = ReceiptChecks(
                integrity="integrity" in asked or sends.extra.digests,
                tenants="tenants" in asked or sends.extra.tenants,
                tenant=sends.extra.tenant,
            )
            if checks.integrity and sends.extra.digest is not None:
                checks.digest = digest_keys(con, sends.extra.digest)
            sends.extra.digest = sends.extra.tenant = None
            release_arrow_memory()
            # Measured at 10 M messages: the join spilling to disk costs ~3 s, parking
            # the per-message arrays in files while it runs costs ~0.2 s.
            park(sends, _PARKED, parking)
            release_arrow_memory()
            rc = read_receipts(
                con, run_dir, sends.ids, sends.id_prefix, msg_of_line, close_ns, checks=checks
            )
            refused = read_rejected(con, run_dir, close_ns)
        # DuckDB's memory (the join's hash table) went back with the connection.
        order = arrival_order(rc.arrival)
        if order is None:  # n repeats: break the ties by line in the file
            with connect(run_dir, threads, memory_limit) as con:
                rc = read_receipts(
                    con,
                    run_dir,
                    sends.ids,
                    sends.id_prefix,
                    msg_of_line,
                    close_ns,
                    by_line=True,
                    checks=checks,
                )
            order = arrival_order(rc.arrival)
            assert order is not None
        del msg_of_line, checks
        unpark(sends, _PARKED, parking)
    return account(sends, rc, order, deadlines, timeline), sends, rc, refused


def _check_measures(measures: Collection[str]) -> frozenset[str]:
    asked = frozenset(measures)
    if isinstance(measures, str) or not asked <= set(MEASURES):
        raise ValueError(f"measures: some of {list(MEASURES)}, got {measures!r}")
    return asked


def _measured(asked: frozenset[str], sends: Sends) -> frozenset[str]:
    """The measures to report: asked for, or shown by the send records."""
    shown = {
        "send_delay": sends.extra.send_delay_ms is not None,
        "integrity": sends.extra.digests,
        "resend": sends.extra.resend_lines > 0,
        "tenants": sends.extra.tenants,
    }
    return asked | {name for name, yes in shown.items() if yes}


def _check_deadlines(deadlines_s: Sequence[float]) -> np.ndarray:
    values = [float(d) for d in deadlines_s]
    if not values:
        raise ValueError("deadlines_s: at least one deadline is needed")
    if any(not math.isfinite(d) or d < 0 for d in values):
        raise ValueError(f"deadlines_s: must be finite and >= 0, got {values}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"deadlines_s: must increase strictly, got {values}")
    if len(values) > 100:
        raise ValueError("deadlines_s: at most 100 deadlines")
    if len({int(d) for d in values}) != len(values):
        raise ValueError(f"deadlines_s: two deadlines share a whole second, got {values}")
    return deadlines_ns(values)
