"""Benchmark: a single-run backfill of 365 past nights of `imported_results`.

    .venv/bin/python bench/bench_backfill.py [--nights 365]

Writes a year of recorded files (result JSON, and a k6 summary every 5th night), then, on
a temp Dagster instance with the production run launcher (each run its own process) and
the real code location (`deliverydags.definitions` in a gRPC code server), requests an
asset backfill of every night and runs the backfill daemon's iteration once a second
until it is done. Prints the run's own duration and the wall time from request to the
backfill's completion (the real daemon ticks every 30 s, which adds up to that much);
then backfills again and checks the nights were replaced, not doubled. Exit status 1
when the backfill takes more than 60 s or the store does not hold one row per night.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import machine  # bench/ is on sys.path when a script here runs
import orjson
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 60.0


def result(night: str, i: int) -> dict:
    accepted = 900_000
    lost = i % 4
    return {
        "scenario": "message_soak", "target_url": "http://target", "rate": 500,
        "started_at": f"{night}T02:10:00.000Z", "duration_s": 1800,
        "deadlines_s": [30, 300, 900], "status": "passed", "run_id": f"run-{night}",
        "counts": {"attempted": accepted, "accepted": accepted, "rejected": 0,
                   "indeterminate": 0, "delivered": accepted - lost, "late": 0, "failed": 0,
                   "lost": lost, "recovered": 0, "unseen": 0, "duplicates": 40 + i % 9,
                   "unexpected": 0, "out_of_order": 12, "bad_signature": 0},
        "latency_ms": {"p50": 40.0, "p95": 120.0 + i % 5, "p99": 250.0, "max": 900.0},
        "delivery_rate": (accepted - lost) / accepted,
        "gates": [{"name": "zero_loss", "passed": lost == 0, "observed": lost, "limit": 0}],
        "samples": {"lost": [f"m{k}" for k in range(lost)], "duplicates": [],
                    "out_of_order": [], "unexpected": []},
    }  # fmt: skip


def k6_summary(i: int) -> dict:
    return {
        "root_group": {"name": "", "checks": {}},
        "metrics": {
            "http_req_duration": {"med": 40.0, "p(95)": 120.0 + i % 5, "p(99)": 250.0,
                                  "thresholds": {"p(95)<500": False}},
            "http_req_failed": {"passes": 0, "fails": 1000, "value": 0.0},
            "iterations": {"count": 900_000, "rate": 500.0},
        },
    }  # fmt: skip


def write_files(folder: Path, nights: list[str]) -> None:
    folder.mkdir(parents=True)
    for i, night in enumerate(nights):
        if i % 5 == 4:
            (folder / f"k6-summary-{night}.json").write_bytes(orjson.dumps(k6_summary(i)))
        else:
            (folder / f"result-{night}.json").write_bytes(orjson.dumps(result(night, i)))


def backfill(context, key: dg.AssetKey, nights: list[str]) -> tuple[float, PartitionBackfill]:
    instance = context.instance
    backfill_id = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    instance.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=context.create_request_context().asset_graph,
            partition_names=nights,
            asset_selection=[key],
            backfill_timestamp=time.time(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title="bench",
            description=None,
            run_config=None,
        )
    )
    logger = logging.getLogger("bench_backfill")
    while True:
        list(execute_backfill_iteration(context, logger))
        done = instance.get_backfill(backfill_id)
        if done.status != BulkActionStatus.REQUESTED:
            return time.perf_counter() - start, done
        time.sleep(1.0)


def run_seconds(instance: dg.DagsterInstance, backfill_id: str) -> tuple[int, float]:
    runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    stats = [instance.get_run_stats(r.run_id) for r in runs]
    return len(runs), sum((s.end_time or 0) - (s.start_time or 0) for s in stats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    args = parser.parse_args()
    nights = [(date(2025, 1, 1) + timedelta(days=i)).isoformat() for i in range(args.nights)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        os.environ["DELIVERYDAGS_DATA_DIR"] = str(data)  # the code server and runs inherit it
        write_files(data / "import", nights)
        from deliverydags.history.store import ResultsStore

        store = ResultsStore(data / "results.duckdb")
        print(machine.describe(f"dagster {dg.__version__}"))
        print(
            f"recorded files: {len(nights)} ({len(nights) // 5} k6 summaries) in {data / 'import'}"
        )
        overrides = {
            "run_coordinator": {
                "module": "dagster._core.run_coordinator",
                "class": "DefaultRunCoordinator",
            }
        }
        target = ModuleTarget(
            "deliverydags.definitions", "defs", str(ROOT), location_name="deliverydags"
        )
        ok = True
        with (
            dg.instance_for_test(overrides=overrides, temp_dir=tmp) as instance,
            create_test_daemon_workspace_context(target, instance) as context,
        ):
            key = dg.AssetKey("imported_results")
            for label in ("backfill", "re-run"):
                wall, done = backfill(context, key, nights)
                n_runs, in_run = run_seconds(instance, done.backfill_id)
                rows = store.count()
                print(f"{label}: {len(nights)} nights, {done.status.value}, {n_runs} run(s), "
                      f"run {in_run:.1f} s, request to completion {wall:.1f} s "
                      f"(budget {BUDGET_S:.0f} s); store rows {rows}")  # fmt: skip
                ok &= done.status == BulkActionStatus.COMPLETED_SUCCESS and n_runs == 1
                ok &= wall <= BUDGET_S and rows == len(nights)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
