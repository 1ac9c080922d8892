"""Each fault knob produces exactly what its fault log says."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import orjson
import pytest

from .conftest import Loop, Receiver, TargetFactory, messages, metrics, send_all

pytestmark = pytest.mark.integration

DELAY_S = 0.8
RECEIPTS_PER_FAULT = {"drop": 0, "duplicate": 2, "delay": 1, "reorder": 1, "fail": 1, None: 1}


class Run(NamedTuple):
    msgs: list[dict]
    sent: dict[str, tuple[int, float]]  # id -> (status, monotonic send time)
    faults: dict[str, str]  # id -> fault, from the fault log
    url: str


def run_with_faults(
    start: TargetFactory, receiver: Receiver, loop: Loop, log: Path, *fault_args: str
) -> Run:
    """Send 90 messages through a faulty target and wait for every receipt they earn."""
    service = start(
        *fault_args, "--fault-seed", "11", "--fault-delay-s", str(DELAY_S),
        "--fault-log", str(log), "--max-attempts", "2",
    )  # fmt: skip
    # Fixed ids: with the fixed seed, which message gets which fault is the same every run.
    msgs = messages(receiver.url, streams=6, per_stream=15, tag="faulty")
    sent = loop.run(send_all(service.url, msgs, pause_s=0.005))
    assert {status for status, _t in sent.values()} == {202}
    time.sleep(0.2)  # every message has been decided (and logged) by now
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    by_msg = {m["id"]: m for m in msgs}
    for line in lines:
        assert {k: line[k] for k in ("stream", "seq")} == {
            k: by_msg[line["id"]][k] for k in ("stream", "seq")
        }
    faults = {line["id"]: line["fault"] for line in lines}
    assert len(faults) == len(lines), "one line per faulted message"
    expected = sum(RECEIPTS_PER_FAULT[faults.get(m["id"])] for m in msgs)
    receiver.wait_for(lambda rs: len(rs) >= expected, timeout=20)
    time.sleep(0.3)  # nothing more may come
    assert len(receiver.snapshot()) == expected
    return Run(msgs, sent, faults, service.url)


def check_receipts(msgs: list[dict], faults: dict[str, str], receipts: list[dict]) -> None:
    """Every message's receipts match its fault (none: exactly one `delivered`)."""
    statuses: dict[str, list[str]] = {}
    first_at: dict[str, int] = {}
    for n, r in enumerate(receipts):
        statuses.setdefault(r["id"], []).append(r["status"])
        first_at.setdefault(r["id"], n)
    for msg in msgs:
        fault = faults.get(msg["id"])
        want = {
            "drop": [],
            "duplicate": ["delivered", "delivered"],
            "fail": ["failed"],
        }.get(fault, ["delivered"])
        assert statuses.get(msg["id"], []) == want, (msg["id"], fault)

    streams: dict[str, list[dict]] = {}
    for msg in msgs:
        streams.setdefault(msg["stream"], []).append(msg)
    for stream_msgs in streams.values():
        # Unfaulted messages keep their order...
        plain = [first_at[m["id"]] for m in stream_msgs if m["id"] not in faults]
        assert plain == sorted(plain)
        for i, msg in enumerate(stream_msgs):
            if faults.get(msg["id"]) != "reorder":
                continue
            # ...and a reordered one comes after the next message that was sent normally.
            successor = next(
                (
                    m
                    for m in stream_msgs[i + 1 :]
                    if faults.get(m["id"]) in (None, "duplicate", "fail")
                ),
                None,
            )
            if successor:
                assert first_at[msg["id"]] > first_at[successor["id"]], msg["id"]


@pytest.mark.parametrize("fault", ["drop", "duplicate", "delay", "reorder", "fail"])
def test_fault_knob(
    fault: str, target: TargetFactory, receiver: Receiver, bg_loop: Loop, tmp_path: Path
) -> None:
    msgs, sent, faults, url = run_with_faults(
        target, receiver, bg_loop, tmp_path / "faults.ndjson", f"--fault-{fault}", "0.25"
    )
    assert set(faults.values()) == {fault}
    assert 8 <= len(faults) <= 40  # about a quarter of 90
    receipts = receiver.snapshot()
    check_receipts(msgs, faults, receipts)

    if fault == "delay":
        delayed = [r for r in receipts if faults.get(r["id"]) == "delay"]
        assert all(r["_t"] - sent[r["id"]][1] >= DELAY_S for r in delayed)
    got = metrics(url)
    n = len(faults)
    assert got["accepted_total"] == len(msgs)
    assert got["failed_delivery_count"] == (n if fault == "fail" else 0)
    assert got["dlq_depth"] == (n if fault == "fail" else 0)
    assert got["fault_dropped_total"] == (n if fault == "drop" else 0)
    assert got["delivered_total"] == len(msgs) - (n if fault in ("drop", "fail") else 0)
    assert got["consumer_lag"] == 0


def test_all_knobs_at_once(
    mode_target: TargetFactory, receiver: Receiver, bg_loop: Loop, tmp_path: Path
) -> None:
    knobs = [arg for kind in RECEIPTS_PER_FAULT if kind for arg in (f"--fault-{kind}", "0.1")]
    msgs, _sent, faults, url = run_with_faults(
        mode_target, receiver, bg_loop, tmp_path / "faults.ndjson", *knobs
    )
    counts = Counter(faults.values())
    assert set(counts) == {"drop", "duplicate", "delay", "reorder", "fail"}, counts
    check_receipts(msgs, faults, receiver.snapshot())
    got = metrics(url)
    assert got["failed_delivery_count"] == counts["fail"]
    assert got["fault_dropped_total"] == counts["drop"]


def test_same_seed_same_faults(
    target: TargetFactory, receiver: Receiver, bg_loop: Loop, tmp_path: Path
) -> None:
    logs = []
    for run in range(2):
        log = tmp_path / f"faults-{run}.ndjson"
        service = target("--fault-drop", "0.3", "--fault-seed", "5", "--fault-log", str(log))
        bg_loop.run(send_all(service.url, messages(receiver.url, 3, 10, tag="same")))
        time.sleep(0.2)
        logs.append(sorted(log.read_bytes().splitlines()))
        service.stop()
    assert logs[0] == logs[1]
    assert logs[0]
