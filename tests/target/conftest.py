"""Real servers for the target's tests: a receipt receiver, the target, Redis prefixes.

Async servers and clients run on one background event loop so the tests stay plain
synchronous pytest functions.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from deliverydags import procs
from deliverydags.formats import signing
from deliverydags.target import start
from deliverydags.target.allowlist import callback_args

TOKEN = "test-token-7d1f"
SECRET = "test-secret-41c9"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Loop:
    """An event loop in a thread; ``run`` waits for a coroutine from test code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class Receiver:
    """Receives receipts, verifies signatures, and can be told to answer 500."""

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self.receipts: list[dict[str, Any]] = []  # in arrival order, plus "_t" (monotonic)
        self.posts = 0
        self.bad_signature = 0
        self.refused = 0  # POSTs answered 500 on purpose
        self.delay_s = 0.0  # answer this late (a slow collector)
        self.fail_until = 0.0  # monotonic; 500 to every POST before it
        self.reject_ids: set[str] = set()  # 500 to any POST with a delivered receipt of these
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/receipts", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/receipts"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        now = time.monotonic()
        with self._lock:
            self.posts += 1
            if not signing.verify(SECRET.encode(), request.headers.get(signing.HEADER), body):
                self.bad_signature += 1
                return web.Response(status=401)
            doc = orjson.loads(body)
            batch = doc.get("messages", [doc])
            if now < self.fail_until or any(
                r["status"] == "delivered" and r["id"] in self.reject_ids for r in batch
            ):
                self.refused += 1
                return web.Response(status=500)
            self.receipts += [{**r, "_t": now} for r in batch]
        return web.Response(status=204)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.receipts)

    def delivered(self) -> list[dict[str, Any]]:
        return [r for r in self.snapshot() if r["status"] == "delivered"]

    def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.snapshot()):
            if time.monotonic() > deadline:
                got = len(self.snapshot())
                raise AssertionError(f"receiver: condition not met in {timeout} s ({got} receipts)")
            time.sleep(0.05)

    def wait_delivered(self, ids: Sequence[str], timeout: float = 30.0) -> None:
        wanted = set(ids)
        self.wait_for(
            lambda rs: wanted <= {r["id"] for r in rs if r["status"] == "delivered"}, timeout
        )


def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to ``url`` (http://host:port/path): status, headers, body."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    conn = http.client.HTTPConnection(hostport, timeout=10)
    try:
        conn.request(method, "/" + path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def post_message(base: str, msg: dict[str, Any], token: str = TOKEN) -> tuple[int, dict]:
    status, _headers, body = call(
        "POST", f"{base}/v1/messages", orjson.dumps(msg), {"Authorization": f"Bearer {token}"}
    )
    return status, orjson.loads(body) if body else {}


def metrics(base: str) -> dict[str, float]:
    status, _headers, body = call("GET", f"{base}/metrics")
    assert status == 200
    return metric_values(body.decode())


def messages(callback_url: str, streams: int, per_stream: int, tag: str = "") -> list[dict]:
    """Contract-v1 messages, stream by stream, seq 0.. in each."""
    tag = tag or uuid.uuid4().hex[:8]
    return [
        {
            "id": f"{tag}-s{s}-{q}",
            "stream": f"{tag}-s{s}",
            "seq": q,
            "payload": {"n": q, "pad": "x" * 32},
            "callback_url": callback_url,
        }
        for s in range(streams)
        for q in range(per_stream)
    ]


async def send_all(
    url: str, msgs: Sequence[dict], pause_s: float = 0.0
) -> dict[str, tuple[int, float]]:
    """POST every message, each stream's in order (seq n+1 after n was answered), streams
    concurrently; returns id -> (status, monotonic send time)."""
    by_stream: dict[str, list[dict]] = {}
    for msg in msgs:
        by_stream.setdefault(msg["stream"], []).append(msg)
    out: dict[str, tuple[int, float]] = {}
    async with aiohttp.ClientSession() as session:

        async def one_stream(batch: list[dict]) -> None:
            for msg in batch:
                sent = time.monotonic()
                async with session.post(
                    f"{url}/v1/messages", data=orjson.dumps(msg), headers=AUTH
                ) as resp:
                    await resp.read()
                    out[msg["id"]] = (resp.status, sent)
                if pause_s:
                    await asyncio.sleep(pause_s)

        await asyncio.gather(*(one_stream(b) for b in by_stream.values()))
    return out


def first_delivered_order(receipts: list[dict]) -> dict[str, list[int]]:
    """Per stream, the seqs in the order of their first delivered receipt."""
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for r in receipts:
        if r["status"] == "delivered" and r["id"] not in seen:
            seen.add(r["id"])
            order.setdefault(r["stream"], []).append(r["seq"])
    return order


def metric_values(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text exposition, by name."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


@pytest.fixture(scope="session")
def bg_loop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture
def receiver(bg_loop: Loop) -> Iterator[Receiver]:
    rec = Receiver(bg_loop)
    bg_loop.run(rec.start())
    yield rec
    bg_loop.run(rec.stop())


TargetFactory = Callable[..., procs.Service]


@pytest.fixture
def target(tmp_path: Path, receiver: Receiver) -> Iterator[TargetFactory]:
    """``target(*args, redis_url=None, env=None)`` starts a target, stopped after the test;
    like the harness with its collector, it may call back to this test's ``receiver`` only."""
    started: list[procs.Service] = []

    def factory(
        *args: str, redis_url: str | None = None, env: dict[str, str] | None = None
    ) -> procs.Service:
        out_dir = tmp_path / f"target-{len(started)}"
        secrets = {"DELIVERYDAGS_TARGET_TOKEN": TOKEN, "DELIVERYDAGS_CALLBACK_SECRET": SECRET}
        service = start(
            out_dir=out_dir,
            redis_url=redis_url,
            extra_args=[*callback_args(receiver.url), *args],
            env={**secrets, **(env or {})},
        )
        started.append(service)
        return service

    yield factory
    unclean = []
    for service in started:
        was_alive = service.alive()
        service.stop()  # SIGTERM to the group, SIGKILL after 3 s
        if was_alive and service.proc.returncode != 0:
            unclean.append(service.proc.returncode)
    assert not unclean, f"targets that did not stop cleanly on SIGTERM: {unclean}"


@pytest.fixture
def redis_target(redis_url: str, stream_prefix: str, target: TargetFactory) -> TargetFactory:
    """The target factory in Redis mode on this test's prefix (stopped before the cleanup)."""

    def factory(*args: str, redis_url: str = redis_url, **kwargs: Any) -> procs.Service:
        return target("--stream-prefix", stream_prefix, *args, redis_url=redis_url, **kwargs)

    return factory


@pytest.fixture(params=["embedded", "redis"])
def mode_target(request: pytest.FixtureRequest) -> TargetFactory:
    """The target factory in each broker mode."""
    name = "target" if request.param == "embedded" else "redis_target"
    return request.getfixturevalue(name)
