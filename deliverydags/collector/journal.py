"""Append-only NDJSON file with group commit.

Callers append a buffer and await a future that resolves once the buffer is written and
fdatasync'ed. While one write+fdatasync runs (in a worker thread, so the event loop keeps
serving), later appends pile up and go to disk together in the next one: under load many
POSTs share a single fdatasync, which keeps both throughput and the ack latency up.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)


class JournalError(OSError):
    """The journal could not write; it refuses all later appends (the file may be torn)."""


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines_at_open = _recover(path)
        self.committed = 0  # records appended and durably on disk since open
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._chunks: list[bytes] = []
        self._waiters: list[tuple[asyncio.Future[None], int]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._failed: OSError | None = None
        self._io = ThreadPoolExecutor(1, thread_name_prefix=f"journal-{path.name}")

    @property
    def healthy(self) -> bool:
        return self._failed is None

    def append(self, data: bytes, records: int) -> asyncio.Future[None]:
        """Queue ``data`` (whole lines); the returned future resolves once it is on disk."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if self._failed is not None:
            done.set_exception(JournalError(f"{self.path.name}: earlier write failed"))
            return done
        self._chunks.append(data)
        self._waiters.append((done, records))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return done

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._chunks:
                chunks, waiters = self._chunks, self._waiters
                self._chunks, self._waiters = [], []
                try:
                    await loop.run_in_executor(self._io, self._write_sync, b"".join(chunks))
                except OSError as exc:
                    log.error("write to %s failed: %s", self.path, exc)
                    self._failed = exc
                    # Also those queued meanwhile: nothing after a torn write may be acked.
                    waiters += self._waiters
                    self._chunks, self._waiters = [], []
                    for done, _ in waiters:
                        if not done.done():
                            done.set_exception(JournalError(f"{self.path.name}: {exc}"))
                    continue
                for done, records in waiters:
                    self.committed += records
                    if not done.done():
                        done.set_result(None)
        finally:
            self._flusher = None

    def _write_sync(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fdatasync(self._fd)

    async def close(self) -> None:
        """Let queued writes finish, fsync, close the file."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._io.shutdown(wait=True)


def _recover(path: Path) -> int:
    """Count the whole lines of an existing file; cut a torn last line (never acknowledged)."""
    try:
        f = path.open("r+b")
    except FileNotFoundError:
        return 0
    with f:
        lines, size, end = 0, 0, 0  # end: just past the last newline
        for chunk in iter(lambda: f.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            last = chunk.rfind(b"\n")
            if last >= 0:
                end = size + last + 1
            size += len(chunk)
        if end != size:
            log.warning("%s: cutting a torn last line (%d bytes)", path.name, size - end)
            f.truncate(end)
    return lines
