"""Cost of the reference target's optional Postgres dependency (--postgres-dsn): one
INSERT per admitted message through a pool of 4, on the request path of POST /v1/messages.

For each rate, message_soak runs against the target without and with the database, one
after the other on this machine, and prints k6's answer times (p50/p95 of
http_req_duration) and whether the rate was sustained (k6 dropped <= 1% of the planned
messages, <= 0.1% not accepted). Postgres from DAGSTER_PG_HOST/_PORT/_USER/_DB (default
127.0.0.1:5432, postgres, test); each run uses its own table, dropped afterwards.

    .venv/bin/python bench/bench_pg_dependency.py [--rates 100,500,1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
from pathlib import Path

import machine  # bench/ is on sys.path when a script here runs
import psycopg2
from soak_trial import judge, run_soak, trial_env

from deliverydags import collector, target
from deliverydags.target.allowlist import callback_args
from deliverydags.target.database import table_name


def _pg() -> dict:
    env = os.environ
    return {
        "host": env.get("DAGSTER_PG_HOST", "127.0.0.1"),
        "port": int(env.get("DAGSTER_PG_PORT", "5432")),
        "user": env.get("DAGSTER_PG_USER", "postgres"),
        "dbname": env.get("DAGSTER_PG_DB", "test"),
    }


def trial(rate: int, seconds: int, db: bool, work: Path) -> str:
    run_dir = work / f"{'db' if db else 'nodb'}-{rate}"
    run_dir.mkdir()
    prefix = f"ddbench-{secrets.token_hex(4)}"
    pg = _pg()
    args = ["--stream-prefix", prefix]
    if db:
        dsn = f"postgresql://{pg['user']}@{pg['host']}:{pg['port']}/{pg['dbname']}"
        args += ["--postgres-dsn", dsn]
    env = trial_env()
    try:
        with (
            collector.start(out_dir=run_dir, env=env, discard=True) as coll,
            target.start(
                out_dir=run_dir, env=env, extra_args=[*args, *callback_args(coll.url)]
            ) as ref,
        ):
            outcome = run_soak(run_dir, rate, seconds, env, ref.url, coll.url)
    finally:
        if db:
            conn = psycopg2.connect(**pg)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP TABLE IF EXISTS "{table_name(prefix)}"')
            conn.close()
    ok, note, metrics = judge(outcome, rate, seconds)
    dur = metrics.get("http_req_duration", {}).get("values", {})
    return (
        f"{'sustained' if ok else 'NOT sustained'}; answer p50 {dur.get('med', 0):.2f} ms, "
        f"p95 {dur.get('p(95)', 0):.2f} ms; {note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    print(machine.describe())
    with tempfile.TemporaryDirectory() as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            for db in (False, True):
                note = trial(rate, args.seconds, db, Path(tmp))
                print(f"  {rate:>5}/s {'with Postgres' if db else 'no database  '}: {note}",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
