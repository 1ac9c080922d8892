"""Logging to stderr (stdout is reserved for the READY line)."""

from __future__ import annotations

import logging
import sys


def setup_logging(role: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s {role} %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
