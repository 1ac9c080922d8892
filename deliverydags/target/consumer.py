"""A consumer: reads its shards from a broker source, applies faults, feeds the lanes."""

from __future__ import annotations

import asyncio
import logging
import zlib

from .broker import Entry, Source, Tally
from .config import CONSUMER_FAULT_KINDS, Settings
from .delivery import Item, Lane, Poster
from .faults import Faults
from .integrity import corrupted, digest
from .lifecycle import cancel_and_wait
from .messages import content
from .tenants import CallbackBook

log = logging.getLogger(__name__)

FAULT_FAIL_ERROR = "injected fault: fail"
# A message held by the reorder fault goes out anyway after this long without a successor.
REORDER_FLUSH_S = 1.0


class Consumer:
    def __init__(
        self,
        source: Source,
        settings: Settings,
        faults: Faults,
        poster: Poster,
        book: CallbackBook | None = None,
    ):
        self._source = source
        self._book = CallbackBook() if book is None else book  # shared by embedded consumers
        self._s = settings
        self._faults = faults
        self._poster = poster
        self._lanes: dict[str, Lane] = {}
        self._held: dict[str, tuple[list[Item], asyncio.TimerHandle]] = {}
        self._inflight = 0
        self._room = asyncio.Event()
        self._lane_failure: BaseException | None = None

    async def run(self) -> None:
        """Runs until cancelled; unfinished entries stay with the broker."""
        cap = self._s.max_backlog  # bounds memory when callbacks stall
        try:
            while True:
                while self._inflight >= cap:
                    self._room.clear()
                    await self._room.wait()
                entries = await self._source.fetch(min(cap - self._inflight, 1000))
                if self._lane_failure:
                    raise self._lane_failure
                self._inflight += len(entries)
                for entry in entries:
                    await self._dispatch(entry)
        finally:
            for _items, timer in self._held.values():
                timer.cancel()
            await cancel_and_wait([lane.task for lane in self._lanes.values()])

    async def _dispatch(self, entry: Entry) -> None:
        item = Item(entry, url=entry.message.callback_url)
        fault = self._apply(item)
        if fault == "drop":
            item.status, item.copies = "dropped", 0
        elif fault == "duplicate":
            item.copies = 2
        elif fault == "fail":
            item.status, item.error = "failed", FAULT_FAIL_ERROR
            await self._source.dead_letter(entry, FAULT_FAIL_ERROR)
        elif fault == "delay":
            loop = asyncio.get_running_loop()
            loop.call_later(self._faults.settings.delay_s, self._enqueue, item)
            return
        elif fault == "reorder":
            self._hold(item)
            return
        self._enqueue(item)
        if item.copies:
            self._release(entry.message.stream)

    def _apply(self, item: Item) -> str | None:
        """The receipt's content (digest), and the fault drawn for it when it applies to
        this message (logged then); the kinds that change what the receipt says are done."""
        msg = item.entry.message
        payload = content(msg).get("payload")
        item.digest = digest(payload)
        if msg.tenant is not None:
            self._book.learn(msg.tenant, msg.callback_url)
        fault = self._faults.draw(msg.id)
        extra: dict[str, object] = {}
        if fault == "leak":
            other = None
            if msg.tenant is not None:
                key = zlib.crc32(msg.id.encode())
                other = self._book.elsewhere(msg.tenant, msg.callback_url, key)
            if other is None:  # no tenant, or no other tenant's callback known yet
                return None
            extra = {"tenant": msg.tenant, "to_tenant": other[0]}
            item.url = other[1]
        elif fault in ("corrupt", "undigest"):
            if item.digest is None:  # not a string payload: nothing to change
                return None
            item.digest = digest(corrupted(payload)) if fault == "corrupt" else None
            if fault == "corrupt":
                extra["digest"] = item.digest
        elif fault not in CONSUMER_FAULT_KINDS:
            return None  # no fault, or one the API does
        self._faults.record(msg, fault, **extra)
        return fault

    def _hold(self, item: Item) -> None:
        stream = item.entry.message.stream
        items, timer = self._held.pop(stream, ([], None))
        if timer:
            timer.cancel()
        items.append(item)
        loop = asyncio.get_running_loop()
        self._held[stream] = (items, loop.call_later(REORDER_FLUSH_S, self._release, stream))

    def _release(self, stream: str) -> None:
        held = self._held.pop(stream, None)
        if held:
            held[1].cancel()
            for item in held[0]:
                self._enqueue(item)

    def _enqueue(self, item: Item) -> None:
        url = item.url
        lane = self._lanes.get(url)
        if lane is None:
            lane = Lane(url, self._s, self._poster, self._source, self._finish, self._drop_lane)
            lane.task.add_done_callback(self._lane_done)
            self._lanes[url] = lane
        lane.put(item)

    def _lane_done(self, task: asyncio.Task[None]) -> None:
        # A lane only ends by going idle or by cancellation; anything else is a bug,
        # and the consumer stops so that its entries are delivered by a fresh one.
        if not task.cancelled() and task.exception():
            log.error("receipt lane crashed", exc_info=task.exception())
            self._lane_failure = task.exception()

    def _drop_lane(self, url: str) -> None:
        self._lanes.pop(url, None)

    async def _finish(self, items: list[Item], tally: Tally) -> None:
        await self._source.ack([item.entry for item in items], tally)
        self._inflight -= len(items)
        self._room.set()
