"""Stopping on SIGTERM/SIGINT, shared by the target process and its consumer processes."""

from __future__ import annotations

import asyncio
import signal

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
