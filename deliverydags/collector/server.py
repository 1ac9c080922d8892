"""The collector's HTTP service: verify, number and durably record delivery receipts.

A POST is refused, in this order, before anything of its body is read (so a client
without the secret cannot make the collector hold or inflate one):

- ``X-Signature`` not of the exact form, or ``t`` outside the tolerance: 401;
- a ``Content-Encoding`` (bodies are plain JSON; nothing is ever decompressed): 415;
- a ``Content-Length`` over ``signing.MAX_BODY_BYTES``: 413.

Then at most ``READ_SLOTS`` bodies are read at once, each within ``READ_TIMEOUT_S``; a
chunked body stops being read at the cap (413), a slow one at the timeout (408). Then the
HMAC (401) and the receipts (400). A 401 is counted ``bad_signature``; 400, 408, 413 and
415 are ``malformed`` (the header passed, the body is not one the contract allows).
Every refusal is a line in rejected.ndjson and a count in /v1/stats.

Contract v1.1 tenants: ``POST /v1/receipts/<tenant>`` is that tenant's callback (same
secret, same checks); each of its receipts is recorded with ``"tenant"`` (a tenant of
more than 64 bytes is 404), so the ledger can tell a receipt that came to another
tenant's callback than its message's (``leaked``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path

import orjson
from aiohttp import hdrs, web

from deliverydags.collector.journal import Journal, JournalError
from deliverydags.collector.records import Malformed, encode, render_rejected, valid_tenant
from deliverydags.formats import RECEIPTS_FILE, REJECTED_FILE, signing
from deliverydags.formats.receipt_columns import ColumnWriter, discard

log = logging.getLogger("deliverydags.collector")

RECEIPTS_PATH = "/v1/receipts"
TENANT_RECEIPTS_PATH = RECEIPTS_PATH + "/{tenant}"  # contract v1.1: a tenant's callback
MAX_BODY_BYTES = signing.MAX_BODY_BYTES  # the reference target never sends more
READ_SLOTS = 16  # bodies read at once, each <= the cap (held twice while read() copies)
READ_TIMEOUT_S = 10.0  # a trickled body cannot hold a read slot for longer
SHUTDOWN_GRACE_S = 10.0


class Collector:
    """Request handlers plus the two journals (receipts and rejected POSTs)."""

    def __init__(self, out_dir: Path, secret: bytes) -> None:
        self._secret = secret
        self._receipts = Journal(out_dir / RECEIPTS_FILE)
        self._rejected = Journal(out_dir / REJECTED_FILE)
        # A restarted collector continues the run's numbering instead of repeating it.
        self._next_n = self._receipts.lines_at_open
        self.counts = {"bad_signature": 0, "malformed": 0}
        self._read_slots = asyncio.Semaphore(READ_SLOTS)
        # The ledger's fast columnar copy; only a collector that records the whole file
        # can vouch for one, so a restarted collector writes none.
        self._columns: ColumnWriter | None = None
        if self._receipts.lines_at_open:
            discard(out_dir)
        else:
            self._columns = ColumnWriter(out_dir)

    async def post_tenant_receipts(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not valid_tenant(tenant):
            return web.Response(status=404)
        return await self.post_receipts(request, tenant)

    async def post_receipts(self, request: web.Request, tenant: str | None = None) -> web.Response:
        signature = signing.parse(request.headers.get(signing.HEADER))
        if signature is None:
            return await self._refuse(request, "bad_signature", web.Response(status=401))
        if hdrs.CONTENT_ENCODING in request.headers:
            answer = web.Response(status=415, headers={hdrs.ACCEPT_ENCODING: "identity"})
            return await self._refuse(request, "malformed", answer)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return await self._refuse(request, "malformed", web.Response(status=413))
        try:
            async with self._read_slots, asyncio.timeout(READ_TIMEOUT_S):
                body = await request.read()  # raises past client_max_size (the cap)
        except web.HTTPRequestEntityTooLarge:
            return await self._refuse(request, "malformed", web.Response(status=413))
        except TimeoutError:
            return await self._refuse(request, "malformed", web.Response(status=408))
        # No await from here to append(): arrival time, number and file order agree.
        recv_ns = time.time_ns()
        if not signing.matches(self._secret, signature, body):
            return await self._reject(recv_ns, "bad_signature", web.Response(status=401))
        columns: tuple[list[str], list[bool]] = ([], [])
        try:
            lines, count = encode(body, self._next_n, recv_ns, columns, tenant)
        except Malformed as exc:
            answer = web.json_response({"error": str(exc)}, status=400, dumps=_dumps)
            return await self._reject(recv_ns, "malformed", answer)
        if count:
            if self._columns is not None:  # same order as the lines go to the journal
                self._add_columns(self._next_n, recv_ns, columns)
            self._next_n += count
            try:
                await self._receipts.append(lines, count)
            except JournalError as exc:
                # Not acknowledged, so the target retries; the ledger counts any duplicate.
                return web.json_response({"error": str(exc)}, status=503, dumps=_dumps)
        return web.Response(status=204)

    def _add_columns(self, first_n: int, recv_ns: int, cols: tuple[list[str], list[bool]]) -> None:
        """The copy is an optimisation: if it fails, drop it, never the POST."""
        assert self._columns is not None
        try:
            self._columns.add(first_n, recv_ns, *cols)
        except Exception:
            log.exception("columnar copy of the receipts failed; the ledger reads the ndjson")
            self._drop_columns()

    def _drop_columns(self) -> None:
        if self._columns is not None:
            with contextlib.suppress(Exception):
                self._columns.abandon()
            self._columns = None

    async def _refuse(
        self, request: web.Request, reason: str, answer: web.Response
    ) -> web.Response:
        """Refuse a POST whose body may be unread. A rest within the cap is left to aiohttp,
        which reads and drops it so the connection stays usable; a larger or chunked one
        closes the connection instead of being read."""
        declared = request.content_length
        if not request.content.is_eof() and (declared is None or declared > MAX_BODY_BYTES):
            answer.force_close()
        return await self._reject(time.time_ns(), reason, answer)

    async def _reject(self, recv_ns: int, reason: str, answer: web.Response) -> web.Response:
        self.counts[reason] += 1
        if self.counts[reason] == 1:
            log.warning("first POST rejected as %s (%d)", reason, answer.status)
        # If the file cannot be written the refusal still stands; /v1/stats keeps the count.
        with contextlib.suppress(JournalError):
            await self._rejected.append(render_rejected(recv_ns, reason), 1)
        return answer

    async def healthz(self, request: web.Request) -> web.Response:
        ok = self._receipts.healthy and self._rejected.healthy
        return web.json_response({"status": "ok" if ok else "failing"}, status=200 if ok else 503)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats_dict(), dumps=_dumps)

    def stats_dict(self) -> dict[str, int]:
        return {"receipts": self._receipts.lines_at_open + self._receipts.committed, **self.counts}

    async def close(self) -> None:
        try:
            self._receipts.close()
            self._rejected.close()
            # Sealed only once every receipt is durably in receipts.ndjson, and only if
            # no write failed (a failed write may have left lines nobody acknowledged).
            if self._columns is not None and self._receipts.healthy:
                try:
                    self._columns.seal(self._receipts.committed)
                    self._columns = None
                except Exception:
                    log.exception("could not seal the columnar copy of the receipts")
        finally:
            self._drop_columns()


async def _discard(request: web.Request) -> web.Response:
    await request.read()  # same network work as the real thing, nothing else
    return web.Response(status=204)


async def _discard_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "mode": "discard"})


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def build_app(collector: Collector | None) -> web.Application:
    """The app for ``collector``, or the discarding baseline when it is None."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    if collector is None:
        app.router.add_get("/healthz", _discard_healthz)
        app.router.add_post("/{path:.*}", _discard)
    else:
        app.router.add_get("/healthz", collector.healthz)
        app.router.add_get("/v1/stats", collector.stats)
        app.router.add_post(RECEIPTS_PATH, collector.post_receipts)
        app.router.add_post(TENANT_RECEIPTS_PATH, collector.post_tenant_receipts)
    return app


async def serve(out_dir: Path, host: str, port: int, secret: bytes, discard: bool) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight POSTs, fsync and return."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    collector = None if discard else Collector(out_dir, secret)
    runner = web.AppRunner(
        build_app(collector),
        access_log=None,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        auto_decompress=False,  # a compressed body is refused (415), never inflated
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=1024).start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        log.info("listening on %s:%d, out=%s%s", shown, bound_port, out_dir, " (discard)" * discard)
        print(f"READY http://{shown}:{bound_port}", flush=True)
        await stop.wait()
        log.info("stopping: finishing in-flight POSTs")
    finally:
        await runner.cleanup()  # stops listening, waits for running handlers
        if collector is not None:
            await collector.close()
            log.info("stopped: %s", collector.stats_dict())
