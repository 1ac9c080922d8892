"""`deliverydags history import | trend | ab | gate`: the nightly review from the shell.

Every command works on the results store in ``--data-dir`` (default: $DELIVERYDAGS_DATA_DIR
or ``data``, as the Dagster resource). Exit codes: 0 fine, 1 the finding the command
exists for (an unacknowledged regression, a rollback), 2 usage or setup error (one line on
stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from deliverydags import config
from deliverydags.config import SOAK_SCENARIO
from deliverydags.review.phase_gate import ROLLOUTS  # the --rollout choices; no scipy

if TYPE_CHECKING:
    from deliverydags.history.store import ResultsStore
    from deliverydags.stats.slo import SLOConfig

# The statistics stack (numpy, scipy, statsmodels, duckdb) is imported by the command
# that needs it, so `deliverydags run` starts as fast as before.
COMMANDS = ("history", "trend", "ab", "gate")
EXIT_OK, EXIT_FINDING, EXIT_SETUP = 0, 1, 2


class UsageError(ValueError):
    """Bad arguments or nothing to work on; one line for stderr."""


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register the review commands on the `deliverydags` parser's subparsers."""
    h = sub.add_parser("history", help="import recorded results and k6 summaries")
    hsub = h.add_subparsers(dest="history_command", required=True, parser_class=type(h))
    imp = hsub.add_parser("import", help="store result / k6 summary JSON files as past nights")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    imp.add_argument(
        "--night",
        help="YYYY-MM-DD for k6 summaries (default: date in the file "
        "name, else the file's mtime, UTC); results use their started_at",
    )
    _common(imp)

    t = sub.add_parser("trend", help="regressions over the stored history; exit 1 if unacked")
    t.add_argument("--json", type=Path, metavar="OUT", help="write the report here")
    t.add_argument(
        "--ack",
        action="append",
        default=[],
        metavar="METRIC:NIGHT",
        help="acknowledge a regression (repeatable), e.g. latency_ms.p95:2025-03-04",
    )
    t.add_argument("--note", default="", help="why it is acknowledged (stored with the ack)")
    _common(t)

    a = sub.add_parser("ab", help="compare two arms' delivery (A control, B variant)")
    a.add_argument("--a", required=True, metavar="SENT:DELIVERED", type=_arm)
    a.add_argument("--b", required=True, metavar="SENT:DELIVERED", type=_arm)
    a.add_argument("--split", type=float, default=0.5, help="planned share of A (default 0.5)")
    a.add_argument("--alpha", type=float, default=0.05)
    a.add_argument("--mde", type=float, default=0.01, help="smallest drop to detect (absolute)")
    a.add_argument("--power", type=float, default=0.8)
    a.add_argument("--json", type=Path, metavar="OUT")

    g = sub.add_parser("gate", help="the rollout phase and tonight's decision; exit 1 rollback")
    g.add_argument("--json", type=Path, metavar="OUT")
    g.add_argument("--rollout", choices=sorted(ROLLOUTS), default="delivery")
    g.add_argument("--night", help="YYYY-MM-DD (default: the latest stored night)")
    g.add_argument(
        "--record",
        action="store_true",
        help="record the decision in the phase history (as the nightly asset does)",
    )
    g.add_argument("--slo", type=Path, metavar="SLO_YAML", help="Keptn slo.yaml to score with")
    _common(g)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="results store folder (default: $DELIVERYDAGS_DATA_DIR or data)",
    )
    p.add_argument("--scenario", default=SOAK_SCENARIO)


def _arm(text: str) -> tuple[int, int]:
    sent, sep, delivered = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(sent), int(delivered)
    except ValueError:
        msg = f"expected SENT:DELIVERED, e.g. 10000:9990, not {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def dispatch(args: argparse.Namespace) -> int:
    """Run a review command; errors become one line on stderr and exit 2."""
    from deliverydags.history.imports import HistoryImportError
    from deliverydags.history.store import StoreLockedError

    try:
        if args.command == "history":
            return _history_import(args)
        if args.command == "trend":
            return _trend(args)
        if args.command == "ab":
            return _ab(args)
        return _gate(args)
    except (UsageError, HistoryImportError, StoreLockedError) as exc:
        print(f"deliverydags {args.command}: {exc}", file=sys.stderr)
        return EXIT_SETUP


def _store(args: argparse.Namespace) -> ResultsStore:
    from deliverydags.history.store import ResultsStore

    # A locked store is one line at once, not a minute's wait; half a second still lets a
    # run's own write (milliseconds) finish first.
    return ResultsStore(
        Path(args.data_dir or config.data_dir()) / "results.duckdb", lock_wait_s=0.5
    )


def _write(path: Path | None, doc: Any) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def _history_import(args: argparse.Namespace) -> int:
    from deliverydags.history.imports import read_all, store_recorded

    store = _store(args)
    records = read_all(args.paths, args.night, args.scenario)
    if not records:
        raise UsageError("no .json files found in " + ", ".join(map(str, args.paths)))
    before = {s: {n for n, _ in store.nights(s)} for s in {r.scenario for r in records}}
    store_recorded(store, records)
    replaced = 0
    for r in sorted(records, key=lambda r: (r.night, r.scenario)):
        again = r.night in before[r.scenario]
        replaced += again
        note = " (replaced)" if again else ""
        print(
            f"{r.night}  {r.scenario:<14} {r.kind:<10} dated by {r.night_from:<10} {r.path}{note}"
        )
    print(f"imported {len(records)} night(s), {replaced} replaced, into {store.path}")
    return EXIT_OK


def _trend(args: argparse.Namespace) -> int:
    from deliverydags.review.trend import trend_overview

    store = _store(args)
    if store.count(args.scenario) == 0:
        raise UsageError(f"no stored results of {args.scenario} in {store.path}")
    report = trend_overview(store, args.scenario, datetime.now(UTC))
    for item in args.ack:
        metric, _, night = item.rpartition(":")
        if not metric or not _is_date(night):
            raise UsageError(f"--ack wants METRIC:NIGHT (YYYY-MM-DD), not {item!r}")
        if not any(r["metric"] == metric and r["night"] == night for r in report["regressions"]):
            raise UsageError(
                f"no regression of {metric} on {night}; `deliverydags trend` lists them"
            )
        store.ack(args.scenario, metric, night, args.note)
        print(f"acknowledged {metric} on {night}")
    if args.ack:
        report = trend_overview(store, args.scenario, datetime.now(UTC))
    _write(args.json, report)
    _print_trend(report)
    return EXIT_FINDING if report["unacknowledged"] else EXIT_OK


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _print_trend(report: dict) -> None:
    print(
        f"{report['scenario']}: {report['nights']} stored night(s), "
        f"{report['first_night']} .. {report['last_night']}"
    )
    for r in report["regressions"]:
        size = "n/a" if r["magnitude"] is None else f"{r['magnitude']:+.1%}"
        p = "" if r["p_value"] is None else f" p={r['p_value']:.2g}"
        ack = "acknowledged" if r["acknowledged"] else "NOT ACKNOWLEDGED"
        print(
            f"  {r['metric']}:{r['night']}  {r['detector']:<12} {size}{p}  "
            f"confirmed {r['confirmed_on']}  {ack}"
        )
    if not report["regressions"]:
        print("  no regression")
    if report["stale"]:
        spans = ", ".join(_spans([s["night"] for s in report["stale"]]))
        print(f"  stale: {len(report['stale'])} night(s) without a result 25 h on: {spans}")
    if report["unacknowledged"]:
        print(
            f"{report['unacknowledged']} regression(s) not acknowledged "
            "(deliverydags trend --ack METRIC:NIGHT)"
        )


def _spans(nights: list[str]) -> list[str]:
    """Consecutive nights as ranges: 2025-01-02 .. 2025-01-09, 2025-02-01."""
    out: list[list[date]] = []
    for d in map(date.fromisoformat, nights):
        if out and (d - out[-1][1]).days == 1:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [f"{a}" if a == b else f"{a} .. {b}" for a, b in out]


def _ab(args: argparse.Namespace) -> int:
    from deliverydags.review.tables import pct
    from deliverydags.stats.ab import compare

    if not 0 < args.split < 1:
        raise UsageError(f"--split is A's share, between 0 and 1, not {args.split}")
    (sa, da), (sb, db) = args.a, args.b
    try:
        out = compare(
            sa,
            da,
            sb,
            db,
            split=(args.split, 1 - args.split),
            alpha=args.alpha,
            power=args.power,
            mde=args.mde,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _write(args.json, out)
    for name in ("a", "b"):
        arm = out[name]
        print(f"{name.upper()}: {arm['delivered']}/{arm['sent']} delivered, {pct(arm['rate'], 3)}")
    print(out["verdict"])
    return EXIT_OK


def _slo(path: Path | None) -> SLOConfig | None:
    if path is None:
        return None
    import yaml  # PyYAML comes with dagster; only this option needs it

    from deliverydags.stats.slo import SLOConfig

    try:
        return SLOConfig.from_keptn(yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"--slo {path}: {exc}") from None


def _gate(args: argparse.Namespace) -> int:
    from deliverydags.review.phase_gate import GateSettings, gate_for_night

    store = _store(args)
    nights = [n for n, _ in store.nights(args.scenario)]
    if not nights:
        raise UsageError(f"no stored results of {args.scenario} in {store.path}")
    night = args.night or nights[-1]
    if not _is_date(night):
        raise UsageError(f"--night wants YYYY-MM-DD, not {night!r}")
    settings = GateSettings(rollout=args.rollout, scenario=args.scenario, slo=_slo(args.slo))
    stored = [
        r["detail"] for r in store.phase_history(args.rollout, args.scenario) if r["night"] == night
    ]
    if stored and not args.record:
        detail, source = stored[0], "recorded by the nightly run"
    else:
        try:
            detail = gate_for_night(store, settings, night, record=args.record)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        source = "recorded now" if args.record else "computed, not recorded (--record to keep)"
    _write(args.json, detail)
    print(f"rollout {detail['rollout']} ({args.scenario}), night {night} [{source}]")
    print(f"current phase: {detail['phase_before']}")
    print(
        f"decision: {detail['decision'].upper()} -> phase {detail['phase_after']} "
        f"({len(detail['nights_counted'])} night(s) counted)"
    )
    for reason in detail["reasons"]:
        print(f"  - {reason}")
    return EXIT_FINDING if detail["decision"] == "rollback" else EXIT_OK
