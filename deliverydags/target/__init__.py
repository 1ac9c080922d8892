"""The reference target: a small messaging service implementing contract v1 and its v1.1
parts (batch send, payload digest, tenants, idempotent resend).

Run it with ``python -m deliverydags.target --help``; from Python, ``start()`` launches it
as a separate process and returns once it serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from deliverydags import procs

from .config import REDIS_URL_ENV  # not argv: the URL may carry a password

LOG_FILE = "target.log"


def start(
    *,
    out_dir: Path,
    redis_url: str | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> procs.Service:
    """Start the target (logs in ``out_dir/target.log``); ``env`` holds its secrets (token,
    callback secret, PGPASSWORD with ``--postgres-dsn``), added to ``procs.child_env()``:
    nothing else of this process's environment reaches it.

    Raises ``procs.ServiceError`` with the target's last log line when it cannot start.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    own = {**(env or {}), **({REDIS_URL_ENV: redis_url} if redis_url else {})}
    return procs.Service.python_module(
        "target",
        "deliverydags.target",
        list(extra_args),
        env=procs.child_env(own),
        log_path=out_dir / LOG_FILE,
    )


__all__ = ["LOG_FILE", "REDIS_URL_ENV", "start"]
