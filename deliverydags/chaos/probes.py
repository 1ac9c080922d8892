"""Reading the reference target's state from outside: its DLQ, its consumer processes;
signalling those processes safely."""

from __future__ import annotations

import signal
import urllib.request

import psutil
import redis
from prometheus_client.parser import text_string_to_metric_families

WORKER_MODULE = "deliverydags.target.worker"


def dlq_depth(
    redis_url: str | None = None, prefix: str = "dd", target_url: str | None = None
) -> int:
    """Entries in the target's DLQ: XLEN of ``<prefix>:dlq`` when ``redis_url`` is given,
    else the ``dlq_depth`` gauge of ``target_url``/metrics."""
    if redis_url:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            return int(client.xlen(f"{prefix}:dlq"))
        finally:
            client.close()
    if not target_url:
        raise ValueError("dlq_depth needs redis_url or target_url")
    with urllib.request.urlopen(target_url.rstrip("/") + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "dlq_depth":
            return int(family.samples[0].value)
    raise RuntimeError(f"{target_url}/metrics has no dlq_depth")


class ProcessGone(RuntimeError):
    """The process to signal has exited; ``str()`` is one line."""


def consumer_processes(target_pid: int) -> dict[int, psutil.Process]:
    """Consumer index -> the live consumer processes of the target ``target_pid`` (its
    children running ``python -m deliverydags.target.worker INDEX ...``)."""
    out: dict[int, psutil.Process] = {}
    for child in psutil.Process(target_pid).children():
        try:
            argv = child.cmdline()
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if WORKER_MODULE in argv:
            i = argv.index(WORKER_MODULE)
            out[int(argv[i + 1])] = child
    return out


def send_signal(proc: psutil.Process, sig: signal.Signals, what: str) -> None:
    """Signal ``proc``, never whatever process holds its pid now: psutil checks the pid's
    create time against the one seen when ``proc`` was found (os.kill(pid) does not)."""
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        raise ProcessGone(
            f"{what} (pid {proc.pid}) has exited: {sig.name} not sent to that pid"
        ) from None


def stream_prefix(target_args: tuple[str, ...] | list[str]) -> str:
    """The ``--stream-prefix`` in the target's flags (default "dd")."""
    args = list(target_args)
    for i, arg in enumerate(args):
        if arg == "--stream-prefix" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--stream-prefix="):
            return arg.split("=", 1)[1]
    return "dd"
