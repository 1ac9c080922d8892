"""Start and stop the helper programs a run needs (collector, reference target).

Each program runs in its own session (process group) so that stopping it also stops
anything it started, and prints one line ``READY <url>`` on stdout once it serves.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


class ServiceError(RuntimeError):
    """A helper program failed to start; the message is one actionable line."""


class Service:
    """A running helper program: ``url`` once ready, ``stop()`` ends its whole group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        ready_timeout_s: float = 30.0,
    ) -> None:
        self.name = name
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )
        self.url = self._wait_ready(ready_timeout_s, log_path)

    @classmethod
    def python_module(cls, name: str, module: str, args: Sequence[str], **kwargs) -> Service:
        return cls(name, [sys.executable, "-m", module, *args], **kwargs)

    def _wait_ready(self, timeout_s: float, log_path: Path | None) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                for line in buf.splitlines():
                    if line.startswith(b"READY "):
                        return line.split(b" ", 1)[1].decode().strip()
            elif self.proc.poll() is not None:
                break
        self.stop()
        detail = _last_line(log_path) if log_path else ""
        raise ServiceError(
            f"{self.name} did not start"
            + (f": {detail}" if detail else f" within {timeout_s:.0f} s")
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the group, wait up to ``grace_s``, then SIGKILL what is left."""
        kill_group(self.proc, grace_s)
        if self.proc.stdout:
            self.proc.stdout.close()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kill_group(proc: subprocess.Popen, grace_s: float, first: int = signal.SIGTERM) -> None:
    """Send ``first`` to the process group of ``proc``; SIGKILL the group after ``grace_s``."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    if pgid is not None and proc.poll() is None:
        _signal_group(pgid, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    if pgid is not None:
        _signal_group(pgid, signal.SIGKILL)  # children may outlive the leader
    if proc.poll() is None:
        proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
