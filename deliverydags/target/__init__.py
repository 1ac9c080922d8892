"""The reference target: a small messaging service implementing contract v1.

Run it with ``python -m deliverydags.target --help``; from Python, ``start()`` launches it
as a separate process and returns once it serves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import procs

LOG_FILE = "target.log"


def start(
    *,
    out_dir: Path,
    redis_url: str | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> procs.Service:
    """Start the target (logs in ``out_dir/target.log``); ``env`` adds to os.environ.

    Raises ``procs.ServiceError`` with the target's last log line when it cannot start.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [*(["--redis-url", redis_url] if redis_url else []), *extra_args]
    return procs.Service.python_module(
        "target",
        "deliverydags.target",
        args,
        env={**os.environ, **(env or {})},
        log_path=out_dir / LOG_FILE,
    )


__all__ = ["LOG_FILE", "start"]
