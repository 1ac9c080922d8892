"""Stopping on SIGTERM/SIGINT, shared by the target process and its consumer processes."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_event() -> asyncio.Event:
    """An event set by the first SIGTERM/SIGINT; later ones are ignored.

    Stopping sends a process group SIGTERM and then each consumer another one; ignoring
    the repeats keeps shutdown clean (the sender escalates to SIGKILL if it must).
    """
    event = asyncio.Event()
    loop = asyncio.get_running_loop()

    def first_signal() -> None:
        event.set()
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)

    for sig in SIGNALS:
        loop.add_signal_handler(sig, first_signal)
    return event


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], within_s: float = 5.0) -> None:
    """Cancel ``tasks`` and wait until they are done, cancelling again as needed.

    A single cancel can be lost: Python 3.11's asyncio.wait_for (which redis-py uses
    to send commands) swallows a cancellation that lands as the command completes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    pending = {task for task in tasks if not task.done()}
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.2)
