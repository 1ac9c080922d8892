"""Delivery in both broker modes: signatures, order, retries, dead letters, metrics."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import redis

from .conftest import (
    Loop,
    Receiver,
    TargetFactory,
    first_delivered_order,
    messages,
    metrics,
    post_message,
    send_all,
)

pytestmark = pytest.mark.integration


def wait_metrics(base: str, want: dict[str, float], timeout: float = 10.0) -> dict[str, float]:
    """Metrics once they show ``want`` (acks land just after the receipts)."""
    deadline = time.monotonic() + timeout
    while True:
        got = metrics(base)
        if all(got.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            assert {k: got.get(k) for k in want} == want
            return got
        time.sleep(0.05)


def test_delivers_signed_receipts_in_stream_order(
    mode_target: TargetFactory, receiver: Receiver, bg_loop: Loop
) -> None:
    service = mode_target()
    msgs = messages(receiver.url, streams=8, per_stream=25)
    sent = bg_loop.run(send_all(service.url, msgs))
    assert {status for status, _t in sent.values()} == {202}
    receiver.wait_delivered([m["id"] for m in msgs])

    receipts = receiver.snapshot()
    assert receiver.bad_signature == 0
    assert sorted(r["id"] for r in receipts) == sorted(m["id"] for m in msgs)  # once each
    by_id = {m["id"]: m for m in msgs}
    for r in receipts:
        assert (r["stream"], r["seq"]) == (by_id[r["id"]]["stream"], by_id[r["id"]]["seq"])
        assert r["delivered_at"].endswith("Z")
        datetime.fromisoformat(r["delivered_at"])
    for stream, seqs in first_delivered_order(receipts).items():
        assert seqs == sorted(seqs), stream

    got = wait_metrics(
        service.url,
        {
            "accepted_total": 200,
            "delivered_total": 200,
            "failed_delivery_count": 0,
            "dlq_depth": 0,
            "consumer_lag": 0,
            "message_latency_seconds_count": 200,
            "delivery_rate_percentage": 100.0,
        },
    )
    assert 0 < got["message_latency_seconds_sum"] < 200 * 5
    assert got["process_resident_memory_bytes"] > 0


def test_at_least_once_while_the_collector_answers_500(
    mode_target: TargetFactory, receiver: Receiver, bg_loop: Loop
) -> None:
    service = mode_target("--retry-base-s", "0.05", "--retry-max-s", "0.2", "--max-attempts", "60")
    receiver.fail_until = time.monotonic() + 1.5
    msgs = messages(receiver.url, streams=4, per_stream=10)
    sent = bg_loop.run(send_all(service.url, msgs, pause_s=0.02))
    assert {status for status, _t in sent.values()} == {202}
    receiver.wait_delivered([m["id"] for m in msgs])

    assert receiver.refused > 0
    for stream, seqs in first_delivered_order(receiver.snapshot()).items():
        assert seqs == sorted(seqs), stream
    got = wait_metrics(service.url, {"delivered_total": 40, "failed_delivery_count": 0})
    assert got["delivery_retries_total"] > 0


def test_dead_letter_and_failed_receipt_after_max_attempts(
    request: pytest.FixtureRequest, mode_target: TargetFactory, receiver: Receiver
) -> None:
    # One receipt per POST, so the poisoned message fails alone.
    service = mode_target(
        "--max-attempts", "3", "--retry-base-s", "0.05", "--retry-max-s", "0.1",
        "--batch-size", "1",
    )  # fmt: skip
    msgs = messages(receiver.url, streams=1, per_stream=3)
    receiver.reject_ids = {msgs[0]["id"]}
    for msg in msgs:  # all queued behind the poisoned one at once
        assert post_message(service.url, msg)[0] == 202
    receiver.wait_delivered([m["id"] for m in msgs[1:]])

    receipts = receiver.snapshot()
    failed = [r for r in receipts if r["status"] == "failed"]
    assert [r["id"] for r in failed] == [msgs[0]["id"]]
    assert "3 attempts" in failed[0]["error"]
    assert datetime.fromisoformat(failed[0]["delivered_at"])
    assert receiver.refused == 3
    # The stream waited for the failing message: its failed receipt came first.
    assert [r["id"] for r in receipts] == [m["id"] for m in msgs]
    got = wait_metrics(
        service.url, {"failed_delivery_count": 1, "delivered_total": 2, "dlq_depth": 1}
    )
    assert got["delivery_rate_percentage"] == pytest.approx(200 / 3)

    if request.node.callspec.params["mode_target"] == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        prefix = request.getfixturevalue("stream_prefix")
        (entry,) = client.xrange(f"{prefix}:dlq")
        assert entry[1][b"i"] == msgs[0]["id"].encode()
        assert b"3 attempts" in entry[1][b"error"]
        client.close()
