"""Contract v1 conformance of the target's API (embedded mode: the API is the same)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import orjson
import pytest

from deliverydags.target import start

from .conftest import SECRET, TOKEN, Receiver, TargetFactory, call, metrics, post_message

pytestmark = pytest.mark.integration

PAYLOAD_LIMIT = 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"DELIVERYDAGS_TARGET_TOKEN": TOKEN, "DELIVERYDAGS_CALLBACK_SECRET": SECRET}
    service = start(
        out_dir=tmp_path_factory.mktemp("contract"),
        extra_args=[
            *("--payload-limit", str(PAYLOAD_LIMIT), "--version-label", "v-test"),
            *("--allow-callback", "127.0.0.1:9", "--allow-callback", "[::1]:9"),
            *("--allow-callback", "localhost:9", "--allow-callback", "collector.internal:443"),
        ],
        env=env,
    )
    yield service.url
    service.stop()


def good(**changes: object) -> dict:
    # Port 9 (discard) on loopback: allowed by the fixture, and nobody listens there.
    msg = {
        "id": "c-1",
        "stream": "c",
        "seq": 0,
        "payload": {"k": 1},
        "callback_url": "http://127.0.0.1:9/r",
    }
    return {**msg, **changes}


def test_healthz(api: str) -> None:
    status, headers, body = call("GET", f"{api}/healthz")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert orjson.loads(body) == {"status": "ok", "version": "v-test"}


def test_accepts_and_answers_id_and_time(api: str) -> None:
    status, doc = post_message(api, good(id="accept-1"))
    assert status == 202
    assert doc["id"] == "accept-1"
    assert datetime.fromisoformat(doc["accepted_at"]).tzinfo is not None


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"bearer {TOKEN}", TOKEN, "Bearer "])
def test_bad_or_missing_token_is_401(api: str, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    status, _h, _b = call("POST", f"{api}/v1/messages", orjson.dumps(good()), headers)
    assert status == 401


@pytest.mark.parametrize(
    "body", [b"{not json", b"x" * (PAYLOAD_LIMIT * 4)], ids=["malformed", "oversized"]
)
def test_token_checked_before_body(api: str, body: bytes) -> None:
    status, _h, _b = call("POST", f"{api}/v1/messages", body, {"Authorization": "Bearer no"})
    assert status == 401


def _without(field: str) -> dict:
    msg = good()
    del msg[field]
    return msg


BAD_BODIES = {
    "malformed": b'{"id": "x",',
    "not_object": b"[1, 2]",
    "empty": b"",
    **{f"missing_{f}": orjson.dumps(_without(f)) for f in good()},
    "id_int": orjson.dumps(good(id=5)),
    "id_empty": orjson.dumps(good(id="")),
    "id_129_bytes": orjson.dumps(good(id="\u20ac" * 43)),  # 43 x 3 bytes
    "stream_int": orjson.dumps(good(stream=3)),
    "stream_null": orjson.dumps(good(stream=None)),
    "seq_negative": orjson.dumps(good(seq=-1)),
    "seq_string": orjson.dumps(good(seq="1")),
    "seq_bool": orjson.dumps(good(seq=True)),
    "seq_float": orjson.dumps(good(seq=1.0)),
    "seq_huge": b'{"id":"x","stream":"s","seq":1e400,"payload":1,"callback_url":"http://127.0.0.1/"}',
    "callback_int": orjson.dumps(good(callback_url=1)),
    "callback_ftp": orjson.dumps(good(callback_url="ftp://127.0.0.1/r")),
    "callback_no_host": orjson.dumps(good(callback_url="http:///r")),
    "callback_bad_port": orjson.dumps(good(callback_url="http://127.0.0.1:99999/r")),
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_body_is_400_with_error(api: str, body: bytes) -> None:
    status, headers, raw = call(
        "POST", f"{api}/v1/messages", body, {"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(orjson.loads(raw)["error"], str)


def test_id_of_128_bytes_and_any_payload_are_fine(api: str) -> None:
    assert post_message(api, good(id="\u20ac" * 42 + "xx", payload=None))[0] == 202
    assert post_message(api, good(id="p-list", payload=[1, "two", {"3": [4]}]))[0] == 202


def test_payload_limit_is_413(api: str) -> None:
    # The limit counts the payload's encoded length: '"' + text + '"'.
    at_limit = "x" * (PAYLOAD_LIMIT - 2)
    assert post_message(api, good(id="at-limit", payload=at_limit))[0] == 202
    assert post_message(api, good(id="over-limit", payload=at_limit + "x"))[0] == 413


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8080/r",
        "http://192.168.1.1/r",
        "http://example.com/r",
        "http://localhost.example.com/r",
        "http://[::2]:80/r",
        "http://127.0.0.1:3000/r",  # Dagster's port on the same host
        "http://127.0.0.1:9090/api/v1/write",  # Prometheus'
        "http://localhost:3000/",
        "https://127.0.0.1/r",  # 443, not 9
        "http://127.0.0.2:9/r",
        "http://collector.internal/r",  # 80, not 443
    ],
)
def test_callback_host_not_allowlisted_is_400(api: str, url: str) -> None:
    status, doc = post_message(api, good(callback_url=url))
    assert status == 400
    assert "allowlist" in doc["error"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/r",
        "http://localhost:9/",
        "http://LOCALHOST.:9/",
        "http://[::1]:9/",
        "https://collector.internal/r",
    ],
)
def test_allowlisted_callback_hosts(api: str, url: str) -> None:
    assert post_message(api, good(id=f"ok-{url}", callback_url=url))[0] == 202


def test_metrics_exposes_the_required_names(api: str) -> None:
    names = metrics(api)
    for name in (
        "accepted_total",
        "delivered_total",
        "failed_delivery_count",
        "dlq_depth",
        "consumer_lag",
        "message_latency_seconds_count",
        "message_latency_seconds_sum",
        "delivery_rate_percentage",
        "process_resident_memory_bytes",
    ):
        assert name in names, name


def test_backlog_full_is_429_with_retry_after(
    mode_target: TargetFactory, receiver: Receiver
) -> None:
    receiver.fail_until = float("inf")  # nothing is ever acknowledged
    service = mode_target("--max-backlog", "3", "--retry-base-s", "5")
    statuses = [
        post_message(service.url, good(id=f"bp-{i}", seq=i, callback_url=receiver.url))
        for i in range(5)
    ]
    assert [s for s, _ in statuses] == [202, 202, 202, 429, 429]
    status, headers, body = call(
        "POST",
        f"{service.url}/v1/messages",
        orjson.dumps(good(id="bp-x", callback_url=receiver.url)),
        {"Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert "error" in orjson.loads(body)
    assert metrics(service.url)["consumer_lag"] == 3
