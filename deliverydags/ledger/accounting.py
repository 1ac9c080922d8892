"""Per-message fates from sends and receipts, in numpy over dense message numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deliverydags.ledger.ordering import out_of_order
from deliverydags.ledger.receipts import Receipts
from deliverydags.ledger.sends import Sends

FATES = ("delivered", "late", "failed", "lost", "rejected", "recovered", "unseen")
DELIVERED, LATE, FAILED, LOST, REJECTED, RECOVERED, UNSEEN = range(len(FATES))
ACCEPTED_CLS, REJECTED_CLS, INDETERMINATE_CLS = 0, 1, 2
NONE = np.iinfo(np.int64).max  # "no such receipt"


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
    unexpected: np.ndarray  # Receipts.unexpected_ids indices, in arrival order
    # v1.1 integrity (empty / 0 unless the receipts were checked): accepted messages whose
    # first delivered receipt's digest differs from the sent one, in arrival order of that
    # receipt; delivered receipts of sent ids without a digest.
    corrupted: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    undigested: int = 0


def account(
    sends: Sends, rc: Receipts, order: np.ndarray, deadlines: np.ndarray, timeline: bool = False
) -> Books:
    """Judge every message. ``order`` puts the receipts in arrival order; after it a
    receipt's position is its arrival rank, so "first" is a minimum of positions.

    Consumes ``rc``'s per-receipt arrays (they are emptied as they are used: at 10 M
    receipts every array held twice costs ~80 MB of peak memory).
    """
    n_msgs = sends.seq.size
    unexpected = _unexpected_order(rc)
    msg = rc.msg[order]
    rc.msg = rc.arrival = np.empty(0, np.int64)
    delivered = rc.delivered[order]
    rc.delivered = np.empty(0, bool)
    recv = rc.recv_ns[order]
    rc.recv_ns = np.empty(0, np.int64)
    corrupt = undigested = None
    if rc.corrupt is not None and rc.undigested is not None:
        corrupt, undigested = rc.corrupt[order], rc.undigested[order]
        rc.corrupt = rc.undigested = None
    del order
    sent = sends.sent_ns

    pos = np.flatnonzero(msg >= 0)  # receipts of sent ids
    msg_k = msg[pos]
    del msg
    first_any = np.full(n_msgs, NONE, dtype=np.int64)
    np.minimum.at(first_any, msg_k, pos)
    has_any = first_any != NONE
    duplicates = pos.size - int(np.count_nonzero(has_any))
    duplicate_msgs = msg_k[first_any[msg_k] != pos]  # already in arrival order
    first_any[~has_any] = 0
    first_recv = recv[first_any] if recv.size else first_any
    del first_any

    # A failed receipt within the last deadline makes an undelivered message failed.
    dl_k = delivered[pos]
    del delivered
    failed_ok = np.zeros(n_msgs, dtype=bool)
    f_pos = pos[~dl_k]
    f_msg = msg_k[~dl_k]
    failed_ok[f_msg[recv[f_pos] - sent[f_msg] <= deadlines[-1]]] = True
    del f_pos, f_msg

    d_pos, d_msg = pos[dl_k], msg_k[dl_k]
    del pos, msg_k, dl_k
    first_dl = np.full(n_msgs, NONE, dtype=np.int64)
    np.minimum.at(first_dl, d_msg, d_pos)
    ooo = out_of_order(d_pos, d_msg, sends.stream, sends.seq, first_dl)
    corrupted, n_undigested = np.empty(0, np.int64), 0
    if corrupt is not None and undigested is not None:
        n_undigested = int(np.count_nonzero(undigested[d_pos]))
        judged = np.flatnonzero((first_dl != NONE) & (sends.cls == ACCEPTED_CLS))
        hit = judged[corrupt[first_dl[judged]]]
        corrupted = hit[np.argsort(first_dl[hit], kind="stable")]
        del corrupt, undigested, judged, hit
    del d_pos, d_msg
    has_dl = first_dl != NONE
    first_dl[~has_dl] = 0
    dl_recv = recv[first_dl] if recv.size else first_dl
    del first_dl, recv
    dl_recv[~has_dl] = NONE
    # The first deadline the first delivered receipt is within; len(deadlines) if none.
    bucket = np.searchsorted(deadlines, dl_recv - sent, side="left").astype(np.int8)
    bucket[~has_dl] = deadlines.size
    if not timeline:
        del dl_recv

    fate = np.full(n_msgs, LOST, dtype=np.int8)
    fate[failed_ok] = FAILED
    del failed_ok
    fate[bucket < deadlines.size] = LATE
    fate[bucket == 0] = DELIVERED
    fate[sends.cls == REJECTED_CLS] = REJECTED
    indeterminate = sends.cls == INDETERMINATE_CLS
    fate[indeterminate] = np.where(has_any[indeterminate], RECOVERED, UNSEEN)
    counted = (fate == DELIVERED) | (fate == LATE) | (fate == RECOVERED)
    return Books(
        fate=fate,
        bucket=bucket,
        latency_ms=(first_recv[counted] - sent[counted]) / 1e6,
        first_delivered_recv_ns=dl_recv if timeline else None,
        out_of_order=ooo,
        duplicates=duplicates,
        duplicate_msgs=duplicate_msgs,
        unexpected=unexpected,
        corrupted=corrupted,
        undigested=n_undigested,
    )


def _unexpected_order(rc: Receipts) -> np.ndarray:
    """Indices into the unexpected ids (kept in row order), sorted by arrival."""
    rows = np.flatnonzero(rc.msg < 0)
    return np.argsort(rc.arrival[rows], kind="stable")
