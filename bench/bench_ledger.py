"""Benchmark the ledger on a synthetic run with known injected faults.

    .venv/bin/python bench/bench_ledger.py [--messages 10000000] [--cache DIR] [--id-prefix P]
                                           [--ndjson] [--repeat N]

Generates sends.ndjson / receipts.ndjson / rejected.ndjson once (DuckDB, vectorised; cached
under the temp dir keyed by size and generator version) plus the sealed columnar copies a
normal run leaves beside them: receipts.arrows (written with the collector's own
``ColumnWriter``, as a cleanly stopped collector leaves it) and sends.arrows (written with
the runner's own ``SendColumnWriter``, fed pieces of whole lines as its ``SendCopier`` is
while k6 runs; the CPU time that takes is printed: the runner spends it over the run).
Then it reconciles them in a fresh subprocess measuring wall time, CPU time and peak RSS
(os.wait4: that process alone), and checks every count, the lost and unexpected samples
and the latency percentiles against the truth the generator injected. Exit status 1 when
a count is wrong or a budget is exceeded.

``--ndjson`` reconciles the same files without the copies (a run by other tools, or whose
collector or copier did not seal its copy: the ledger parses both NDJSON files), from hard
links in a subdirectory. ``--repeat`` runs the measured reconcile N times (the budget
applies to each).

The truth is known by construction: messages are spread over 1,000 streams at 10 k/s, a
stream's messages 100 ms apart; only every 10th message of a stream may carry a fault,
so a fault never touches a neighbour and each fault's effect on every count is fixed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import machine  # bench/ is on sys.path when a script here runs

from deliverydags.formats.receipt_columns import BATCH_ROWS, SEAL_FILE, ColumnWriter
from deliverydags.formats.send_columns import SendColumnWriter, sealed_send_columns

GEN_VERSION = 4
STREAMS = 1000
BASE_US = 1_700_000_000_000_000  # Unix epoch, microseconds
MS = 1_000_000  # ns
S = 1_000_000_000  # ns
DEADLINES_S = (30, 300, 900)
BUDGET_WALL_S = 10.0
BUDGET_RSS_MIB = 1536.0

# Fault kinds for the candidate messages, with their weight per 100,000 candidates.
# Each kind: (weight, class, status, [(receipt status, delay ns or None = after close)], effect)
# effect: fate, duplicates, out_of_order
KINDS: dict[str, tuple[int, str, int, list[tuple[str, str]], tuple[str, int, int]]] = {
    "ok": (0, "accepted", 202, [("delivered", "d")], ("delivered", 0, 0)),
    "lost": (500, "accepted", 202, [], ("lost", 0, 0)),
    "failed": (500, "accepted", 202, [("failed", "d")], ("failed", 0, 0)),
    "fail_then_ok": (
        500,
        "accepted",
        202,
        [("failed", "d"), ("delivered", f"d + {10 * MS}")],
        ("delivered", 1, 0),
    ),
    "late300": (500, "accepted", 202, [("delivered", f"{100 * S} + j")], ("late300", 0, 1)),
    "late900": (300, "accepted", 202, [("delivered", f"{600 * S} + j")], ("late900", 0, 1)),
    "at_deadline": (100, "accepted", 202, [("delivered", f"{30 * S}")], ("delivered", 0, 1)),
    "just_late": (100, "accepted", 202, [("delivered", f"{30 * S + 1}")], ("late300", 0, 1)),
    "at_last": (100, "accepted", 202, [("delivered", f"{900 * S}")], ("late900", 0, 1)),
    "too_late": (100, "accepted", 202, [("delivered", f"{900 * S + 1}")], ("lost", 0, 1)),
    "fail_too_late": (
        100,
        "accepted",
        202,
        [("failed", "d"), ("delivered", f"{900 * S + MS}")],
        ("failed", 1, 1),
    ),
    "swap": (500, "accepted", 202, [("delivered", f"{300 * MS} + j")], ("delivered", 0, 1)),
    "dup": (
        1000,
        "accepted",
        202,
        [("delivered", "d"), ("delivered", f"d + {20 * MS}")],
        ("delivered", 1, 0),
    ),
    "dup2": (
        300,
        "accepted",
        202,
        [("delivered", "d"), ("delivered", f"d + {20 * MS}"), ("failed", f"d + {30 * MS}")],
        ("delivered", 2, 0),
    ),
    "dup_after_close": (
        100,
        "accepted",
        202,
        [("delivered", "d"), ("delivered", None)],
        ("delivered", 0, 0),
    ),
    "rej429": (500, "rejected", 429, [], ("rejected", 0, 0)),
    "rej503": (200, "rejected", 503, [], ("rejected", 0, 0)),
    "rej_rcpt": (100, "rejected", 503, [("delivered", "d")], ("rejected", 0, 0)),
    "indet_rec": (300, "indeterminate", 0, [("delivered", "d")], ("recovered", 0, 0)),
    "indet_rec_f": (100, "indeterminate", 0, [("failed", "d")], ("recovered", 0, 0)),
    "indet_unseen": (300, "indeterminate", 0, [], ("unseen", 0, 0)),
}
KIND_CODE = {name: code for code, name in enumerate(KINDS)}
UNEXPECTED = 1000  # unexpected receipts, over 900 distinct ids
JUNK_EVERY = 10_007  # a console line that is not a send record
REPEAT_EVERY = 100_003  # a send line repeated (with another class) at the end of the file


def _kind_case() -> str:
    """SQL: the kind code of candidate `u` (0..99,999), in cumulative weight bands."""
    parts, acc = [], 0
    for name, (weight, *_rest) in KINDS.items():
        if weight:
            acc += weight
            parts.append(f"WHEN u < {acc} THEN {KIND_CODE[name]}")
    return f"CASE WHEN u < 0 THEN 0 {' '.join(parts)} ELSE 0 END"


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def generate(run_dir: Path, n: int, prefix: str = "") -> dict:
    """Write the three run files for `n` messages; return the injected truth.

    ``prefix`` goes in front of every id and stream (the k6 library's ids start with the
    run id, ~23 bytes: longer strings cost the join more memory).
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]*", prefix):
        raise ValueError("prefix: letters, digits, - and _ only")
    run_dir.mkdir(parents=True, exist_ok=True)
    last_sent_ns = (BASE_US + n * 100) * 1000
    close_ns = last_sent_ns + 1000 * S
    con = duckdb.connect()
    con.execute("SET threads = 2; SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    classes = _sql_list([k[1] for k in KINDS.values()])
    statuses = "[" + ", ".join(str(k[2]) for k in KINDS.values()) + "]"
    con.execute(f"""
        CREATE TABLE m AS
        SELECT i, i % {STREAMS} AS s, i // {STREAMS} AS k,
               (BASE + i * 100 + hash(i) % 97) AS sent_us,
               50 * {MS} + hash(i * 7 + 1) % (20 * {MS}) AS d,
               hash(i * 13 + 5) % {MS} AS j,
               kind
        FROM (
            SELECT i, {_kind_case()} AS kind
            FROM (
                SELECT i, CASE WHEN (i // {STREAMS}) % 10 = 0
                               THEN (hash(i * 31 + 17) % 100000)::BIGINT ELSE -1 END AS u
                FROM range({n}) t(i)
            )
        ), (SELECT {BASE_US}::BIGINT AS BASE)
    """)
    # Receipts of sent messages, one SELECT per receipt position of each kind.
    parts = []
    for name, (_w, _c, _st, receipts, _e) in KINDS.items():
        for pos, (status, delay) in enumerate(receipts):
            recv = f"sent_us * 1000 + {delay}" if delay else f"{close_ns} + 1000 + i"
            parts.append(
                f"SELECT i, {pos} AS pos, '{status}' AS status, {recv} AS recv_ns "
                f"FROM m WHERE kind = {KIND_CODE[name]}"
            )
    # Unexpected receipts (ids never sent, some repeated), and a few after close.
    spacing = n // UNEXPECTED * 100_000
    unexpected = (
        f"SELECT NULL AS i, j AS pos, 'delivered' AS status, "
        f"{BASE_US * 1000} + j * {spacing} + 7 AS recv_ns FROM range({UNEXPECTED}) t(j) "
        f"UNION ALL SELECT NULL, 5000 + j, 'delivered', {close_ns} + 5 + j FROM range(10) t(j)"
    )
    con.execute(f"""
        CREATE TABLE r AS
        SELECT row_number() OVER (ORDER BY recv_ns, i, pos) - 1 AS n, * FROM (
            {" UNION ALL ".join(parts)} UNION ALL {unexpected}
        )
    """)
    con.execute(f"""
        COPY (
            SELECT r.n, r.recv_ns,
                   coalesce('{prefix}m' || lpad(r.i::VARCHAR, 9, '0'),
                            'u' || lpad((r.pos % 900)::VARCHAR, 6, '0')) AS id,
                   coalesce('{prefix}s' || m.s, 'u') AS stream,
                   coalesce(m.k, r.pos) AS seq, r.status,
                   strftime(make_timestamp((r.recv_ns // 1000 - 1000)::BIGINT),
                            '%Y-%m-%dT%H:%M:%S.%fZ') AS delivered_at
            FROM r LEFT JOIN m USING (i) ORDER BY r.n
        ) TO '{run_dir / "receipts.ndjson"}' (FORMAT json)
    """)
    line = (
        '\'{"dd":1,"id":"m\' || lpad(i::VARCHAR, 9, \'0\') || \'","stream":"s\' || s'
        ' || \'","seq":\' || k || \',"sent_ms":\' || (sent_us::DECIMAL(18, 0) / 1000)'
        f' || \',"class":"\' || {classes}[kind + 1] || \'","status":\' || {statuses}[kind + 1]'
        " || ',\"variant\":\"' || (CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END) || '\"}'"
    )
    junk = (
        f"CASE (i // {JUNK_EVERY}) % 4 WHEN 0 THEN 'iteration ' || i || ' done, \"ok\": true' "
        'WHEN 1 THEN \'{"level":"info","msg":"tick \' || i || \'"}\' '
        "WHEN 2 THEN '{\"dd\":2,\"id\":\"m' || lpad(i::VARCHAR, 9, '0') || '\"}' "
        "ELSE '[1, 2, {\"dd\": 1}]' END"
    )
    line = line.replace('"id":"m', f'"id":"{prefix}m').replace(
        '"stream":"s', f'"stream":"{prefix}s'
    )
    con.execute(f"""
        COPY (
            SELECT line FROM (
                SELECT i AS o, 1 AS sub, {line} AS line FROM m
                UNION ALL SELECT i, 0, {junk} FROM m WHERE i % {JUNK_EVERY} = 5
                UNION ALL SELECT {n} + i, 0,
                    '{{"dd":1,"id":"{prefix}m' || lpad(i::VARCHAR, 9, '0')
                    || '","stream":"{prefix}s' || s
                    || '","seq":' || k || ',"sent_ms":' || (sent_us::DECIMAL(18, 0) / 1000)
                    || ',"class":"rejected","status":500,"variant":"C"}}'
                FROM m WHERE i % {REPEAT_EVERY} = 3
            ) ORDER BY o, sub
        ) TO '{run_dir / "sends.ndjson"}'
        (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')
    """)
    with open(run_dir / "rejected.ndjson", "w") as f:
        for j in range(50):
            reason = "bad_signature" if j % 5 else "malformed"
            f.write(json.dumps({"recv_ns": BASE_US * 1000 + j * S, "reason": reason}) + "\n")
        f.write(json.dumps({"recv_ns": close_ns + 1, "reason": "bad_signature"}) + "\n")
    truth = _truth(con, n)
    truth["close_ns"] = close_ns
    lost = [KIND_CODE[k] for k, v in KINDS.items() if v[4][0] == "lost"]
    rows = con.execute(
        f"SELECT i FROM m WHERE kind IN ({', '.join(map(str, lost))}) ORDER BY i LIMIT 1000"
    ).fetchall()
    truth["samples"] = {
        "lost": [f"{prefix}m{i:09d}" for (i,) in rows],
        "unexpected": [f"u{j:06d}" for j in range(min(900, UNEXPECTED))],
    }
    con.close()
    return truth


def _truth(con: duckdb.DuckDBPyConnection, n: int) -> dict:
    """Expected counts from the kind of every message (what was injected)."""
    rows = con.execute("SELECT kind, count(*) FROM m GROUP BY kind").fetchall()
    by_kind = {list(KINDS)[code]: cnt for code, cnt in rows}
    c = dict.fromkeys(
        (
            *("accepted", "rejected", "indeterminate", "delivered", "late", "failed", "lost"),
            *("recovered", "unseen", "duplicates", "out_of_order"),
        ),
        0,
    )
    late = {"300": 0, "900": 0}
    rejected_by_status: dict[str, int] = {}
    for name, cnt in by_kind.items():
        _w, cls, status, _r, (fate, dups, ooo) = KINDS[name]
        c[cls] += cnt
        if fate.startswith("late"):
            c["late"] += cnt
            late[fate[4:]] += cnt
        elif fate != "rejected":
            c[fate] += cnt
        else:
            rejected_by_status[str(status)] = rejected_by_status.get(str(status), 0) + cnt
        c["duplicates"] += dups * cnt
        c["out_of_order"] += ooo * cnt
    c["attempted"] = n
    c["unexpected"] = UNEXPECTED
    c["bad_signature"] = 40
    latency = _truth_latency(con)
    return {
        "counts": c,
        "late_by_deadline": late,
        "rejected_by_status": rejected_by_status,
        "latency_ms": latency,
        "malformed": 10,
        "repeated_send_ids": len(range(3, n, REPEAT_EVERY)),
        "by_kind": by_kind,
    }


def _truth_latency(con: duckdb.DuckDBPyConnection) -> dict:
    """Percentiles of the first receipt's latency over delivered, late, recovered messages."""
    counted = [KIND_CODE[k] for k, v in KINDS.items() if v[4][0] in {"delivered", "recovered"}]
    counted += [KIND_CODE[k] for k, v in KINDS.items() if v[4][0].startswith("late")]
    row = con.execute(f"""
        WITH first AS (
            SELECT i, arg_min(recv_ns, n) AS recv_ns FROM r WHERE i IS NOT NULL GROUP BY i
        )
        SELECT quantile_cont(x, [0.5, 0.95, 0.99]), max(x) FROM (
            SELECT (first.recv_ns - m.sent_us * 1000) / 1e6 AS x
            FROM m JOIN first USING (i) WHERE m.kind IN ({", ".join(map(str, counted))})
        )
    """).fetchone()
    assert row is not None
    (p50, p95, p99), mx = row
    return {"p50": p50, "p95": p95, "p99": p99, "max": mx}


def write_columns(run_dir: Path) -> None:
    """The columnar copy a cleanly stopped collector leaves beside receipts.ndjson (the
    collector's ColumnWriter, fed the same rows in batches of the size it buffers)."""
    src = (
        f"read_json('{run_dir / 'receipts.ndjson'}', format = 'newline_delimited', "
        "columns = {n: 'BIGINT', recv_ns: 'BIGINT', id: 'VARCHAR', status: 'VARCHAR'})"
    )
    con = duckdb.connect()
    con.execute("SET threads = 2; SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    writer = ColumnWriter(run_dir)
    query = f"SELECT n, recv_ns, id, status = 'delivered' AS delivered FROM {src}"
    for batch in con.sql(query).to_arrow_reader(BATCH_ROWS):
        writer.add_batch(batch)
    con.close()
    lines = sum(chunk.count(b"\n") for chunk in _chunks(run_dir / "receipts.ndjson"))
    if not writer.seal(lines):
        raise SystemExit("columnar copy: row count differs from receipts.ndjson")


def write_send_columns(run_dir: Path, prefix: str) -> float:
    """The copy the runner's SendCopier leaves (its writer, fed pieces of whole lines of
    about what a run at 5,000 messages/s writes between its looks); its CPU seconds."""
    cpu = time.process_time()
    writer = SendColumnWriter(run_dir, prefix)
    rest = b""
    for chunk in _chunks(run_dir / "sends.ndjson", 1 << 22):
        data = rest + chunk
        end = data.rfind(b"\n") + 1
        if end:
            writer.add(data[:end])
        rest = data[end:]
    if rest:
        writer.add(rest)
    writer.seal()
    return time.process_time() - cpu


def _chunks(path: Path, size: int = 1 << 24):
    with path.open("rb") as f:
        yield from iter(lambda: f.read(size), b"")


def ndjson_only(run_dir: Path) -> Path:
    """The run's ndjson files, hard-linked into a subdirectory without the columnar copy."""
    plain = run_dir / "ndjson-only"
    plain.mkdir(exist_ok=True)
    for p in run_dir.glob("*.ndjson"):
        if not (plain / p.name).exists():
            os.link(p, plain / p.name)
    return plain


CHILD = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from deliverydags.ledger import reconcile
t1 = time.perf_counter()
res = reconcile(Path(sys.argv[1]), [30, 300, 900], close_ns=int(sys.argv[2])).to_dict()
t2 = time.perf_counter()
res["_import_s"] = t1 - t0
res["_reconcile_s"] = t2 - t1
print(json.dumps(res))
"""


def run_child(run_dir: Path, close_ns: int) -> tuple[dict, float, float, float]:
    """Reconcile in a fresh interpreter: (result, wall s, CPU s, peak RSS MiB).

    os.wait4 gives that child's own rusage (RUSAGE_CHILDREN would fold in any other
    child, and the generator's memory if it ran in this process).
    """
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(run_dir), str(close_ns)], stdout=out
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"reconcile failed with exit status {proc.returncode}")
        out.seek(0)
        result = json.loads(out.read())
    return result, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def compare(res: dict, truth: dict) -> list[str]:
    errors = []
    for key, want in truth["counts"].items():
        got = res["counts"].get(key)
        if got != want:
            errors.append(f"counts.{key}: got {got}, injected {want}")
    for field in ("late_by_deadline", "rejected_by_status", "malformed", "repeated_send_ids"):
        if res.get(field) != truth[field]:
            errors.append(f"{field}: got {res.get(field)}, injected {truth[field]}")
    for key, want in truth["samples"].items():
        if res["samples"][key] != want:
            errors.append(f"samples.{key}: differs from the injected order")
    distinct = {
        "duplicates": sum(c for k, c in truth["by_kind"].items() if KINDS[k][4][1]),
        "out_of_order": truth["counts"]["out_of_order"],
    }
    for key, want in distinct.items():
        if len(res["samples"][key]) != min(want, 1000):
            errors.append(f"samples.{key}: {len(res['samples'][key])} ids, not {min(want, 1000)}")
    for key in ("attempted", "accepted", "delivered", "late", "failed", "lost", "rejected"):
        if sum(v[key] for v in res["by_variant"].values()) != truth["counts"][key]:
            errors.append(f"by_variant.*.{key} does not add up to counts.{key}")
    for key, want in truth["latency_ms"].items():
        got = res["latency_ms"][key]
        if got is None or abs(got - want) > 1e-6 * max(1.0, abs(want)):
            errors.append(f"latency_ms.{key}: got {got}, expected {want}")
    c = res["counts"]
    if c["attempted"] != c["accepted"] + c["rejected"] + c["indeterminate"]:
        errors.append("invariant attempted")
    if c["accepted"] != c["delivered"] + c["late"] + c["failed"] + c["lost"]:
        errors.append("invariant accepted")
    if c["indeterminate"] != c["recovered"] + c["unseen"]:
        errors.append("invariant indeterminate")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000_000)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dd-bench-ledger")
    ap.add_argument("--id-prefix", default="", help="prefix every id and stream (realism)")
    ap.add_argument("--ndjson", action="store_true", help="without the columnar copies")
    ap.add_argument("--repeat", type=int, default=1, help="measured reconciles (default 1)")
    args = ap.parse_args()
    run_dir = args.cache / f"v{GEN_VERSION}-n{args.messages}-p{args.id_prefix}"
    truth_path = run_dir / "truth.json"
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())
        print(f"using cached run files in {run_dir}")
    else:
        t0 = time.perf_counter()
        # In a process of its own: its memory must not be inherited by the measured one.
        argv = [sys.executable, __file__, "--generate", str(args.messages), str(run_dir)]
        subprocess.run([*argv, args.id_prefix], check=True)
        truth = json.loads(truth_path.read_text())
        print(f"generated run files in {run_dir} in {time.perf_counter() - t0:.1f} s")
    if not (run_dir / SEAL_FILE).exists():
        t0 = time.perf_counter()
        write_columns(run_dir)
        print(f"wrote the columnar copy of the receipts in {time.perf_counter() - t0:.1f} s")
    if sealed_send_columns(run_dir) is None:
        cpu = write_send_columns(run_dir, args.id_prefix)
        print(f"wrote the columnar copy of the sends in {cpu:.1f} CPU-s (the runner's, in a run)")
    if args.ndjson:
        run_dir = ndjson_only(run_dir)
    files = [*sorted(run_dir.glob("*.ndjson")), *sorted(run_dir.glob("*.arrows"))]
    sizes = {p.name: p.stat().st_size / 2**20 for p in files}
    print(machine.describe())
    print("files: " + ", ".join(f"{k} {v:,.0f} MiB" for k, v in sizes.items()))
    errors: list[str] = []
    for _ in range(args.repeat):
        load_before = os.getloadavg()[0]
        res, wall, cpu, rss = run_child(run_dir, truth["close_ns"])
        print(
            f"reconcile: wall {wall:.2f} s (import {res['_import_s']:.2f} s, "
            f"reconcile {res['_reconcile_s']:.2f} s), CPU {cpu:.2f} s, peak RSS {rss:,.0f} MiB; "
            f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
        )
        errors += compare(res, truth)
        if wall > BUDGET_WALL_S:
            errors.append(f"wall {wall:.2f} s over budget {BUDGET_WALL_S} s")
        if rss > BUDGET_RSS_MIB:
            errors.append(f"peak RSS {rss:.0f} MiB over budget {BUDGET_RSS_MIB} MiB")
    print("counts: " + json.dumps(res["counts"]))
    print("latency_ms: " + json.dumps(res["latency_ms"]))
    for e in errors:
        print("FAIL " + e)
    print("OK: every count equals the injected truth" if not errors else f"{len(errors)} failures")
    return 1 if errors else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--generate"]:
        n, where, prefix = int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
        (where / "truth.json").write_text(json.dumps(generate(where, n, prefix)))
        sys.exit(0)
    sys.exit(main())
