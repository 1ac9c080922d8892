"""A redis-server of the chaos run's own, on a free loopback port, that can be stopped
and started again for real (same port, same data dir, AOF fsynced on every write so a
restart keeps everything the target was told was stored)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from deliverydags.procs import child_env, popen
from deliverydags.run.runner import SetupError

START_TIMEOUT_S = 10.0


class RedisServerError(SetupError):
    """The server could not start or stop; the message is one actionable line."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``start()``/``stop()`` may be called repeatedly; ``close()`` stops it for good.

    Usable as a context manager. ``url`` stays the same across restarts."""

    def __init__(self, data_dir: Path, port: int | None = None, binary: str = "redis-server"):
        exe = shutil.which(binary)
        if exe is None:
            raise RedisServerError(f"{binary} not found on PATH; install redis-server")
        self.exe = exe
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        return [
            self.exe,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "redis.log",
        ]  # fmt: skip

    def start(self) -> None:
        if self.alive():
            return
        # Its own group (a Ctrl-C of the run is not sent to it twice); it dies with us,
        # also when restarted from a chaos hook's thread (see procs.popen).
        self.proc = popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env(),  # no secrets
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.ping():
                self.starts += 1
                return
            time.sleep(0.05)
        self._kill()
        log = self.data_dir / "redis.log"
        last = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise RedisServerError(
            f"redis-server on 127.0.0.1:{self.port} did not start"
            + (f": {last[0]}" if last else "")
        )

    def ping(self) -> bool:
        # One try, half a second: redis-py's default retries take seconds on a hung server.
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> None:
        """Stop it with ``sig`` (SIGTERM: a clean shutdown, the AOF already on disk)."""
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._kill()

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung server)."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        self.stop()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
