"""Start the collector as its own process, the way a run does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deliverydags import procs

SECRET_ENV = "DELIVERYDAGS_CALLBACK_SECRET"
LOG_FILE = "collector.log"


def start(
    *,
    out_dir: Path,
    listen: str = "127.0.0.1:0",
    env: Mapping[str, str] | None = None,
    discard: bool = False,
) -> procs.Service:
    """Run ``python -m deliverydags.collector`` writing into ``out_dir``; returns once READY.

    ``env`` is the child's whole environment (``None``: inherit this one); it must hold
    ``DELIVERYDAGS_CALLBACK_SECRET``. The log goes to ``out_dir/collector.log``; the URL to
    give the target is ``service.url + "/v1/receipts"``. Raises ``procs.ServiceError``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["--out", str(out_dir), "--listen", listen, *(["--discard"] if discard else [])]
    return procs.Service.python_module(
        "collector",
        "deliverydags.collector",
        args,
        env=dict(env) if env is not None else None,
        log_path=out_dir / LOG_FILE,
    )
