"""Time to detect and time to recover, measured from the run's own books.

Inputs: the ledger's per-message timeline of accepted messages
(:func:`deliverydags.ledger.delivery_timeline`: send time, first ``delivered`` receipt
within close, fate) and the send times of the messages that were not accepted (read
from ``sends.ndjson``). ``bound_ms`` is the stated normal latency: a message is *ok*
when it was accepted and its first ``delivered`` receipt came within ``bound_ms`` of
its send.

Definitions (``I`` = fault injected, ``R`` = fault released, ``I <= R``; for an
instantaneous fault such as a SIGKILL, ``R = I``):

- A message that is not ok has a *symptom moment*: its send time if it was not
  accepted (rejected or unanswered: the sender learns at once), else ``sent + bound``
  (the moment it became overdue; this also covers "receipts stop": every message then
  becomes overdue one bound after its send). *Affected* messages are those whose
  symptom moment is at or after ``I``; slower messages before the fault are not blamed
  on it.
- ``time_to_detect_s`` = earliest symptom moment of an affected message minus ``I``;
  None when nothing was affected.
- The service has *recovered* at ``max(F, D)``: ``F`` is the send time of the first ok
  message sent after the last affected one (from then on every message sent was
  accepted and delivered within the bound), ``D`` the arrival of the last first
  ``delivered`` receipt of an affected accepted message (the backlog the fault left
  behind has been delivered).
- Messages the target reported ``failed`` (ledger fate ``failed``) are left out of
  both figures: they had their answer, and the scenario's DLQ figures judge them (a
  background failure rate would otherwise look like a fault that never ends).
- ``time_to_recover_s`` = ``max(0, recovered - R)``; 0.0 when nothing was affected;
  None (not recovered) when an affected accepted message was never delivered nor
  failed (lost), or when no ok message was sent after the last affected one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from deliverydags.formats.send_records import read_sends
from deliverydags.ledger import delivery_timeline

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class Recovery:
    time_to_detect_s: float | None
    time_to_recover_s: float | None
    first_symptom: str | None  # "not_accepted" or "overdue"
    affected: int  # messages with a symptom at or after injection
    affected_not_accepted: int
    affected_overdue: int  # accepted, not delivered within the bound
    affected_undelivered: int  # affected accepted messages lost (never delivered nor failed)
    recovered_at_ns: int | None
    normal_bound_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def not_accepted_sent_ms(run_dir: Path) -> np.ndarray:
    """Send times (ms) of the messages not accepted (rejected or indeterminate)."""
    out = [r.sent_ms for r in read_sends(run_dir) if not r.accepted]
    return np.asarray(out, dtype=np.float64)


def measure(
    run_dir: Path,
    *,
    injected_ns: int,
    released_ns: int,
    bound_ms: float,
    close_ns: int | None,
    deadlines_s: tuple[float, ...],
) -> Recovery:
    """The figures of one chaos run (definitions in the module docstring)."""
    tl = delivery_timeline(Path(run_dir), close_ns, deadlines_s)
    sent = tl.column("sent_ms").to_numpy(zero_copy_only=False).astype(np.float64) * NS_PER_MS
    recv_col = tl.column("delivered_recv_ns")
    has_recv = recv_col.is_valid().to_numpy(zero_copy_only=False)
    recv = recv_col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
    fate = np.asarray(tl.column("fate").to_pylist(), dtype=object)
    bound_ns = bound_ms * NS_PER_MS

    ok = has_recv & (recv - sent <= bound_ns)
    overdue_at = sent + bound_ns
    hit_acc = ~ok & (overdue_at >= injected_ns) & (fate != "failed")
    na_sent = not_accepted_sent_ms(run_dir) * NS_PER_MS
    hit_na = na_sent >= injected_ns

    symptoms = np.concatenate([na_sent[hit_na], overdue_at[hit_acc]])
    n_affected = int(symptoms.size)
    undelivered = int(np.count_nonzero(hit_acc & (fate == "lost")))
    if n_affected == 0:
        return Recovery(None, 0.0, None, 0, 0, 0, 0, None, bound_ms)
    first = int(np.argmin(symptoms))
    detect_s = (float(symptoms[first]) - injected_ns) / 1e9
    kind = "not_accepted" if first < int(np.count_nonzero(hit_na)) else "overdue"

    recovered_ns = _recovered_at(sent, ok, hit_acc, has_recv, recv, na_sent[hit_na])
    if undelivered or recovered_ns is None:
        recover_s = None
    else:
        recover_s = max(0.0, (recovered_ns - released_ns) / 1e9)
    return Recovery(
        time_to_detect_s=round(detect_s, 3),
        time_to_recover_s=None if recover_s is None else round(recover_s, 3),
        first_symptom=kind,
        affected=n_affected,
        affected_not_accepted=int(np.count_nonzero(hit_na)),
        affected_overdue=int(np.count_nonzero(hit_acc)),
        affected_undelivered=undelivered,
        recovered_at_ns=None if recovered_ns is None else int(recovered_ns),
        normal_bound_ms=bound_ms,
    )


def _recovered_at(
    sent: np.ndarray,
    ok: np.ndarray,
    hit_acc: np.ndarray,
    has_recv: np.ndarray,
    recv: np.ndarray,
    hit_na_sent: np.ndarray,
) -> float | None:
    last_bad = max(
        float(sent[hit_acc].max()) if hit_acc.any() else -np.inf,
        float(hit_na_sent.max()) if hit_na_sent.size else -np.inf,
    )
    later_ok = sent[ok & (sent > last_bad)]
    if later_ok.size == 0:
        return None  # never seen working again during the load
    fresh = float(later_ok.min())
    drained = hit_acc & has_recv
    drain = float(recv[drained].max()) if drained.any() else -np.inf
    return max(fresh, drain)
