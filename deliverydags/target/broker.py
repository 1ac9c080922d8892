"""The broker interface both implementations (embedded, Redis) provide.

The API publishes; each consumer reads its shards through a ``Source``. A stream always
maps to the same shard, so one consumer sees a stream's messages in accepted order.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .idempotency import Prior
from .messages import Message

# Upper bounds (seconds) of the accept -> acknowledged latency histogram.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class BrokerDown(Exception):
    """The broker cannot be reached; the API answers 503."""


def shard_of(stream: str, shards: int) -> int:
    # crc32, not hash(): every process must agree, whatever its hash seed.
    return zlib.crc32(stream.encode()) % shards


@dataclass(slots=True)
class Entry:
    shard: int
    ref: Any  # the broker's handle for acknowledging it
    message: Message


@dataclass
class Tally:
    """What a set of finished entries adds to the shared counters."""

    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe(self, seconds: float) -> None:
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def fields(self) -> dict[str, int]:
        """Non-zero integer counters, keyed as stored."""
        out = {
            "delivered": self.delivered,
            "failed": self.failed,
            "dropped": self.dropped,
            "retries": self.retries,
        }
        out.update({f"lat{i}": n for i, n in enumerate(self.latency_counts)})
        return {k: v for k, v in out.items() if v}


@dataclass
class Snapshot:
    """Whole-service numbers for /metrics."""

    counters: dict[str, float]  # accepted, delivered, failed, dropped, retries, lat<i>, lat_sum
    dlq_depth: int
    backlog: int


class Source(Protocol):
    """One consumer's view of the broker."""

    async def fetch(self, count: int) -> list[Entry]:
        """Up to ``count`` entries of this consumer's shards, in order; may wait a while."""

    async def ack(self, entries: Sequence[Entry], tally: Tally) -> None:
        """Forget finished entries and add ``tally`` to the counters, together."""

    async def dead_letter(self, entry: Entry, error: str) -> None:
        """Keep a copy of a message that could not be delivered."""

    async def close(self) -> None: ...


class Broker(Protocol):
    async def start(self) -> None:
        """Connect; raises BrokerDown when the broker cannot be reached."""

    async def publish(self, msg: Message, again: str = "") -> Prior | None:
        """Queue ``msg`` unless its id was accepted before (contract v1.1 idempotent
        resend): None once it is durably queued, else the first send's record, and then it
        is queued only as ``again`` says (idempotency.queue_again). Raises BrokerDown."""

    def backlog(self) -> int:
        """Accepted, not yet acknowledged messages (may lag a few ms in Redis mode)."""

    async def snapshot(self) -> Snapshot: ...

    def source(self, index: int) -> Source:
        """The source of consumer ``index`` (owning shards k with k % consumers == index)."""

    async def close(self) -> None: ...
