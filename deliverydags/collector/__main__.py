"""``python -m deliverydags.collector --out DIR [--listen HOST:PORT] [--discard]``.

Prints ``READY http://host:port`` on stdout once serving; everything else goes to stderr.
Exit status: 0 after SIGTERM/SIGINT, 2 for a usage or setup error (one line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from deliverydags.collector.launcher import SECRET_ENV
from deliverydags.collector.server import serve


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too); an empty host means 127.0.0.1, never all interfaces."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen must be HOST:PORT, not {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deliverydags.collector",
        description=f"Receive signed delivery receipts (secret from ${SECRET_ENV}).",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for the ndjson files")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default: free port)")
    parser.add_argument(
        "--discard", action="store_true", help="answer 204 to every POST, record nothing"
    )
    args = parser.parse_args(argv)

    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        print(f"collector: {SECRET_ENV} is not set", file=sys.stderr)
        return 2
    try:
        host, port = parse_listen(args.listen)
        args.out.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2

    fmt = "%(asctime)s %(name)s %(levelname)s %(message)s"
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=fmt)
    try:
        asyncio.run(serve(args.out, host, port, secret.encode(), args.discard))
    except OSError as exc:  # cannot bind or cannot open the files
        print(f"collector: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a SIGINT before the handlers were installed
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
