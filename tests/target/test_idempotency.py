"""Contract v1.1 idempotent resend, and the redeliver-resend and accept-changed fault knobs
(embedded queue and Redis: the record lives in the broker)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from .conftest import AUTH, Receiver, TargetFactory, call, messages, metrics, post_message

pytestmark = pytest.mark.integration


def receipts_per_id(receiver: Receiver) -> Counter[str]:
    return Counter(r["id"] for r in receiver.delivered())


def settle(receiver: Receiver, expected: int) -> Counter[str]:
    receiver.wait_for(lambda rs: len(rs) >= expected)
    time.sleep(0.5)  # nothing more may come
    assert len(receiver.snapshot()) == expected
    return receipts_per_id(receiver)


def test_resend_is_answered_from_the_first_send(
    mode_target: TargetFactory, receiver: Receiver
) -> None:
    service = mode_target()
    msgs = messages(receiver.url, streams=2, per_stream=3, tag="idem")
    first = {}
    for msg in msgs:
        status, doc = post_message(service.url, msg)
        assert status == 202
        first[msg["id"]] = doc["accepted_at"]
    time.sleep(0.01)  # a later accepted_at would differ
    for msg in msgs:
        # The identical body, also with its keys in another order.
        for again in (msg, dict(reversed(list(msg.items())))):
            status, doc = post_message(service.url, again)
            assert (status, doc) == (202, {"id": msg["id"], "accepted_at": first[msg["id"]]})
        status, doc = post_message(service.url, {**msg, "payload": "changed"})
        assert status == 409 and "different body" in doc["error"]
    # In a batch: per message; a repeat inside one batch is a resend too.
    fresh = messages(receiver.url, streams=1, per_stream=1, tag="fresh")[0]
    batch = [msgs[0], {**msgs[1], "seq": 99}, fresh, fresh]
    status, _h, raw = call(
        "POST", f"{service.url}/v1/messages:batch", orjson.dumps({"messages": batch}), AUTH
    )
    assert status == 200
    assert [r["status"] for r in orjson.loads(raw)["results"]] == [202, 409, 202, 202]

    counts = settle(receiver, len(msgs) + 1)
    assert set(counts.values()) == {1}
    assert metrics(service.url)["accepted_total"] == len(msgs) + 1


def test_an_id_is_new_again_after_the_ttl(mode_target: TargetFactory, receiver: Receiver) -> None:
    service = mode_target("--idempotency-ttl-s", "1")
    msg = messages(receiver.url, streams=1, per_stream=1)[0]
    status, doc = post_message(service.url, msg)
    assert status == 202
    receiver.wait_delivered([msg["id"]])
    time.sleep(1.5)
    status, again = post_message(service.url, msg)
    assert status == 202 and again["accepted_at"] != doc["accepted_at"]
    assert settle(receiver, 2) == {msg["id"]: 2}


def fault_lines(log: Path) -> dict[str, dict]:
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
    by_id = {line["id"]: line for line in lines}
    assert len(by_id) == len(lines), "one line per faulted resend"
    return by_id


@pytest.mark.parametrize("kind", ["redeliver-resend", "accept-changed"])
def test_resend_fault_knob_delivers_exactly_the_logged_resends(
    mode_target: TargetFactory, receiver: Receiver, tmp_path: Path, kind: str
) -> None:
    log = tmp_path / "faults.ndjson"
    service = mode_target(f"--fault-{kind}", "0.4", "--fault-seed", "9", "--fault-log", str(log))
    msgs = messages(receiver.url, streams=3, per_stream=20, tag=f"re-{kind}")
    first = {}
    for msg in msgs:
        status, doc = post_message(service.url, msg)
        assert status == 202
        first[msg["id"]] = doc["accepted_at"]
    receiver.wait_delivered(list(first))
    assert fault_lines(log) == {}, "a first send is no resend"
    answers = {}
    for msg in msgs:
        again = msg if kind == "redeliver-resend" else {**msg, "payload": "changed"}
        answers[msg["id"]] = post_message(service.url, again)
    faulted = fault_lines(log)
    assert {line["fault"] for line in faulted.values()} == {kind}
    assert 10 <= len(faulted) <= 40  # about 40% of 60
    counts = settle(receiver, len(msgs) + len(faulted))
    for msg in msgs:
        status, doc = answers[msg["id"]]
        hit = msg["id"] in faulted
        assert counts[msg["id"]] == (2 if hit else 1), msg["id"]
        if kind == "redeliver-resend":
            assert (status, doc["accepted_at"]) == (202, first[msg["id"]])
        elif hit:
            assert status == 202 and doc["accepted_at"] != first[msg["id"]]
        else:
            assert status == 409
    assert metrics(service.url)["accepted_total"] == len(msgs) + len(faulted)
