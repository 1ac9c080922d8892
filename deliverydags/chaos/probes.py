"""Reading the reference target's state from outside: its DLQ, its consumer processes."""

from __future__ import annotations

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


def consumer_pids(target_pid: int) -> dict[int, int]:
    """Consumer index -> pid of the live consumer processes of the target ``target_pid``
    (its children running ``python -m deliverydags.target.worker INDEX ...``)."""
    out: dict[int, int] = {}
    for child in psutil.Process(target_pid).children():
        try:
            argv = child.cmdline()
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if WORKER_MODULE in argv:
            i = argv.index(WORKER_MODULE)
            out[int(argv[i + 1])] = child.pid
    return out


def stream_prefix(target_args: tuple[str, ...] | list[str]) -> str:
    """The ``--stream-prefix`` in the target's flags (default "dd")."""
    args = list(target_args)
    for i, arg in enumerate(args):
        if arg == "--stream-prefix" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--stream-prefix="):
            return arg.split("=", 1)[1]
    return "dd"
