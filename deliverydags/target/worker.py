"""A consumer process of Redis mode.

``python -m deliverydags.target.worker INDEX PARENT_PID ARGS...``, ARGS being the target's
own arguments. Started by the supervisor; exits 0 on SIGTERM/SIGINT or when its parent is
gone, leaving unfinished entries pending in Redis for a successor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from .config import Settings, SetupError, fail, parse
from .consumer import Consumer
from .delivery import Poster, new_session
from .faults import Faults
from .lifecycle import cancel_and_wait, stop_event
from .logs import setup_logging
from .redisbroker import RedisBroker
from .tenants import CallbackBook

log = logging.getLogger(__name__)
PARENT_CHECK_S = 1.0
BOOK_SHARE_S = 0.2


async def run(index: int, parent: int, settings: Settings) -> int:
    assert settings.redis_url
    stop = stop_event()
    broker = RedisBroker(
        settings.redis_url,
        settings.stream_prefix,
        settings.shards,
        settings.consumers,
        settings.claim_idle_s,
        reclaim=settings.reclaim,
    )
    faults = Faults(settings.faults)
    session = new_session()
    source = broker.source(index)
    book = CallbackBook()
    consumer = asyncio.create_task(
        Consumer(source, settings, faults, Poster(session, settings.secret), book).run()
    )
    helpers = [asyncio.create_task(_exit_with_parent(parent, stop))]
    if settings.faults.rate("leak"):  # another tenant's callback may be another's to see
        helpers.append(asyncio.create_task(broker.share_callbacks(book, BOOK_SHARE_S)))
    _report_ready()
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([consumer, stopped], return_when=asyncio.FIRST_COMPLETED)
        if consumer.done() and not consumer.cancelled() and consumer.exception():
            # A bug: exit non-zero and let the supervisor start a fresh process.
            log.error("consumer crashed", exc_info=consumer.exception())
            return 1
        return 0
    finally:
        await cancel_and_wait([consumer, *helpers, stopped])
        await source.close()
        await session.close()
        await broker.close()
        faults.close()


def _report_ready() -> None:
    # The supervisor reads this one line; anything printed later goes to stderr instead.
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


async def _exit_with_parent(parent: int, stop: asyncio.Event) -> None:
    # If the target itself is SIGKILLed, no consumer may linger on its own. The parent's
    # pid comes from the parent: it may be dead before this process gets to look.
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_S)
    stop.set()


def main(argv: list[str]) -> int:
    try:
        index, parent = int(argv[0]), int(argv[1])
        settings = parse(argv[2:], os.environ)
    except (IndexError, ValueError):
        fail("usage: python -m deliverydags.target.worker INDEX PARENT_PID TARGET-ARGS...")
    except SetupError as exc:
        fail(str(exc))
    setup_logging(f"consumer-{index}")
    return asyncio.run(run(index, parent, settings))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
