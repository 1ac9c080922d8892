"""A plain reading of the contract's "Accounting (one run)", for checking the ledger.

Dicts and loops, exact Decimal time arithmetic, no code shared with the ledger. Slow on
purpose: it only ever sees the small runs the tests generate.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

CLASSES = ("accepted", "rejected", "indeterminate")
LIMIT = 1000
VARIANT_KEYS = (
    *("attempted", "accepted", "delivered", "late", "failed", "lost"),
    *("recovered", "unseen", "rejected", "indeterminate"),
)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, Decimal)) and Decimal(v).is_finite()


def read_sends(path: Path, resends: list[dict] | None = None) -> tuple[list[dict], int, int]:
    """First line of every id in file order, repeated lines, invalid "dd": 1 lines.

    A valid line with a "resend" (present, not null, not "") is no message: it goes to
    ``resends``."""
    sends: list[dict] = []
    seen: set[str] = set()
    repeated = invalid = 0
    for raw in _lines(path):
        obj = _json(raw)
        if not isinstance(obj, dict) or not _is_num(obj.get("dd")) or obj["dd"] != 1:
            continue
        ok = (
            isinstance(obj.get("id"), str)
            and isinstance(obj.get("stream"), str)
            and _is_int(obj.get("seq"))
            and _is_num(obj.get("sent_ms"))
            and obj.get("class") in CLASSES
        )
        if not ok:
            invalid += 1
            continue
        if obj.get("resend") not in (None, ""):
            if resends is not None:
                resends.append(obj)
            continue
        if obj["id"] in seen:
            repeated += 1
            continue
        seen.add(obj["id"])
        sends.append(obj)
    return sends, repeated, invalid


def read_receipts(path: Path, close_ns: int | None) -> tuple[list[dict], int]:
    """Valid receipts in arrival order (by n, then by line), and unreadable lines."""
    kept: list[tuple[int, int, dict]] = []
    invalid = 0
    for line_no, raw in enumerate(_lines(path)):
        if not raw.strip():
            continue
        obj = _json(raw)
        ok = (
            isinstance(obj, dict)
            and _is_int(obj.get("n"))
            and _is_int(obj.get("recv_ns"))
            and isinstance(obj.get("id"), str)
            and obj.get("status") in ("delivered", "failed")
        )
        if not ok:
            invalid += 1
            continue
        if close_ns is None or obj["recv_ns"] <= close_ns:
            kept.append((obj["n"], line_no, obj))
    kept.sort(key=lambda t: (t[0], t[1]))
    return [obj for _, _, obj in kept], invalid


def read_refused(path: Path, close_ns: int | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for raw in _lines(path):
        obj = _json(raw)
        if not isinstance(obj, dict) or not _is_int(obj.get("recv_ns")):
            continue
        if not isinstance(obj.get("reason"), str):
            continue
        if close_ns is None or obj["recv_ns"] <= close_ns:
            counts[obj["reason"]] = counts.get(obj["reason"], 0) + 1
    return counts


def percentile(values: list[Decimal], p: float) -> float:
    """The "linear" method: rank p/100 * (n - 1), interpolated between neighbours."""
    xs = sorted(values)
    rank = Decimal(str(p)) / 100 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (rank - lo))


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def oracle(
    run_dir: Path,
    deadlines_s: list[float],
    close_ns: int | None = None,
    measures: tuple[str, ...] = (),
) -> dict:
    resends: list[dict] = []
    sends, repeated, invalid_sends = read_sends(run_dir / "sends.ndjson", resends)
    receipts, invalid_receipts = read_receipts(run_dir / "receipts.ndjson", close_ns)
    refused = read_refused(run_dir / "rejected.ndjson", close_ns)
    deadlines_ns = [Decimal(repr(float(d))) * 10**9 for d in deadlines_s]
    by_id = {s["id"]: s for s in sends}

    # v1.1: what the run measures, from the sends (or asked for).
    delays = [
        Decimal(s["sent_ms"]) - Decimal(s["intended_ms"])
        for s in sends
        if _is_num(s.get("intended_ms")) and abs(Decimal(s["intended_ms"])) < Decimal("9e12")
    ]
    measured = set(measures)
    if delays:
        measured.add("send_delay")
    if any(s.get("digest") is not None for s in sends):
        measured.add("integrity")
    if resends:
        measured.add("resend")
    if any(s.get("tenant") is not None for s in sends):
        measured.add("tenants")
    # Leaked: a receipt of a sent id at a callback of another tenant (or of none) than
    # its message's; it counts there alone, so it is taken out of the receipts first.
    leaked_ids: list[str] = []
    if "tenants" in measured:
        kept = []
        for r in receipts:
            s = by_id.get(r["id"])
            if s is not None and (_text(r.get("tenant")) or "") != (_text(s.get("tenant")) or ""):
                leaked_ids.append(r["id"])
            else:
                kept.append(r)
        receipts = kept

    # Every valid receipt of each sent id, in arrival order; the unexpected ones.
    got: dict[str, list[dict]] = {s["id"]: [] for s in sends}
    unexpected_ids: list[str] = []
    for r in receipts:
        if r["id"] in got:
            got[r["id"]].append(r)
        else:
            unexpected_ids.append(r["id"])

    fates: dict[str, str] = {}
    bucket: dict[str, int] = {}
    latencies: list[Decimal] = []
    for s in sends:
        sid, rs = s["id"], got[s["id"]]
        sent_ns = Decimal(s["sent_ms"]) * 10**6
        if s["class"] == "rejected":
            fates[sid] = "rejected"
        elif s["class"] == "indeterminate":
            fates[sid] = "recovered" if rs else "unseen"
        else:
            fates[sid] = "lost"
            delivered = [r for r in rs if r["status"] == "delivered"]
            if delivered:
                lat = delivered[0]["recv_ns"] - sent_ns
                within = [i for i, d in enumerate(deadlines_ns) if lat <= d]
                if within:
                    fates[sid] = "delivered" if within[0] == 0 else "late"
                    bucket[sid] = within[0]
            if fates[sid] == "lost" and any(
                r["status"] == "failed" and r["recv_ns"] - sent_ns <= deadlines_ns[-1] for r in rs
            ):
                fates[sid] = "failed"
        if fates[sid] in ("delivered", "late", "recovered"):
            latencies.append((rs[0]["recv_ns"] - sent_ns) / 10**6)

    # Out of order: per (sent) stream, walk delivered receipts of sent ids by arrival.
    top: dict[str, int] = {}
    first_done: set[str] = set()
    ooo: list[str] = []
    for r in receipts:
        s = by_id.get(r["id"])
        if s is None or r["status"] != "delivered":
            continue
        if s["id"] not in first_done:
            first_done.add(s["id"])
            if s["stream"] in top and top[s["stream"]] > s["seq"]:
                ooo.append(s["id"])
        top[s["stream"]] = max(top.get(s["stream"], s["seq"]), s["seq"])

    # Duplicates: receipts beyond the first per sent id, ids in order of the 2nd one.
    dup_ids: list[str] = []
    seen: dict[str, int] = {}
    duplicates = 0
    for r in receipts:
        if r["id"] not in by_id:
            continue
        seen[r["id"]] = seen.get(r["id"], 0) + 1
        if seen[r["id"]] > 1:
            duplicates += 1
            if seen[r["id"]] == 2:
                dup_ids.append(r["id"])

    # Integrity: an accepted message's first delivered receipt (any time) with a digest
    # that differs from the sent one; delivered receipts of sent ids without one.
    corrupted: list[tuple[int, str]] = []
    undigested = 0
    first_delivered: set[str] = set()
    for k, r in enumerate(receipts):
        s = by_id.get(r["id"])
        if s is None or r["status"] != "delivered":
            continue
        if r.get("digest") is None:
            undigested += 1
        if s["id"] in first_delivered:
            continue
        first_delivered.add(s["id"])
        sent_digest, got_digest = _text(s.get("digest")), _text(r.get("digest"))
        if (
            s["class"] == "accepted"
            and sent_digest is not None
            and got_digest is not None
            and sent_digest.lower() != got_digest.lower()
        ):
            corrupted.append((k, s["id"]))

    def count(fate: str) -> int:
        return sum(1 for f in fates.values() if f == fate)

    accepted = sum(1 for s in sends if s["class"] == "accepted")
    counts = {
        "attempted": len(sends),
        "accepted": accepted,
        "rejected": count("rejected"),
        "indeterminate": sum(1 for s in sends if s["class"] == "indeterminate"),
        "delivered": count("delivered"),
        "late": count("late"),
        "failed": count("failed"),
        "lost": count("lost"),
        "recovered": count("recovered"),
        "unseen": count("unseen"),
        "duplicates": duplicates,
        "unexpected": len(unexpected_ids),
        "out_of_order": len(ooo),
        "bad_signature": refused.get("bad_signature", 0),
    }
    if "integrity" in measured:
        counts["corrupted"] = len(corrupted)
        counts["undigested"] = undigested
    if "resend" in measured:
        counts["resent"] = len(resends)
        counts["conflicts"] = sum(1 for r in resends if r.get("status") == 409)
    if "tenants" in measured:
        counts["leaked"] = len(leaked_ids)
    by_status: dict[str, int] = {}
    for s in sends:
        if s["class"] == "rejected":
            key = str(s.get("status") or 0)
            by_status[key] = by_status.get(key, 0) + 1
    late_by_deadline = {str(int(d)): 0 for d in deadlines_s[1:]}
    for sid, b in bucket.items():
        if fates[sid] == "late":
            late_by_deadline[str(int(deadlines_s[b]))] += 1
    by_variant: dict[str, dict[str, int]] = {}
    for s in sends:
        v = by_variant.setdefault(
            s.get("variant") or "",
            dict.fromkeys(VARIANT_KEYS, 0),
        )
        v["attempted"] += 1
        v[s["class"]] += 1
        if fates[s["id"]] != "rejected":
            v[fates[s["id"]]] += 1
    distinct_unexpected = list(dict.fromkeys(unexpected_ids))
    samples = {
        "lost": [s["id"] for s in sends if fates[s["id"]] == "lost"][:LIMIT],
        "duplicates": dup_ids[:LIMIT],
        "out_of_order": ooo[:LIMIT],
        "unexpected": distinct_unexpected[:LIMIT],
    }
    if "integrity" in measured:
        samples["corrupted"] = [sid for _, sid in corrupted][:LIMIT]
    if "tenants" in measured:
        samples["leaked"] = list(dict.fromkeys(leaked_ids))[:LIMIT]
    send_delay = None
    if "send_delay" in measured:
        send_delay = {"p50": None, "p99": None, "max": None}
        if delays:
            send_delay = {
                "p50": percentile(delays, 50),
                "p99": percentile(delays, 99),
                "max": float(max(delays)),
            }
    return {
        "counts": counts,
        "rejected_by_status": by_status,
        "late_by_deadline": late_by_deadline,
        "latency_ms": {
            "p50": percentile(latencies, 50) if latencies else None,
            "p95": percentile(latencies, 95) if latencies else None,
            "p99": percentile(latencies, 99) if latencies else None,
            "max": float(max(latencies)) if latencies else None,
        },
        "delivery_rate": (counts["delivered"] + counts["late"]) / accepted if accepted else None,
        "send_delay_ms": send_delay,
        "samples": samples,
        "by_variant": by_variant,
        "malformed": refused.get("malformed", 0),
        "repeated_send_ids": repeated,
        "invalid_lines": {"sends": invalid_sends, "receipts": invalid_receipts},
    }
