"""recovery.measure on hand-made run files whose answers are known by construction."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from deliverydags.chaos.recovery import measure
from deliverydags.formats import RECEIPTS_FILE, SENDS_FILE

T0 = 1_800_000_000_000.0  # ms
S = 1_000_000_000  # ns per second


def write_run(run_dir: Path, msgs: list[tuple[float, str, float | None, str]]) -> None:
    """msgs: (sent at s after T0, class, receipt at s after T0 or None, receipt status)."""
    sends, receipts = [], []
    for i, (sent_s, cls, recv_s, status) in enumerate(msgs):
        mid = f"m{i}"
        sends.append({"dd": 1, "id": mid, "stream": "s", "seq": i, "class": cls,
                      "sent_ms": T0 + sent_s * 1000, "status": 202 if cls == "accepted" else 503,
                      "variant": ""})  # fmt: skip
        if recv_s is not None:
            receipts.append((recv_s, mid, i, status))
    receipts.sort()
    lines = [
        {"n": n, "recv_ns": int(T0 * 1e6 + r * S), "id": mid, "stream": "s", "seq": seq,
         "status": st, "delivered_at": "2027-01-15T08:00:00Z"}
        for n, (r, mid, seq, st) in enumerate(receipts)
    ]  # fmt: skip
    (run_dir / SENDS_FILE).write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in sends))
    (run_dir / RECEIPTS_FILE).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))


def at(s: float) -> int:
    return int(T0 * 1e6 + s * S)


def run(tmp_path: Path, msgs, injected: float, released: float):
    write_run(tmp_path, msgs)
    return measure(tmp_path, injected_ns=at(injected), released_ns=at(released),
                   bound_ms=1000.0, close_ns=None, deadlines_s=(60.0,))  # fmt: skip


def normal(start: float, end: float, step: float = 0.5) -> list:
    out, t = [], start
    while t < end:
        out.append((t, "accepted", t + 0.1, "delivered"))
        t += step
    return out


def test_kill_backlog_redelivered_late_sets_detect_and_recover(tmp_path: Path) -> None:
    # A message sent at 9.8 s is held by the killed consumer (kill at 10 s) and delivered
    # at 14 s: overdue at 10.8 s (detect 0.8 s); recovered when it is delivered (4 s).
    msgs = [*normal(0, 9.8), (9.8, "accepted", 14.0, "delivered"), *normal(10, 30)]
    rec = run(tmp_path, msgs, injected=10.0, released=10.0)
    assert rec.time_to_detect_s == pytest.approx(0.8, abs=1e-3)
    assert rec.first_symptom == "overdue"
    assert rec.time_to_recover_s == pytest.approx(4.0, abs=1e-3)
    assert rec.affected == rec.affected_overdue == 1


def test_outage_refusals_then_first_good_message_after_release(tmp_path: Path) -> None:
    # Redis down 10..20 s: every send refused; the first message after it is slow (1.5 s),
    # the one at 21 s is normal again, but the slow one's receipt (21.5 s) closes the
    # backlog: recovered 1.5 s after release.
    msgs = [
        *normal(0, 10),
        *[(t / 2, "rejected", None, "") for t in range(21, 40)],
        (20.0, "accepted", 21.5, "delivered"),
        *normal(21, 40),
    ]
    rec = run(tmp_path, msgs, injected=10.0, released=20.0)
    assert rec.time_to_detect_s == pytest.approx(0.5, abs=1e-3)
    assert rec.first_symptom == "not_accepted"
    assert rec.affected_not_accepted == 19 and rec.affected_overdue == 1
    assert rec.time_to_recover_s == pytest.approx(1.5, abs=1e-3)


def test_a_lost_message_means_not_recovered(tmp_path: Path) -> None:
    msgs = [*normal(0, 9.8), (9.8, "accepted", None, ""), *normal(10, 30)]
    rec = run(tmp_path, msgs, injected=10.0, released=10.0)
    assert rec.time_to_detect_s == pytest.approx(0.8, abs=1e-3)
    assert rec.time_to_recover_s is None and rec.affected_undelivered == 1


def test_never_working_again_during_the_load_means_not_recovered(tmp_path: Path) -> None:
    msgs = [*normal(0, 10), *[(10 + t / 2, "rejected", None, "") for t in range(20)]]
    rec = run(tmp_path, msgs, injected=10.0, released=15.0)
    assert rec.time_to_recover_s is None


def test_no_symptom_recovers_at_once_and_slow_messages_before_the_fault_are_not_blamed(
    tmp_path: Path,
) -> None:
    msgs = [(1.0, "accepted", 5.0, "delivered"), *normal(2, 30)]  # overdue at 2 s < fault
    rec = run(tmp_path, msgs, injected=10.0, released=10.0)
    assert rec.time_to_detect_s is None and rec.time_to_recover_s == 0.0 and rec.affected == 0


def test_failed_messages_are_left_to_the_dlq_figures(tmp_path: Path) -> None:
    msgs = [*normal(0, 30), (12.0, "accepted", 12.2, "failed"), (25.0, "accepted", 25.1, "failed")]
    rec = run(tmp_path, msgs, injected=10.0, released=10.0)
    assert rec.affected == 0 and rec.time_to_recover_s == 0.0
