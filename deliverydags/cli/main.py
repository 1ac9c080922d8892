"""`deliverydags` command line. Exit codes: 0 gates held, 1 a gate failed, 2 usage or setup
error (one line on stderr), 130 interrupted (result written with "status": "aborted")."""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path

import orjson

from deliverydags import config
from deliverydags.cli.history import COMMANDS as ANALYSIS_COMMANDS
from deliverydags.cli.history import add_subcommands as add_analysis_commands
from deliverydags.cli.history import dispatch as run_analysis
from deliverydags.procs import ServiceError
from deliverydags.run.k6 import K6Error
from deliverydags.run.runner import Secrets, SetupError, new_run_id, run_check
from deliverydags.run.settings import ConfigError, Gates, RunSettings, parse_deadlines
from deliverydags.run.summary import markdown

EXIT_PASSED, EXIT_GATE_FAILED, EXIT_SETUP, EXIT_ABORTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every usage error
        self.exit(EXIT_SETUP, f"deliverydags: {message} (see --help)\n")


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one check against a target and judge it")
    p.add_argument("scenario", help="a script under k6/ (message_soak) or a path to your .js")
    p.add_argument(
        "--target-url", help="the service under test; default: start the reference target"
    )
    p.add_argument("--rate", type=float, required=True, help="messages per second")
    p.add_argument("--duration", type=float, required=True, help="seconds of load")
    p.add_argument(
        "--deadlines", default="30,300,900", help="seconds, increasing (default 30,300,900)"
    )
    p.add_argument("--json", type=Path, help="write the result JSON here")
    p.add_argument(
        "--work-dir",
        type=Path,
        help="run files go below here (default: $DELIVERYDAGS_DATA_DIR/runs, else data/runs)",
    )
    p.add_argument("--payload-bytes", type=int, default=256)
    p.add_argument(
        "--redis-url", help="reference target only: use this Redis instead of the embedded queue"
    )
    p.add_argument(
        "--target-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="reference target only: extra flag, e.g. --target-arg=--fault-drop=0.01",
    )
    p.add_argument("--variants", default="", help="A/B split, e.g. llm:0.5,template:0.5")
    p.add_argument("--max-lost", type=int, default=0)
    p.add_argument("--max-failed", type=int, default=0)
    p.add_argument("--p95-ms", type=float, default=100.0)
    p.add_argument("--max-error-rate", type=float, default=0.001)


def main(argv: list[str] | None = None) -> int:
    # Dagster's beta/preview notices are for developers, not for someone running a check.
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", message=".*(beta|preview).*")
    parser = _Parser(prog="deliverydags", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    d = sub.add_parser("demo", help="materialize today's message_soak partition on SQLite storage")
    d.add_argument("--rate", type=float, default=100.0)
    d.add_argument("--duration", type=float, default=60.0)
    add_analysis_commands(sub)
    args = parser.parse_args(argv)
    # SIGTERM ends a run like Ctrl-C: the load stops and the result says "aborted". SIGINT
    # too, even when started with it ignored (a shell's background job): Python then
    # installs no handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.command == "run":
            return _run(args)
        if args.command in ANALYSIS_COMMANDS:
            return run_analysis(args)
        from deliverydags.defs.demo import run_demo

        return run_demo(rate=args.rate, duration_s=args.duration)
    except (ConfigError, SetupError, K6Error, ServiceError) as exc:
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


def _run(args: argparse.Namespace) -> int:
    settings = RunSettings(
        scenario=args.scenario,
        target_url=args.target_url,
        rate=args.rate,
        duration_s=args.duration,
        deadlines_s=parse_deadlines(args.deadlines),
        payload_bytes=args.payload_bytes,
        variants=args.variants,
        collector_addr=config.env(config.COLLECTOR_ADDR) or config.DEFAULT_COLLECTOR_ADDR,
        collector_url=config.env(config.COLLECTOR_URL),
        redis_url=args.redis_url or config.env(config.REDIS_URL),
        target_args=tuple(args.target_arg),
        gates=Gates(args.max_lost, args.max_failed, args.p95_ms, args.max_error_rate),
    )
    creds = Secrets(config.env(config.TARGET_TOKEN), config.env(config.CALLBACK_SECRET))
    run_dir = (args.work_dir or config.data_dir() / "runs").resolve() / new_run_id()
    result = run_check(
        settings, creds, run_dir, log=lambda m: print(m, file=sys.stderr, flush=True)
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(markdown(result))
    print(f"\nfull result: {run_dir / 'result.json'}")
    if result["status"] == "aborted":
        return EXIT_ABORTED
    return EXIT_PASSED if result["status"] == "passed" else EXIT_GATE_FAILED


if __name__ == "__main__":
    sys.exit(main())
