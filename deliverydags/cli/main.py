"""`deliverydags` command line. Exit codes: 0 checks held, 1 a check failed, 2 usage or setup
error (one line on stderr), 130 interrupted (result written with "status": "aborted")."""

from __future__ import annotations

import argparse
import signal
import sys
import warnings

from deliverydags import config
from deliverydags.cli import run
from deliverydags.cli.history import COMMANDS as ANALYSIS_COMMANDS
from deliverydags.cli.history import add_subcommands as add_analysis_commands
from deliverydags.cli.history import dispatch as run_analysis
from deliverydags.cli.scenarios import print_catalog
from deliverydags.run.runner import SETUP_ERRORS

EXIT_SETUP, EXIT_ABORTED = 2, run.EXIT_ABORTED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every usage error
        self.exit(EXIT_SETUP, f"deliverydags: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    # Dagster's beta/preview notices are for developers, not for someone running a check.
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", message=".*(beta|preview).*")
    parser = _Parser(prog="deliverydags", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run.add_parser(sub, _Parser)
    d = sub.add_parser("demo", help="materialize today's message_soak partition on SQLite storage")
    d.add_argument("--rate", type=float, default=100.0)
    d.add_argument("--duration", type=float, default=60.0)
    sub.add_parser("scenarios", help="the scenario catalog as markdown (docs/scenarios.md)")
    add_analysis_commands(sub)
    args = parser.parse_args(run.script_as_soak(sys.argv[1:] if argv is None else argv))
    # SIGTERM ends a run like Ctrl-C: the load stops and the result says "aborted". SIGINT
    # too, even when started with it ignored (a shell's background job): Python then
    # installs no handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.command == "run":
            return run.run(args)
        if args.command == "scenarios":
            return print_catalog()
        if args.command in ANALYSIS_COMMANDS:
            return run_analysis(args)
        from deliverydags.defs.demo import run_demo

        return run_demo(rate=args.rate, duration_s=args.duration)
    except SETUP_ERRORS as exc:
        print(f"deliverydags: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        print("deliverydags: interrupted", file=sys.stderr)
        return EXIT_ABORTED
    except Exception as exc:  # never exit 1 (a verdict) for a crash, nor a traceback wall
        if config.is_set(config.DEBUG):
            raise
        print(
            f"deliverydags: unexpected {type(exc).__name__}: {_one_line(exc)} "
            "(DELIVERYDAGS_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_SETUP


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500] or "no message"


if __name__ == "__main__":
    sys.exit(main())
