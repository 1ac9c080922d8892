"""Sending receipts: signed POSTs, batched per callback URL, retried, dead-lettered.

One ``Lane`` per callback URL sends one batch at a time in queue order and retries a
failing batch before anything behind it, so a stream's receipts never overtake each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from deliverydags.formats import signing

from .broker import Entry, Source, Tally
from .config import Settings
from .messages import receipt, rfc3339

POST_TIMEOUT_S = 10.0
LANE_IDLE_S = 30.0


@dataclass(slots=True)
class Item:
    entry: Entry
    status: str = "delivered"  # "failed", or "dropped" (finished without a receipt)
    error: str | None = None
    copies: int = 1  # receipts to send: 2 for the duplicate fault, 0 when dropped
    url: str = ""  # where its receipt goes: the message's callback_url, unless leaked
    digest: str | None = None  # of the payload as delivered (string payloads)


class Poster:
    """Signs and POSTs receipt bodies."""

    def __init__(self, session: aiohttp.ClientSession, secret: bytes) -> None:
        self._session = session
        self._secret = secret

    async def post(self, url: str, receipts: list[dict[str, Any]]) -> str | None:
        """None when every body got a 2xx answer, else what went wrong.

        One body, or several in order when one would be over the collector's cap
        (``signing.MAX_BODY_BYTES``: it answers 413 to more). A failure stops there; a
        retry sends them all again, so bodies already acknowledged become duplicates,
        which at-least-once allows.
        """
        for body in bodies(receipts):
            error = await self._post_body(url, body)
            if error is not None:
                return error
        return None

    async def _post_body(self, url: str, body: bytes) -> str | None:
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.sign(self._secret, body),
        }
        try:
            # No redirects: the target only calls hosts that were allowlisted.
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                await resp.read()
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}".rstrip(": ")


def bodies(receipts: list[dict[str, Any]], limit: int = signing.MAX_BODY_BYTES) -> list[bytes]:
    """The receipts as POST bodies of at most ``limit`` bytes each, in order: one receipt
    alone, or ``{"messages": [...]}`` (byte for byte what orjson.dumps makes of it)."""
    head, tail = b'{"messages":[', b"]}"
    parts = [orjson.dumps(r) for r in receipts]
    if len(parts) == 1:
        return parts
    groups: list[list[bytes]] = [[]]
    size = len(head) + len(tail)
    for part in parts:
        if groups[-1] and size + 1 + len(part) > limit:
            groups.append([])
            size = len(head) + len(tail)
        size += len(part) + (1 if groups[-1] else 0)
        groups[-1].append(part)
    return [g[0] if len(g) == 1 else head + b",".join(g) + tail for g in groups]


def new_session() -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT_S)
    return aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=256))


Finish = Callable[[list[Item], Tally], Awaitable[None]]


class Lane:
    def __init__(
        self,
        url: str,
        settings: Settings,
        poster: Poster,
        source: Source,
        finish: Finish,
        on_idle: Callable[[str], None],
    ) -> None:
        self.url = url
        self._s = settings
        self._poster = poster
        self._source = source
        self._finish = finish
        self._on_idle = on_idle
        self._queue: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    def put(self, item: Item) -> None:
        self._queue.append(item)
        self._wake.set()
        if len(self._queue) >= self._s.batch_size:
            self._full.set()

    async def _run(self) -> None:
        wait_s = self._s.batch_wait_ms / 1000
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), LANE_IDLE_S)
            except TimeoutError:
                if not self._queue:
                    self._on_idle(self.url)
                    return
            if wait_s and len(self._queue) < self._s.batch_size:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), wait_s)
            n = min(len(self._queue), self._s.batch_size)
            batch = [self._queue.popleft() for _ in range(n)]
            if not self._queue:
                self._wake.clear()
            await self._deliver(batch)

    async def _deliver(self, batch: list[Item]) -> None:
        tally = Tally()
        error = await self._send(batch)
        attempt = 1
        while error is not None and attempt < self._s.max_attempts:
            tally.retries += 1
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1
            error = await self._send(batch)
        if error is not None:
            await self._give_up(batch, f"no 2xx from callback after {attempt} attempts: {error}")
        now_ns = time.time_ns()
        for item in batch:
            if item.status == "delivered":
                tally.delivered += 1
                tally.observe((now_ns - item.entry.message.accepted_ns) / 1e9)
            elif item.status == "failed":
                tally.failed += 1
            else:
                tally.dropped += 1
        await self._finish(batch, tally)

    async def _give_up(self, batch: list[Item], error: str) -> None:
        for item in batch:
            if item.status == "delivered":
                await self._source.dead_letter(item.entry, error)
                item.status, item.error, item.copies = "failed", error, 1
        await self._send(batch)  # the failed receipts, best effort: one try

    async def _send(self, batch: list[Item]) -> str | None:
        at = rfc3339()
        receipts = [
            receipt(
                item.entry.message,
                item.status,
                at,
                item.error,
                item.digest if item.status == "delivered" else None,
            )
            for item in batch
            for _ in range(item.copies)
        ]
        return await self._poster.post(self.url, receipts) if receipts else None

    def _backoff(self, attempt: int) -> float:
        # Exponential with jitter in [50%, 100%], so retries of many lanes spread out.
        ceiling = min(self._s.retry_max_s, self._s.retry_base_s * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)
