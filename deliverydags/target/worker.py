"""A consumer process of Redis mode: ``python -m deliverydags.target.worker INDEX ARGS...``.

ARGS are the target's own arguments. Started by the supervisor; exits 0 on SIGTERM/SIGINT
or when its parent is gone, leaving unfinished entries pending in Redis for a successor.
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

log = logging.getLogger(__name__)
PARENT_CHECK_S = 1.0


async def run(index: int, settings: Settings) -> int:
    assert settings.redis_url
    stop = stop_event()
    import signal as _sig
    def _dump():
        for t in asyncio.all_tasks():
            c = t.get_coro()
            out = ["TASK " + t.get_name() + " " + repr(t)[:80]]
            while c is not None:
                fr = getattr(c, "cr_frame", None) or getattr(c, "ag_frame", None) or getattr(c, "gi_frame", None)
                out.append(f"    {getattr(c, '__qualname__', c)} {fr.f_code.co_filename.split('/')[-1] if fr else None}:{fr.f_lineno if fr else None}")
                c = getattr(c, "cr_await", None) or getattr(c, "ag_await", None) or getattr(c, "gi_yieldfrom", None)
            print("\n".join(out), file=sys.stderr, flush=True)
    asyncio.get_running_loop().add_signal_handler(_sig.SIGUSR1, _dump)
    broker = RedisBroker(
        settings.redis_url,
        settings.stream_prefix,
        settings.shards,
        settings.consumers,
        settings.claim_idle_s,
    )
    faults = Faults(settings.faults)
    session = new_session()
    source = broker.source(index)
    consumer = asyncio.create_task(
        Consumer(source, settings, faults, Poster(session, settings.secret)).run()
    )
    orphan_watch = asyncio.create_task(_exit_with_parent(stop))
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
        await cancel_and_wait([consumer, orphan_watch, stopped])
        await source.close()
        await session.close()
        await broker.close()
        faults.close()


def _report_ready() -> None:
    # The supervisor reads this one line; anything printed later goes to stderr instead.
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


async def _exit_with_parent(stop: asyncio.Event) -> None:
    # If the target itself is SIGKILLed, no consumer may linger on its own.
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_S)
    stop.set()


def main(argv: list[str]) -> int:
    try:
        index = int(argv[0])
        settings = parse(argv[1:], os.environ)
    except (IndexError, ValueError):
        fail("usage: python -m deliverydags.target.worker INDEX TARGET-ARGS...")
    except SetupError as exc:
        fail(str(exc))
    setup_logging(f"consumer-{index}")
    return asyncio.run(run(index, settings))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
