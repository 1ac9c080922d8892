"""The ledger's answer in contract-v1 shape, built from the per-message books."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deliverydags.ledger.accounting import FATES, LATE, LOST, Books
from deliverydags.ledger.receipts import Receipts
from deliverydags.ledger.sends import CLASSES, Sends

SAMPLE_LIMIT = 1000
PERCENTILES = (50, 95, 99)
SEND_DELAY_PERCENTILES = (50, 99)
# Contract v1.1: a measure's counts join ``counts`` (after the v1 ones, in this order)
# only in a run that takes it; ``samples`` gets the ids of the named ones.
MEASURES = ("send_delay", "integrity", "resend", "tenants")
MEASURE_COUNTS = {
    "send_delay": (),
    "integrity": ("corrupted", "undigested"),
    "resend": ("resent", "conflicts"),
    "tenants": ("leaked",),
}
MEASURE_SAMPLES = {"integrity": "corrupted", "tenants": "leaked"}
COUNT_KEYS = (
    "attempted",
    "accepted",
    "rejected",
    "indeterminate",
    "delivered",
    "late",
    "failed",
    "lost",
    "recovered",
    "unseen",
    "duplicates",
    "unexpected",
    "out_of_order",
    "bad_signature",
)
VARIANT_KEYS = (
    "attempted",
    "accepted",
    "delivered",
    "late",
    "failed",
    "lost",
    "recovered",
    "unseen",
    "rejected",
    "indeterminate",
)


@dataclass
class LedgerResult:
    """One run's books. ``to_dict()`` is the contract-v1 result's ledger part."""

    counts: dict[str, int]
    rejected_by_status: dict[str, int]
    late_by_deadline: dict[str, int]
    latency_ms: dict[str, float | None]
    delivery_rate: float | None
    samples: dict[str, list[str]]
    by_variant: dict[str, dict[str, int]]
    malformed: int
    repeated_send_ids: int
    # Lines the ledger could not read: "dd": 1 send lines with a missing or mistyped
    # field, receipt lines that are not a receipt. Skipped, never silently.
    invalid_lines: dict[str, int] = field(default_factory=dict)
    # sent_ms - intended_ms (the schedule's time) over the messages whose send record has
    # one: p50, p99, max; None when none has (a v1 script, a closed-model executor).
    send_delay_ms: dict[str, float | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "rejected_by_status": dict(self.rejected_by_status),
            "late_by_deadline": dict(self.late_by_deadline),
            "latency_ms": dict(self.latency_ms),
            "send_delay_ms": None if self.send_delay_ms is None else dict(self.send_delay_ms),
            "delivery_rate": self.delivery_rate,
            "samples": {k: list(v) for k, v in self.samples.items()},
            "by_variant": {k: dict(v) for k, v in self.by_variant.items()},
            "malformed": self.malformed,
            "repeated_send_ids": self.repeated_send_ids,
            "invalid_lines": dict(self.invalid_lines),
        }


def summarize(
    books: Books,
    sends: Sends,
    rc: Receipts,
    rejected_posts: dict[str, int],
    deadlines_s: Sequence[float],
    measured: Collection[str] = (),
) -> LedgerResult:
    table = _fate_table(books.fate, sends)
    totals = table.sum(axis=0)
    accepted = int(totals[FATES.index("delivered") : FATES.index("lost") + 1].sum())
    counts = {name: int(totals[i]) for i, name in enumerate(FATES)}
    counts.update(
        attempted=int(sends.seq.size),
        accepted=accepted,
        indeterminate=counts["recovered"] + counts["unseen"],
        duplicates=books.duplicates,
        unexpected=len(rc.unexpected_ids),
        out_of_order=int(books.out_of_order.size),
        bad_signature=int(rejected_posts.get("bad_signature", 0)),
        corrupted=int(books.corrupted.size),
        undigested=books.undigested,
        resent=sends.extra.resend_lines,
        conflicts=sends.extra.resend_conflicts,
        leaked=rc.leaked or 0,
    )
    keys = [*COUNT_KEYS, *(k for m in MEASURES if m in measured for k in MEASURE_COUNTS[m])]
    samples = _samples(books, sends, rc)
    for measure, name in MEASURE_SAMPLES.items():
        if measure not in measured:
            del samples[name]
    return LedgerResult(
        counts={k: counts[k] for k in keys},
        rejected_by_status=_rejected_by_status(sends),
        late_by_deadline=_late_by_deadline(books, deadlines_s),
        latency_ms=_latency(books),
        delivery_rate=(counts["delivered"] + counts["late"]) / accepted if accepted else None,
        samples=samples,
        by_variant=_by_variant(table, sends.variants),
        malformed=int(rejected_posts.get("malformed", 0)),
        repeated_send_ids=sends.repeated_lines,
        invalid_lines={"sends": sends.invalid_lines, "receipts": rc.invalid_lines},
        send_delay_ms=_send_delay(sends.extra.send_delay_ms) if "send_delay" in measured else None,
    )


def _fate_table(fate: np.ndarray, sends: Sends) -> np.ndarray:
    """Messages per (variant, fate)."""
    n_variants = max(len(sends.variants), 1)
    flat = sends.variant.astype(np.int64) * len(FATES) + fate
    return np.bincount(flat, minlength=n_variants * len(FATES)).reshape(n_variants, len(FATES))


def _by_variant(table: np.ndarray, variants: list[str]) -> dict[str, dict[str, int]]:
    out = {}
    for code, name in enumerate(variants):
        row = {fate: int(table[code, i]) for i, fate in enumerate(FATES)}
        row["accepted"] = row["delivered"] + row["late"] + row["failed"] + row["lost"]
        row["indeterminate"] = row["recovered"] + row["unseen"]
        row["attempted"] = row["accepted"] + row["rejected"] + row["indeterminate"]
        out[name] = {k: row[k] for k in VARIANT_KEYS}
    return out


def _rejected_by_status(sends: Sends) -> dict[str, int]:
    rejected = sends.status[sends.cls == CLASSES.index("rejected")]
    statuses, n = np.unique(rejected, return_counts=True)
    return {str(int(s)): int(c) for s, c in zip(statuses, n, strict=True)}


def _late_by_deadline(books: Books, deadlines_s: Sequence[float]) -> dict[str, int]:
    per = np.bincount(books.bucket[books.fate == LATE], minlength=len(deadlines_s))
    return {str(int(d)): int(per[i]) for i, d in enumerate(deadlines_s) if i > 0}


def _latency(books: Books) -> dict[str, float | None]:
    lat_ms = books.latency_ms
    if lat_ms.size == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    # numpy's default "linear" method, the same as DuckDB's quantile_cont.
    p50, p95, p99 = np.percentile(lat_ms, PERCENTILES)
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(lat_ms.max())}


def _send_delay(delay_ms: np.ndarray | None) -> dict[str, float | None]:
    if delay_ms is None or delay_ms.size == 0:
        return {"p50": None, "p99": None, "max": None}
    p50, p99 = np.percentile(delay_ms, SEND_DELAY_PERCENTILES)
    return {"p50": float(p50), "p99": float(p99), "max": float(delay_ms.max())}


def _first_distinct(values: np.ndarray, limit: int) -> np.ndarray:
    """The first ``limit`` distinct values in order of first appearance; looks at a
    growing prefix so a long tail of repeats is never sorted."""
    size = min(values.size, 4 * limit)
    while True:
        uniq, first = np.unique(values[:size], return_index=True)
        if uniq.size >= limit or size >= values.size:
            return values[np.sort(first)[:limit]]
        size = min(values.size, size * 4)


def _first_distinct_strings(values: pa.Array, limit: int) -> list[str]:
    size = min(len(values), 4 * limit)
    while True:
        uniq = pc.unique(values.slice(0, size))  # in order of first appearance
        if len(uniq) >= limit or size >= len(values):
            return uniq.slice(0, limit).to_pylist()
        size = min(len(values), size * 4)


def _ids(sends: Sends, msgs: np.ndarray) -> list[str]:
    lines = msgs if sends.lines is None else sends.lines[msgs]
    rest = sends.ids.take(pa.array(lines, type=pa.int64())).to_pylist()
    return [sends.id_prefix + r for r in rest]


def _samples(books: Books, sends: Sends, rc: Receipts) -> dict[str, list[str]]:
    lim = SAMPLE_LIMIT
    lost = np.flatnonzero(books.fate == LOST)[:lim]
    dups = _first_distinct(books.duplicate_msgs, lim)
    ooo = books.out_of_order[:lim]
    unexpected = rc.unexpected_ids.take(pa.array(books.unexpected, type=pa.int64()))
    return {
        "lost": _ids(sends, lost),
        "duplicates": _ids(sends, dups),
        "out_of_order": _ids(sends, ooo),
        "unexpected": _first_distinct_strings(unexpected, lim),
        "corrupted": _ids(sends, books.corrupted[:lim]),
        "leaked": _first_distinct_strings(rc.leaked_ids, lim),
    }
