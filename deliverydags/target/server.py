"""The target process: API, broker, and consumers (tasks, or supervised processes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from .allowlist import NOTHING_ALLOWED
from .api import Api
from .broker import Broker, BrokerDown
from .config import Settings, SetupError
from .consumer import Consumer
from .database import Database
from .delivery import Poster, new_session
from .embedded import EmbeddedBroker
from .faults import Faults
from .lifecycle import cancel_and_wait, stop_event
from .metrics import Exposition
from .redisbroker import RedisBroker, redact
from .supervisor import Supervisor
from .tenants import CallbackBook

log = logging.getLogger(__name__)
TASK_RESTART_S = 1.0


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; raises SetupError when it cannot start."""
    stop = stop_event()

    try:
        faults = Faults(settings.faults)  # opened here so a bad --fault-log fails at start
    except OSError as exc:
        raise SetupError(f"cannot open --fault-log: {exc}") from None
    exposition = Exposition()
    broker = _broker(settings)
    try:
        await broker.start()
    except BrokerDown as exc:
        raise SetupError(str(exc)) from None
    try:
        db = await _database(settings, exposition)
    except SetupError:
        await broker.close()
        raise
    api = Api(settings, broker, exposition, db, faults)
    runner = web.AppRunner(api.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise SetupError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
    port = runner.addresses[0][1]

    if settings.redis_url:
        # Consumers are other processes with their own; this one logs the resend faults.
        consumers = Supervisor(settings, exposition.count_restart)
        exposition.watch_processes(consumers.pids)  # RSS of every consumer, for leaks
        await consumers.start()
        mode = f"Redis {redact(settings.redis_url)}, prefix {settings.stream_prefix!r}"
    else:
        consumers = _EmbeddedConsumers(settings, broker, faults)
        mode = "embedded queue"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    log.info("serving on %s:%d (%s, %d consumers)", host, port, mode, settings.consumers)
    print(f"READY http://{host}:{port}", flush=True)
    if not settings.callback_allow:  # not an error: said once, as the operator may mean it
        log.warning(NOTHING_ALLOWED)

    await stop.wait()
    log.info("stopping")
    await runner.cleanup()
    await consumers.stop()
    await broker.close()
    if db is not None:
        await db.close()
    faults.close()


async def _database(settings: Settings, exposition: Exposition) -> Database | None:
    """The optional Postgres dependency (--postgres-dsn), its figures in /metrics."""
    if settings.postgres is None:
        return None
    db = Database(settings.postgres, settings.stream_prefix)
    await db.start()
    exposition.registry.register(db)
    return db


def _broker(settings: Settings) -> Broker:
    if settings.redis_url:
        return RedisBroker(
            settings.redis_url,
            settings.stream_prefix,
            settings.shards,
            settings.consumers,
            settings.claim_idle_s,
            record_ttl_s=settings.idempotency_ttl_s,
        )
    return EmbeddedBroker(settings.shards, settings.consumers, settings.idempotency_ttl_s)


class _EmbeddedConsumers:
    """Consumer tasks sharing one HTTP session; a crashed one is replaced by a fresh one."""

    def __init__(self, settings: Settings, broker: Broker, faults: Faults) -> None:
        self._session = new_session()
        poster = Poster(self._session, settings.secret)
        book = CallbackBook()  # every tenant's callbacks, whichever consumer saw them

        def new_consumer(i: int) -> Consumer:
            return Consumer(broker.source(i), settings, faults, poster, book)

        self._tasks = [
            asyncio.create_task(self._keep_running(lambda i=i: new_consumer(i)))
            for i in range(settings.consumers)
        ]

    @staticmethod
    async def _keep_running(new_consumer: Callable[[], Consumer]) -> None:
        while True:
            try:
                await new_consumer().run()
            except Exception:
                # Unlike a consumer process, its in-memory entries are gone with it.
                log.exception("consumer task crashed; restarting")
                await asyncio.sleep(TASK_RESTART_S)

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        await self._session.close()
