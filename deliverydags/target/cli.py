"""``python -m deliverydags.target``: parse, then serve until SIGTERM/SIGINT (exit 0)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from .config import SetupError, fail, parse
from .logs import setup_logging
from .server import serve


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse(sys.argv[1:] if argv is None else argv, os.environ)
        setup_logging("target")
        asyncio.run(serve(settings))
    except SetupError as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # before the signal handlers were in place
        pass
    return 0
