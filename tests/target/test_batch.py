"""Contract v1.1 batch send: ``POST /v1/messages:batch`` on a real target."""

from __future__ import annotations

import os
import time

import orjson
import pytest

from .conftest import (
    AUTH,
    Loop,
    Receiver,
    TargetFactory,
    call,
    first_delivered_order,
    messages,
    metrics,
)
from .test_redis_mode import TcpProxy

pytestmark = pytest.mark.integration

PAYLOAD_LIMIT = 1024


def post_batch(
    base: str, msgs: list[object], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict]:
    body = orjson.dumps({"messages": msgs})
    return post_batch_raw(base, body, headers)


def post_batch_raw(
    base: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict]:
    status, got_headers, raw = call(
        "POST", f"{base}/v1/messages:batch", body, AUTH if headers is None else headers
    )
    return status, got_headers, orjson.loads(raw) if raw else {}


def test_results_one_per_message_in_order(target: TargetFactory, receiver: Receiver) -> None:
    service = target("--payload-limit", str(PAYLOAD_LIMIT))
    good = messages(receiver.url, streams=3, per_stream=4, tag="batch")
    missing_seq = {k: v for k, v in good[0].items() if k != "seq"} | {"id": "no-seq"}
    over = {**good[0], "id": "too-big", "payload": "x" * PAYLOAD_LIMIT}
    elsewhere = {**good[0], "id": "elsewhere", "callback_url": "http://127.0.0.1:9/r"}
    batch: list[object] = [*good[:5], missing_seq, over, "not an object", elsewhere, *good[5:]]
    status, headers, doc = post_batch(service.url, batch)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    results = doc["results"]
    assert [r["id"] for r in results] == [
        *(m["id"] for m in good[:5]), "no-seq", "too-big", None, "elsewhere",
        *(m["id"] for m in good[5:]),
    ]  # fmt: skip
    assert [r["status"] for r in results] == [202] * 5 + [400, 413, 400, 400] + [202] * 7
    for r in results:
        assert ("error" in r) == (r["status"] != 202)
        assert set(r) <= {"id", "status", "error"}
    assert "allowlist" in results[8]["error"]

    receiver.wait_delivered([m["id"] for m in good])
    order = first_delivered_order(receiver.snapshot())
    assert order == {f"batch-s{s}": [0, 1, 2, 3] for s in range(3)}
    assert {r["id"] for r in receiver.snapshot()} == {m["id"] for m in good}
    assert metrics(service.url)["accepted_total"] == len(good)


def test_whole_request_failures(target: TargetFactory, receiver: Receiver) -> None:
    service = target("--batch-body-limit", "4096")
    msgs = messages(receiver.url, streams=1, per_stream=2)
    assert post_batch(service.url, msgs, {"Authorization": "Bearer wrong"})[0] == 401
    # The token is checked before the body is looked at.
    assert post_batch_raw(service.url, b"{nope", {"Authorization": "Bearer wrong"})[0] == 401
    big = [{**msgs[0], "id": f"big-{i}", "seq": i, "payload": "y" * 500} for i in range(10)]
    status, _h, doc = post_batch(service.url, big)
    assert status == 413 and "error" in doc
    for body in (
        b"{nope",
        b"[]",
        b'{"messages": []}',
        b'{"messages": {"id": "x"}}',
        orjson.dumps({"messages": [1] * 501}),
        b'{"other": []}',
    ):
        status, _h, doc = post_batch_raw(service.url, body)
        assert status == 400, body[:40]
        assert isinstance(doc["error"], str)
    assert metrics(service.url)["accepted_total"] == 0
    assert receiver.posts == 0


def test_all_500_accepted(target: TargetFactory, receiver: Receiver) -> None:
    service = target()
    msgs = messages(receiver.url, streams=10, per_stream=50)
    status, _h, doc = post_batch(service.url, msgs)
    assert status == 200
    assert [r["status"] for r in doc["results"]] == [202] * 500
    receiver.wait_delivered([m["id"] for m in msgs])
    order = first_delivered_order(receiver.snapshot())
    assert all(seqs == list(range(50)) for seqs in order.values())


def test_backlog_bound_per_message_then_whole_request(
    mode_target: TargetFactory, receiver: Receiver
) -> None:
    receiver.fail_until = float("inf")  # nothing is ever acknowledged
    service = mode_target("--max-backlog", "3", "--retry-base-s", "5", "--retry-after-s", "2")
    msgs = messages(receiver.url, streams=1, per_stream=7)
    status, _h, doc = post_batch(service.url, msgs[:5])
    assert status == 200
    assert [r["status"] for r in doc["results"]] == [202, 202, 202, 429, 429]
    assert all("backlog" in r["error"] for r in doc["results"][3:])
    # Full on arrival: 429 for all of it, with Retry-After.
    status, headers, doc = post_batch(service.url, msgs[5:])
    assert status == 429
    assert headers["Retry-After"] == "2"
    assert "error" in doc
    # A single send past the bound: the same header (--retry-after-s).
    status, headers, _raw = call("POST", f"{service.url}/v1/messages", orjson.dumps(msgs[6]), AUTH)
    assert (status, headers["Retry-After"]) == (429, "2")
    assert metrics(service.url)["consumer_lag"] == 3


def test_redis_mode_delivers_a_batch_in_order(
    redis_target: TargetFactory, receiver: Receiver
) -> None:
    service = redis_target()
    msgs = messages(receiver.url, streams=4, per_stream=25)
    status, _h, doc = post_batch(service.url, msgs)
    assert status == 200
    assert {r["status"] for r in doc["results"]} == {202}
    receiver.wait_delivered([m["id"] for m in msgs])
    order = first_delivered_order(receiver.snapshot())
    assert all(seqs == list(range(25)) for seqs in order.values())


def test_broker_down_is_503_for_all_of_it(
    redis_target: TargetFactory, receiver: Receiver, bg_loop: Loop
) -> None:
    host, port = os.environ.get("REDIS_HOST", "127.0.0.1"), os.environ.get("REDIS_PORT", "6379")
    proxy = TcpProxy(bg_loop, host, int(port))
    bg_loop.run(proxy.up())
    try:
        service = redis_target(redis_url=f"redis://127.0.0.1:{proxy.port}/0")
        msgs = messages(receiver.url, streams=3, per_stream=2)
        assert {r["status"] for r in post_batch(service.url, msgs[:3])[2]["results"]} == {202}
        bg_loop.run(proxy.down())
        status, _h, doc = post_batch(service.url, msgs[3:])
        assert status == 503 and "error" in doc
        bg_loop.run(proxy.up())
        deadline = time.monotonic() + 15
        while (got := post_batch(service.url, msgs[3:]))[0] != 200:
            assert time.monotonic() < deadline, "no recovery"
            time.sleep(0.1)
        assert {r["status"] for r in got[2]["results"]} == {202}
        receiver.wait_delivered([m["id"] for m in msgs])
    finally:
        bg_loop.run(proxy.down())
