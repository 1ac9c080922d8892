"""Start the collector as its own process, the way a run does."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from deliverydags import config, procs

SECRET_ENV = config.CALLBACK_SECRET
LOG_FILE = "collector.log"


def start(
    *,
    out_dir: Path,
    listen: str = "127.0.0.1:0",
    env: Mapping[str, str] | None = None,
    discard: bool = False,
) -> procs.Service:
    """Run ``python -m deliverydags.collector`` writing into ``out_dir``; returns once READY.

    ``env`` holds its one secret, ``DELIVERYDAGS_CALLBACK_SECRET`` (``None``: taken from
    this process's environment), added to ``procs.child_env()``: nothing else of this
    process's environment reaches it. The log goes to ``out_dir/collector.log``; the URL to
    give the target is ``service.url + "/v1/receipts"``. Raises ``procs.ServiceError``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["--out", str(out_dir), "--listen", listen, *(["--discard"] if discard else [])]
    return procs.Service.python_module(
        "collector",
        "deliverydags.collector",
        args,
        env=procs.child_env(env if env is not None else _own_secret()),
        log_path=out_dir / LOG_FILE,
    )


def _own_secret() -> dict[str, str]:
    secret = os.environ.get(SECRET_ENV)
    return {SECRET_ENV: secret} if secret is not None else {}
