"""Start and stop the helper programs a run needs (collector, reference target, k6, ...).

Each program runs in its own session (process group) so that stopping it also stops
anything it started; a ``Service`` prints one line ``READY <url>`` on stdout once it serves.

Every child started through ``popen`` dies with this process, even when it is SIGKILLed:
the child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG). The kernel
sends it when the *thread* that forked the child ends, so children started from other
threads than the main one (a Dagster step, a test, a chaos hook) are forked by one
long-lived spawner thread. A Dagster step of the multiprocess executor is a process of
its own that would outlive a SIGKILLed run process (and keep its children alive), so a
multiprocessing child that starts children ends itself when its parent is gone. Each
child is also recorded (pid, start time) in a file per owner process, so that
``sweep_leftovers`` can end what a killed run left behind where the death signal did not
act (not Linux, or a child that was not started here).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from queue import SimpleQueue

import orjson
import psutil

# What any child may inherit (plus every LC_*): no secrets; a Python child also needs its
# virtualenv and path.
ENV_ALLOWLIST = ("PATH", "HOME", "LANG", "TMPDIR", "TZ", "VIRTUAL_ENV", "PYTHONPATH")
PR_SET_PDEATHSIG = 1
PARENT_CHECK_S = 0.5
_prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None


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
        self.proc = popen(argv, stdout=subprocess.PIPE, stderr=self._log, env=env)
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


def child_env(own: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child's whole environment: the allowlisted variables of ours plus ``own`` (its
    secrets and settings). Nothing else of ours is passed on."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWLIST or k.startswith("LC_")}
    env.update(own or {})
    return env


def popen(argv: Sequence[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` in a new session, for a child that dies with this process."""
    parent = os.getpid()

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            list(argv), start_new_session=True, preexec_fn=_die_with(parent), **kwargs
        )

    _exit_with_multiprocessing_parent()
    proc = start() if threading.current_thread() is threading.main_thread() else _spawn(start)
    _record(proc)
    return proc


_watching: int | None = None  # the pid that watches its parent (a fork must watch anew)


def _exit_with_multiprocessing_parent() -> None:
    global _watching
    parent = multiprocessing.parent_process()
    if parent is None or _watching == os.getpid():
        return
    _watching = os.getpid()

    def watch() -> None:
        # The parent's pid, not its sentinel pipe: that closes when the parent merely
        # drops its Process object. Compared with the pid multiprocessing was given, so a
        # parent dead before this thread started is seen too.
        while os.getppid() == parent.pid:
            time.sleep(PARENT_CHECK_S)
        os.kill(os.getpid(), signal.SIGKILL)  # and our children die with us

    threading.Thread(target=watch, name="dd-parent-watch", daemon=True).start()


def _die_with(parent: int) -> Callable[[], None] | None:
    if _prctl is None:
        return None

    def preexec() -> None:  # in the child, between fork and exec
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os._exit(1)

    return preexec


_spawner: tuple[int, SimpleQueue] | None = None
_spawner_lock = threading.Lock()


def _spawn(start: Callable[[], subprocess.Popen]) -> subprocess.Popen:
    """Run ``start`` on the spawner thread, which lives as long as this process."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():  # none yet, or we were forked
            jobs: SimpleQueue = SimpleQueue()
            threading.Thread(target=_serve, args=(jobs,), name="dd-spawner", daemon=True).start()
            _spawner = (os.getpid(), jobs)
        jobs = _spawner[1]
    done: Future = Future()
    jobs.put((start, done))
    return done.result()


def _serve(jobs: SimpleQueue) -> None:
    while True:
        start, done = jobs.get()
        try:
            done.set_result(start())
        except BaseException as exc:
            done.set_exception(exc)


def registry_dir() -> Path:
    """Where each process records the children it started (one file per owner)."""
    return Path(tempfile.gettempdir()) / f"deliverydags-{os.getuid()}" / "children"


def _identity(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).create_time()
    return None


def _record(proc: subprocess.Popen) -> None:
    with contextlib.suppress(OSError):  # a registry we cannot write costs only the sweep
        me = os.getpid()
        folder = registry_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = orjson.dumps({"pid": proc.pid, "create_time": _identity(proc.pid)})
        with open(folder / f"{me}-{_identity(me)}.ndjson", "ab") as f:
            f.write(line + b"\n")


def sweep_leftovers(log: Callable[[str], None], folder: Path | None = None) -> list[int]:
    """Kill the recorded children of owner processes that no longer run (a killed run's
    leftovers) with everything under them; return their pids. Live owners' are kept."""
    folder = folder or registry_dir()
    killed: list[int] = []
    for path in sorted(folder.glob("*.ndjson")):
        owner, _, created = path.stem.partition("-")
        with contextlib.suppress(ValueError):
            if str(_identity(int(owner))) == created:
                continue  # its owner still runs (maybe a run beside this one)
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(ValueError, KeyError, psutil.Error):
                rec = orjson.loads(line)
                proc = psutil.Process(rec["pid"])
                if proc.create_time() != rec["create_time"]:
                    continue  # the pid now belongs to another process
                for p in [*proc.children(recursive=True), proc]:
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                        killed.append(p.pid)
        path.unlink(missing_ok=True)
    if killed:
        pids = " ".join(map(str, killed))
        log(f"killed {len(killed)} processes left running by an earlier killed run: {pids}")
    return killed


def kill_group(proc: subprocess.Popen, grace_s: float, first: int = signal.SIGTERM) -> None:
    """Send ``first`` to the process group of ``proc``; SIGKILL the group after ``grace_s``.

    ``proc`` leads its own group (``start_new_session``), so the group id is its pid, known
    even after the leader was reaped while members of its group still run."""
    if proc.poll() is None:
        _signal_group(proc.pid, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    _signal_group(proc.pid, signal.SIGKILL)  # children may outlive the leader
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
