"""Redis Streams broker: shard streams with one consumer group, a DLQ stream, shared counters.

Keys under ``<prefix>:``: ``shard:<k>`` (entries until acknowledged, then deleted, so the
backlog is the sum of their lengths), ``dlq``, ``stats`` (a hash every process adds to) and
``idem:<id>`` (each accepted id's first send, for idempotent resends; expiring) and
``callbacks`` (tenant callback URLs the consumers saw, shared for the leak fault).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from .broker import BrokerDown, Entry, Snapshot, Tally, shard_of
from .idempotency import Prior, queue_again
from .lifecycle import cancel_and_wait
from .messages import Message, content, rfc3339
from .tenants import CallbackBook

log = logging.getLogger(__name__)

GROUP = "consumers"
DLQ_MAX = 100_000
BACKLOG_REFRESH_S = 0.05
BLOCK_MS = 500
# Our own deadline on every call that must not hang (redis-py's socket_timeout costs a
# task per command on Python 3.11, and that task can swallow a cancellation).
TIMEOUT_S = 5.0
# A client is waiting on every publish: a hung Redis must turn into a 503 within ~2 s
# (one batch in flight, then its own), so the deadline covers waiting for the lock too.
PUBLISH_TIMEOUT_S = 1.0
FAILURES = (RedisError, TimeoutError)
MAX_CONNECTIONS = 64
PUBLISH_BATCH_MAX = 256
# A batch of XADDs and the accepted counter in one round trip, all or nothing, each XADD
# behind its id's idempotency record (contract v1.1): SET NX GET claims it, and a send of
# an id already recorded is queued only when its resend fault says so.
# KEYS: the shard of each message, the stats hash, then the record key of each message.
# ARGV: 8 per message (6 entry fields, fingerprint, "again" flags), then the record TTL.
# Returns per message the prior record, or "" when this send made the record.
_PUBLISH = """
local n = (#KEYS - 1) / 2
local ttl = ARGV[#ARGV]
local out = {}
local added = 0
for i = 1, n do
  local a = (i - 1) * 8
  local fp = ARGV[a + 7]
  local prior = redis.call('SET', KEYS[n + 1 + i], fp .. ':' .. ARGV[a + 5], 'NX', 'GET', 'EX', ttl)
  local queue = not prior
  if prior then
    local want = (string.sub(prior, 1, #fp + 1) == fp .. ':') and 's' or 'c'
    queue = string.find(ARGV[a + 8], want, 1, true) ~= nil
  end
  if queue then
    redis.call('XADD', KEYS[i], '*', 'i', ARGV[a + 1], 's', ARGV[a + 2], 'q', ARGV[a + 3],
               'c', ARGV[a + 4], 't', ARGV[a + 5], 'b', ARGV[a + 6])
    added = added + 1
  end
  out[i] = prior or ''
end
if added > 0 then
  redis.call('HINCRBY', KEYS[n + 1], 'accepted', added)
end
return out
"""


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def fields_of(msg: Message) -> list[Any]:
    """The stream entry of ``msg`` (also how tests plant entries)."""
    return [msg.id, msg.stream, msg.seq, msg.callback_url, msg.accepted_ns, msg.body]


def message_of(fields: dict[bytes, bytes]) -> Message:
    msg = Message(
        fields[b"i"].decode(),
        fields[b"s"].decode(),
        int(fields[b"q"]),
        fields[b"c"].decode(),
        int(fields[b"t"]),
        fields[b"b"],
    )
    tenant = content(msg).get("tenant")  # kept in the body only
    msg.tenant = tenant if isinstance(tenant, str) else None
    return msg


class RedisBroker:
    def __init__(
        self,
        url: str,
        prefix: str,
        shards: int,
        consumers: int,
        claim_idle_s: float,
        reclaim: bool = True,
        record_ttl_s: int = 3600,
    ):
        self.url = url
        # Many lanes may ack at once: wait for a free connection rather than fail.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=10,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 1),  # fail fast: the API answers 503, consumers back off
        )
        self.redis = aioredis.Redis.from_pool(pool)
        self.shard_keys = [f"{prefix}:shard:{k}" for k in range(shards)]
        self.dlq_key = f"{prefix}:dlq"
        self.stats_key = f"{prefix}:stats"
        self.record_prefix = f"{prefix}:idem:"  # + id: its idempotency record
        self.callbacks_key = f"{prefix}:callbacks"
        self.record_ttl_s = record_ttl_s
        self.consumers = consumers
        self.claim_idle_s = claim_idle_s
        self.reclaim = reclaim
        self._publish_script = self.redis.register_script(_PUBLISH)
        self._to_publish: list[tuple[str, Message, str, asyncio.Future[Prior | None]]] = []
        self._publisher: asyncio.Task[None] | None = None
        self._backlog = 0
        self._published_since_refresh = 0
        # Publishing and measuring the backlog never overlap, so a message is counted
        # once: either in XLEN or in _published_since_refresh, never in both.
        self._count_lock = asyncio.Lock()
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            async with asyncio.timeout(TIMEOUT_S):
                await self.ensure_groups()
        except FAILURES as exc:
            raise BrokerDown(f"cannot use Redis at {redact(self.url)}: {exc}") from None
        self._refresher = asyncio.create_task(self._refresh_backlog())

    async def ensure_groups(self) -> None:
        for key in self.shard_keys:
            try:
                await self.redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def publish(self, msg: Message, again: str = "") -> Prior | None:
        key = self.shard_keys[shard_of(msg.stream, len(self.shard_keys))]
        done: asyncio.Future[Prior | None] = asyncio.get_running_loop().create_future()
        self._to_publish.append((key, msg, again, done))
        if self._publisher is None:
            self._publisher = asyncio.create_task(self._publish_batches())
        return await done

    async def _publish_batches(self) -> None:
        # One batch in flight at a time: requests arriving meanwhile share the next round
        # trip, so the per-message cost falls as the load rises.
        try:
            while self._to_publish:
                batch = self._to_publish[:PUBLISH_BATCH_MAX]
                del self._to_publish[:PUBLISH_BATCH_MAX]
                keys = [key for key, _msg, _again, _done in batch]
                records = [self.record_prefix + msg.id for _key, msg, _again, _done in batch]
                args: list[Any] = []
                for _key, msg, again, _done in batch:
                    args += [*fields_of(msg), msg.fingerprint, again]
                args.append(self.record_ttl_s)
                outcome: Exception | None = None
                priors: list[Any] = []
                try:
                    async with asyncio.timeout(PUBLISH_TIMEOUT_S), self._count_lock:
                        priors = await self._publish_script(
                            keys=[*keys, self.stats_key, *records], args=args
                        )
                        self._published_since_refresh += sum(
                            1
                            for (_k, msg, again, _d), prior in zip(batch, priors, strict=True)
                            if not prior or queue_again(Prior.decode(prior), msg.fingerprint, again)
                        )
                except FAILURES as exc:
                    outcome = BrokerDown(str(exc) or "Redis did not answer in time")
                except Exception as exc:  # never leave a request waiting forever
                    outcome = exc
                for n, (_key, _msg, _again, done) in enumerate(batch):
                    if done.done():  # the request was cancelled
                        continue
                    if outcome is None:
                        done.set_result(Prior.decode(priors[n]) if priors[n] else None)
                    else:
                        done.set_exception(outcome)
        finally:
            self._publisher = None

    def backlog(self) -> int:
        return self._backlog + self._published_since_refresh

    async def _refresh_backlog(self) -> None:
        # Polled, not read per request: the hot path stays one round trip.
        while True:
            await asyncio.sleep(BACKLOG_REFRESH_S)
            try:
                async with self._count_lock, asyncio.timeout(PUBLISH_TIMEOUT_S):
                    lengths = await self._lengths(self.shard_keys)
                    self._backlog = sum(lengths)
                    self._published_since_refresh = 0
            except FAILURES:
                continue

    async def _lengths(self, keys: Iterable[str]) -> list[int]:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.xlen(key)
        return await pipe.execute()

    async def snapshot(self) -> Snapshot:
        try:
            async with asyncio.timeout(TIMEOUT_S):
                raw = await self.redis.hgetall(self.stats_key)
                dlq, *shards = await self._lengths([self.dlq_key, *self.shard_keys])
        except FAILURES as exc:
            raise BrokerDown(str(exc)) from None
        counters = {k.decode(): float(v) for k, v in raw.items()}
        return Snapshot(counters, dlq, sum(shards))

    async def share_callbacks(self, book: CallbackBook, interval_s: float) -> None:
        """Runs until cancelled: every ``interval_s`` adds what ``book`` learned to the
        shared hash (field: [tenant, url], value: when) and learns everything in it."""
        while True:
            await asyncio.sleep(interval_s)
            mine = book.take_unshared()
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    if mine:
                        now = str(time.time_ns())
                        fields = {orjson.dumps(pair): now for pair in mine}
                        await self.redis.hset(self.callbacks_key, mapping=fields)
                    rows = await self.redis.hgetall(self.callbacks_key)
            except FAILURES:
                book.give_back(mine)
                continue
            for field, _when in sorted(rows.items(), key=lambda row: int(row[1])):
                tenant, url = orjson.loads(field)
                book.learn(tenant, url, shared=True)

    def source(self, index: int) -> RedisSource:
        return RedisSource(self, index)

    async def close(self) -> None:
        if self._refresher:
            await cancel_and_wait([self._refresher])
        await self.redis.aclose()


class RedisSource:
    """Consumer ``index``: reads its own shards, and reclaims entries idle too long anywhere.

    After a restart it first re-reads its own pending entries (same consumer name), so a
    killed consumer's messages go out again in order. Entries it holds unacknowledged are
    re-claimed to itself periodically, so only a dead consumer's entries look idle.
    """

    def __init__(self, broker: RedisBroker, index: int) -> None:
        self._b = broker
        self._r = broker.redis
        self._name = f"consumer-{index}"
        n = len(broker.shard_keys)
        self._owned = [k for k in range(n) if k % broker.consumers == index]
        # Without reclaiming, a restarted consumer skips its predecessor's pending list.
        self._history = {broker.shard_keys[k]: "0" for k in self._owned if broker.reclaim}
        self._unacked: dict[int, set[bytes]] = {k: set() for k in range(n)}
        self._shard_index = {key.encode(): k for k, key in enumerate(broker.shard_keys)}
        self._next_claim = time.monotonic() + broker.claim_idle_s / 2
        self._keepalive = asyncio.create_task(self._keep_claimed())
        self._down_logged = False

    async def fetch(self, count: int) -> list[Entry]:
        while True:
            try:
                async with asyncio.timeout(TIMEOUT_S + BLOCK_MS / 1000):
                    entries = await self._fetch_once(count)
                self._down_logged = False
                if entries:
                    return entries
            except ResponseError as exc:
                # The keys were deleted under us (NOGROUP, or UNBLOCKED while waiting).
                if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                    raise
                await self._b.ensure_groups()
            except FAILURES as exc:
                if not self._down_logged:
                    log.warning("%s: Redis unavailable (%r); retrying", self._name, exc)
                    self._down_logged = True
                await asyncio.sleep(0.5)

    async def _fetch_once(self, count: int) -> list[Entry]:
        if self._history:
            return await self._read_history(count)
        if self._b.reclaim and time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self._b.claim_idle_s / 2
            entries = await self._reclaim(count)
            if entries:
                return entries
        keys = {self._b.shard_keys[k]: ">" for k in self._owned}
        reply = await self._r.xreadgroup(GROUP, self._name, keys, count=count, block=BLOCK_MS)
        return self._entries(reply)

    async def _read_history(self, count: int) -> list[Entry]:
        reply = await self._r.xreadgroup(GROUP, self._name, dict(self._history), count=count)
        read = {key.decode(): rows for key, rows in reply}
        for key in list(self._history):
            rows = read.get(key)
            if rows:
                self._history[key] = rows[-1][0]
            else:
                del self._history[key]
        return self._entries(reply)

    async def _reclaim(self, count: int) -> list[Entry]:
        min_idle_ms = int(self._b.claim_idle_s * 1000)
        out: list[Entry] = []
        for k, key in enumerate(self._b.shard_keys):
            cursor: Any = "0-0"
            while len(out) < count:
                cursor, rows, _deleted = await self._r.xautoclaim(
                    key, GROUP, self._name, min_idle_ms, cursor, count=count
                )
                out += self._rows(k, rows)
                if cursor in (b"0-0", "0-0"):
                    break
        if out:
            log.warning("%s: reclaimed %d idle entries", self._name, len(out))
        return out

    def _entries(self, reply: Any) -> list[Entry]:
        out: list[Entry] = []
        for key, rows in reply or ():
            out += self._rows(self._shard_index[key], rows)
        return out

    def _rows(self, shard: int, rows: Sequence[tuple[bytes, Any]]) -> list[Entry]:
        out = []
        for ref, fields in rows:
            if not fields:  # deleted under us: already finished elsewhere
                continue
            self._unacked[shard].add(ref)
            out.append(Entry(shard, ref, message_of(fields)))
        return out

    async def _keep_claimed(self) -> None:
        while True:
            await asyncio.sleep(self._b.claim_idle_s / 3)
            for k, refs in self._unacked.items():
                key, ids = self._b.shard_keys[k], list(refs)
                for i in range(0, len(ids), 500):
                    try:
                        async with asyncio.timeout(TIMEOUT_S):
                            await self._r.xclaim(
                                key, GROUP, self._name, 0, ids[i : i + 500], justid=True
                            )
                    except FAILURES:
                        break

    async def ack(self, entries: Sequence[Entry], tally: Tally) -> None:
        by_shard: dict[int, list[bytes]] = {}
        for entry in entries:
            by_shard.setdefault(entry.shard, []).append(entry.ref)
        for attempt in range(3):
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    await self._ack_once(by_shard, tally)
                break
            except FAILURES as exc:
                if attempt == 2:
                    # Left pending: another consumer reclaims and delivers them again.
                    log.warning("%s: ack failed (%r); entries stay pending", self._name, exc)
                else:
                    await asyncio.sleep(0.2 * (attempt + 1))
        for k, refs in by_shard.items():
            self._unacked[k].difference_update(refs)

    async def _ack_once(self, by_shard: dict[int, list[bytes]], tally: Tally) -> None:
        # One transaction: the counters never disagree with what was acknowledged.
        pipe = self._r.pipeline(transaction=True)
        for k, refs in by_shard.items():
            pipe.xack(self._b.shard_keys[k], GROUP, *refs)
            pipe.xdel(self._b.shard_keys[k], *refs)
        for name, value in tally.fields().items():
            pipe.hincrby(self._b.stats_key, name, value)
        if tally.latency_sum:
            pipe.hincrbyfloat(self._b.stats_key, "lat_sum", tally.latency_sum)
        await pipe.execute()

    async def dead_letter(self, entry: Entry, error: str) -> None:
        msg = entry.message
        fields = dict(zip("isqctb", fields_of(msg), strict=True))
        fields.update(error=error, failed_at=rfc3339())
        for attempt in range(3):
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    await self._r.xadd(self._b.dlq_key, fields, maxlen=DLQ_MAX, approximate=True)
                return
            except FAILURES as exc:
                if attempt == 2:
                    log.warning("%s: DLQ write failed for one message: %r", self._name, exc)
                else:
                    await asyncio.sleep(0.2 * (attempt + 1))

    async def close(self) -> None:
        await cancel_and_wait([self._keepalive])
