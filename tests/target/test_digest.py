"""Contract v1.1 payload digest, and the corrupt and undigest fault knobs."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import orjson
import pytest

from .conftest import Loop, Receiver, TargetFactory, messages, send_all

pytestmark = pytest.mark.integration


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def string_messages(callback_url: str, n: int, tag: str) -> list[dict]:
    msgs = messages(callback_url, streams=4, per_stream=n // 4, tag=tag)
    for i, msg in enumerate(msgs):
        msg["payload"] = f"payload {i} \u00e9\u20ac\U0001f600 " + "z" * (i % 7)
    return msgs


def fault_log(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert len(by_id) == len(lines), "one line per faulted message"
    return by_id


def deliver(start: TargetFactory, receiver: Receiver, loop: Loop, msgs: list[dict], *args: str):
    service = start(*args)
    sent = loop.run(send_all(service.url, msgs))
    assert {status for status, _t in sent.values()} == {202}
    receiver.wait_delivered([m["id"] for m in msgs])
    time.sleep(0.2)
    by_id = {r["id"]: r for r in receiver.delivered()}
    assert len(by_id) == len(receiver.delivered()) == len(msgs)
    return by_id


def test_delivered_receipts_carry_the_payload_digest(
    mode_target: TargetFactory, receiver: Receiver, bg_loop: Loop
) -> None:
    msgs = string_messages(receiver.url, 40, "dig")
    others = messages(receiver.url, streams=1, per_stream=3, tag="obj")  # object payloads
    others[1]["payload"], others[2]["payload"] = None, 12
    got = deliver(mode_target, receiver, bg_loop, msgs + others)
    for msg in msgs:
        assert got[msg["id"]]["digest"] == sha256(msg["payload"])
    for msg in others:
        assert "digest" not in got[msg["id"]]


@pytest.mark.parametrize("kind", ["corrupt", "undigest"])
def test_fault_knob_changes_exactly_the_logged_receipts(
    mode_target: TargetFactory, receiver: Receiver, bg_loop: Loop, tmp_path: Path, kind: str
) -> None:
    log = tmp_path / "faults.ndjson"
    msgs = string_messages(receiver.url, 80, f"f-{kind}")
    objects = messages(receiver.url, streams=1, per_stream=20, tag=f"o-{kind}")
    got = deliver(
        mode_target, receiver, bg_loop, msgs + objects,
        f"--fault-{kind}", "0.3", "--fault-seed", "7", "--fault-log", str(log),
    )  # fmt: skip
    faulted = fault_log(log)
    assert {line["fault"] for line in faulted.values()} == {kind}
    assert 10 <= len(faulted) <= 40  # about 30% of the 80 string payloads
    assert not {m["id"] for m in objects} & set(faulted), "only string payloads have a digest"
    for msg in msgs:
        receipt, want = got[msg["id"]], sha256(msg["payload"])
        if msg["id"] not in faulted:
            assert receipt["digest"] == want
        elif kind == "corrupt":
            assert receipt["digest"] != want
            assert receipt["digest"] == faulted[msg["id"]]["digest"]
            assert len(receipt["digest"]) == 64 and receipt["digest"] == receipt["digest"].lower()
        else:
            assert "digest" not in receipt
    for msg in objects:
        assert "digest" not in got[msg["id"]]
