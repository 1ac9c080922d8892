"""Per-message fates from sends and receipts, in numpy over dense message numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deliverydags.ledger.ordering import by_key, out_of_order
from deliverydags.ledger.readers import Receipts, Sends

FATES = ("delivered", "late", "failed", "lost", "rejected", "recovered", "unseen")
DELIVERED, LATE, FAILED, LOST, REJECTED, RECOVERED, UNSEEN = range(len(FATES))
ACCEPTED_CLS, REJECTED_CLS, INDETERMINATE_CLS = 0, 1, 2
NONE = np.iinfo(np.int64).max  # "no such receipt" in min-reductions


@dataclass
class Books:
    """Per-message results (index = message number, send order) and receipt tallies."""

    fate: np.ndarray  # int8 index into FATES
    bucket: np.ndarray  # int8: the first deadline the first delivered receipt is within
    latency_ms: np.ndarray  # float64, of the delivered, late and recovered messages
    first_delivered_recv_ns: np.ndarray | None  # int64, NONE when never (timeline only)
    out_of_order: np.ndarray  # messages, in arrival order of their first delivered receipt
    duplicates: int
    duplicate_msgs: np.ndarray  # messages, in arrival order of their 2nd, 3rd, ... receipt
    unexpected_order: np.ndarray  # indices of Receipts.unexpected_ids in arrival order


def account(
    sends: Sends, rc: Receipts, keys: np.ndarray, deadlines: np.ndarray, timeline: bool = False
) -> Books:
    """Judge every message; ``keys`` are the receipts' unique arrival keys (0-based)."""
    n_msgs = sends.seq.size
    known = rc.msg >= 0
    if known.all():
        msg, key, recv, dlv = rc.msg, keys, rc.recv_ns, rc.delivered
    else:
        msg, key, recv, dlv = rc.msg[known], keys[known], rc.recv_ns[known], rc.delivered[known]
    unexpected_order = np.argsort(keys[~known], kind="stable")
    del known

    first_any = np.full(n_msgs, NONE, dtype=np.int64)
    np.minimum.at(first_any, msg, key)
    has_any = first_any != NONE
    duplicates = msg.size - int(np.count_nonzero(has_any))
    later = key != first_any[msg]
    duplicate_msgs = msg[later][np.argsort(key[later], kind="stable")]
    del later

    recv_at = by_key(keys, rc.recv_ns, 0)  # every valid receipt's recv_ns by arrival key
    sent = sends.sent_ns
    latency = np.where(has_any, recv_at[np.where(has_any, first_any, 0)] - sent, 0)
    del first_any

    # A failed receipt within the last deadline makes an undelivered message failed.
    failed_ok = np.zeros(n_msgs, dtype=bool)
    failed = ~dlv
    failed_msg, failed_recv = msg[failed], recv[failed]
    failed_ok[failed_msg[failed_recv - sent[failed_msg] <= deadlines[-1]]] = True
    del failed, failed_msg, failed_recv

    dl_msg, dl_key = msg[dlv], key[dlv]
    del msg, key, recv, dlv
    first_dl = np.full(n_msgs, NONE, dtype=np.int64)
    np.minimum.at(first_dl, dl_msg, dl_key)
    has_dl = first_dl != NONE
    ooo = out_of_order(dl_key, dl_msg, by_key(keys, rc.msg, -1), sends.stream, sends.seq, first_dl)
    del dl_msg, dl_key
    dl_recv = np.where(has_dl, recv_at[np.where(has_dl, first_dl, 0)], NONE)
    del recv_at, first_dl
    # Past the last deadline, or never delivered: bucket == len(deadlines).
    bucket = np.searchsorted(deadlines, dl_recv - sent, side="left")
    bucket[~has_dl] = deadlines.size
    bucket = bucket.astype(np.int8)

    fate = np.full(n_msgs, LOST, dtype=np.int8)
    fate[failed_ok] = FAILED
    fate[bucket < deadlines.size] = LATE
    fate[bucket == 0] = DELIVERED
    fate[sends.cls == REJECTED_CLS] = REJECTED
    indeterminate = sends.cls == INDETERMINATE_CLS
    fate[indeterminate] = np.where(has_any[indeterminate], RECOVERED, UNSEEN)
    counted = (fate == DELIVERED) | (fate == LATE) | (fate == RECOVERED)
    return Books(
        fate=fate,
        bucket=bucket,
        latency_ms=latency[counted] / 1e6,
        first_delivered_recv_ns=dl_recv if timeline else None,
        out_of_order=ooo,
        duplicates=duplicates,
        duplicate_msgs=duplicate_msgs,
        unexpected_order=unexpected_order,
    )
