"""Redis mode under failure: a killed consumer, a vanished consumer, Redis going away."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from deliverydags import procs
from deliverydags.target.broker import shard_of
from deliverydags.target.messages import Message
from deliverydags.target.redisbroker import GROUP, fields_of

from .conftest import (
    Loop,
    Receiver,
    TargetFactory,
    call,
    messages,
    metrics,
    post_message,
    send_all,
)

pytestmark = pytest.mark.integration


def consumers_of(service: procs.Service) -> list[psutil.Process]:
    return [p for p in psutil.Process(service.pid).children() if p.is_running()]


def pending_of(client: redis.Redis, prefix: str, consumer: str, shards: int = 2) -> int:
    """Entries ``consumer`` has read and not acknowledged."""
    total = 0
    for k in range(shards):
        for row in client.xpending(f"{prefix}:shard:{k}", GROUP)["consumers"]:
            if row["name"].decode() == consumer:
                total += row["pending"]
    return total


def wait_until(check, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.05)


def test_killed_consumer_loses_nothing_and_is_restarted(
    redis_target: TargetFactory,
    redis_url: str,
    stream_prefix: str,
    receiver: Receiver,
    bg_loop: Loop,
) -> None:
    service = redis_target("--consumers", "2", "--claim-idle-s", "1")
    before = consumers_of(service)
    assert len(before) == 2
    receiver.delay_s = 0.02  # a slowish collector, so the victim holds unacknowledged entries
    msgs = messages(receiver.url, streams=20, per_stream=40)
    load = asyncio.run_coroutine_threadsafe(send_all(service.url, msgs, 0.01), bg_loop.loop)
    victim = before[0]
    name = f"consumer-{victim.cmdline()[victim.cmdline().index('deliverydags.target.worker') + 1]}"
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: pending_of(client, stream_prefix, name) > 0, what="victim holds entries")
    victim.send_signal(signal.SIGKILL)
    held = pending_of(client, stream_prefix, name)
    client.close()
    assert not load.done(), "the load should still be running"
    sent = load.result(60)
    accepted = [i for i, (status, _t) in sent.items() if status == 202]
    assert len(accepted) == len(msgs)

    receiver.wait_delivered(accepted, timeout=40)
    wait_until(lambda: len(consumers_of(service)) == 2, what="consumer restart")
    assert victim.pid not in {p.pid for p in consumers_of(service)}
    got = metrics(service.url)
    assert got["consumer_restarts_total"] == 1
    assert got["accepted_total"] == len(msgs)
    assert held > 0


def test_entries_of_a_vanished_consumer_are_reclaimed(
    redis_target: TargetFactory,
    redis_url: str,
    stream_prefix: str,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    # A consumer that read entries and never came back (say, --consumers was lowered).
    client = redis.Redis.from_url(redis_url)
    shards = 2
    for k in range(shards):
        client.xgroup_create(f"{stream_prefix}:shard:{k}", GROUP, id="0", mkstream=True)
    ids = []
    for seq in range(6):
        msg = Message(f"ghost-{seq}", f"g{seq % 3}", seq // 3, receiver.url, time.time_ns(), b"{}")
        key = f"{stream_prefix}:shard:{shard_of(msg.stream, shards)}"
        client.xadd(key, dict(zip("isqctb", fields_of(msg), strict=True)))
        ids.append(msg.id)
    streams = {f"{stream_prefix}:shard:{k}": ">" for k in range(shards)}
    assert sum(len(rows) for _key, rows in client.xreadgroup(GROUP, "ghost", streams)) == 6

    service = redis_target("--shards", str(shards), "--claim-idle-s", "0.5")
    receiver.wait_delivered(ids, timeout=15)
    wait_until(lambda: metrics(service.url)["consumer_lag"] == 0, what="backlog drained")
    for k in range(shards):
        assert client.xpending(f"{stream_prefix}:shard:{k}", GROUP)["pending"] == 0
    client.close()
    log = (tmp_path / "target-0" / "target.log").read_text()
    assert "reclaimed" in log


class TcpProxy:
    """Forwards a local port to Redis; ``down()`` cuts every connection and the port."""

    def __init__(self, loop: Loop, host: str, port: int) -> None:
        self._loop, self._upstream = loop, (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
def redis_proxy(bg_loop: Loop, redis_url: str) -> Iterator[TcpProxy]:
    host = os.environ.get("REDIS_HOST", "127.0.0.1")
    proxy = TcpProxy(bg_loop, host, int(os.environ.get("REDIS_PORT", "6379")))
    bg_loop.run(proxy.up())
    yield proxy
    bg_loop.run(proxy.down())


def test_redis_down_is_503_then_recovers(
    redis_proxy: TcpProxy, redis_target: TargetFactory, receiver: Receiver, bg_loop: Loop
) -> None:
    service = redis_target(redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")
    msgs = messages(receiver.url, streams=1, per_stream=3)
    assert post_message(service.url, msgs[0])[0] == 202

    bg_loop.run(redis_proxy.down())
    status, doc = post_message(service.url, msgs[1])
    assert status == 503
    assert "error" in doc
    assert call("GET", f"{service.url}/healthz")[0] == 200  # alive, just not accepting

    bg_loop.run(redis_proxy.up())
    wait_until(lambda: post_message(service.url, msgs[1])[0] == 202, what="recovery")
    assert post_message(service.url, msgs[2])[0] == 202
    receiver.wait_delivered([m["id"] for m in msgs], timeout=20)
