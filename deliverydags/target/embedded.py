"""In-process broker: one deque per shard, so the demo needs no server.

Durable only for the life of the process; consumers are tasks of the same event loop.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Sequence

from .broker import Entry, Snapshot, Tally, shard_of
from .idempotency import Ledger, Prior, queue_again
from .messages import Message, rfc3339

DLQ_MAX = 100_000


class EmbeddedBroker:
    def __init__(self, shards: int, consumers: int, idempotency_ttl_s: float = 3600.0) -> None:
        self._ledger = Ledger(idempotency_ttl_s)
        self._shards = [deque[Entry]() for _ in range(shards)]
        self._consumers = consumers
        self._wake = [asyncio.Event() for _ in range(consumers)]
        self._ids = itertools.count()
        self._counters: Counter[str] = Counter()
        self._unacked = 0
        self.dlq: deque[dict[str, object]] = deque(maxlen=DLQ_MAX)

    async def start(self) -> None:
        pass

    async def publish(self, msg: Message, again: str = "") -> Prior | None:
        prior = self._ledger.claim(msg.id, Prior(msg.fingerprint, msg.accepted_ns))
        if prior is not None and not queue_again(prior, msg.fingerprint, again):
            return prior
        shard = shard_of(msg.stream, len(self._shards))
        self._shards[shard].append(Entry(shard, next(self._ids), msg))
        self._unacked += 1
        self._counters["accepted"] += 1
        self._wake[shard % self._consumers].set()
        return prior

    def backlog(self) -> int:
        return self._unacked

    async def snapshot(self) -> Snapshot:
        return Snapshot(dict(self._counters), len(self.dlq), self._unacked)

    def source(self, index: int) -> EmbeddedSource:
        return EmbeddedSource(self, index)

    async def close(self) -> None:
        pass

    # Called by the sources of this broker.
    def _take(self, index: int, count: int) -> list[Entry]:
        out: list[Entry] = []
        for k in range(index, len(self._shards), self._consumers):
            queue = self._shards[k]
            while queue and len(out) < count:
                out.append(queue.popleft())
        return out

    def _finish(self, n: int, tally: Tally) -> None:
        self._unacked -= n
        self._counters.update(tally.fields())
        self._counters["lat_sum"] += tally.latency_sum


class EmbeddedSource:
    def __init__(self, broker: EmbeddedBroker, index: int) -> None:
        self._broker = broker
        self._index = index

    async def fetch(self, count: int) -> list[Entry]:
        wake = self._broker._wake[self._index]
        while True:
            wake.clear()
            entries = self._broker._take(self._index, count)
            if entries:
                return entries
            await wake.wait()

    async def ack(self, entries: Sequence[Entry], tally: Tally) -> None:
        self._broker._finish(len(entries), tally)

    async def dead_letter(self, entry: Entry, error: str) -> None:
        msg = entry.message
        self._broker.dlq.append(
            {
                "id": msg.id,
                "stream": msg.stream,
                "seq": msg.seq,
                "error": error,
                "failed_at": rfc3339(),
                "body": msg.body,
            }
        )

    async def close(self) -> None:
        pass
