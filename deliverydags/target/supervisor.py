"""Runs the consumer processes of Redis mode and restarts any that dies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from .config import Settings
from .lifecycle import cancel_and_wait

log = logging.getLogger(__name__)

RESTART_MIN_S = 0.2
RESTART_MAX_S = 5.0
STABLE_S = 10.0  # a consumer that ran this long restarts without backoff
READY_TIMEOUT_S = 20.0


class Supervisor:
    def __init__(self, settings: Settings, on_restart: Callable[[], None]) -> None:
        self._s = settings
        self._on_restart = on_restart
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.returncode is None]

    async def start(self) -> None:
        """Start every consumer; returns once each reported ready (or the wait timed out)."""
        await asyncio.gather(*(self._spawn(i) for i in range(self._s.consumers)))
        self._watchers = [asyncio.create_task(self._watch(i)) for i in range(self._s.consumers)]

    async def _spawn(self, index: int) -> None:
        # Same argv as ours; secrets travel in the inherited environment, never in argv.
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "deliverydags.target.worker",
            str(index),
            str(os.getpid()),
            *self._s.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # one line, READY; never our stdout
        )
        self._procs[index] = proc
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.strip() != b"READY":
            log.warning("consumer %d did not report ready", index)

    async def _watch(self, index: int) -> None:
        delay = RESTART_MIN_S
        while True:
            started = time.monotonic()
            code = await self._procs[index].wait()
            if self._stopping:
                return
            if time.monotonic() - started > STABLE_S:
                delay = RESTART_MIN_S
            log.warning("consumer %d exited with %d; restarting in %.1f s", index, code, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            delay = min(delay * 2, RESTART_MAX_S)
            await self._spawn(index)
            self._on_restart()

    async def stop(self, grace_s: float = 5.0) -> None:
        self._stopping = True
        await cancel_and_wait(self._watchers)
        live = [p for p in self._procs.values() if p.returncode is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in live]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=grace_s)
            for proc in live:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            if pending:
                await asyncio.wait(pending)
