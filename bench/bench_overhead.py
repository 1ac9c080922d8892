"""Accounting overhead: the highest rate message_soak sustains against the reference target
with accounting on (send records and the runner's columnar copy of them, verifying and
fsyncing collector, ledger) over the highest rate of the same script with accounting off
(no send records, a collector that discards), both measured in this run. Goal: >= 0.90.

A trial passes when k6 dropped at most 1% of the planned messages, at most 0.1% were not
accepted, and (accounting on) the ledger found every accepted message delivered. Each
trial starts its own target and collector. How trials make a sustained rate, and how the
two searches share the machine: sustained.py.

    .venv/bin/python bench/bench_overhead.py [--start 1500] [--resolution 0.02] [--seconds 20]
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, closing, nullcontext
from pathlib import Path

import sustained  # bench/ is on sys.path when this script runs
from sustained import Trial

from deliverydags import collector, target
from deliverydags.k6run import run_k6
from deliverydags.ledger import reconcile
from deliverydags.send_columns import SendCopier
from deliverydags.settings import K6_DIR

# Given the target's URL and the trial's dir, a context yielding extra k6 args and env
# (bench_monitoring.py: a Prometheus scraping the target, k6 remote-writing to it).
Monitor = Callable[[str, Path], AbstractContextManager[tuple[list[str], dict[str, str]]]]


def trial(
    rate: int, seconds: int, accounting: bool, work: Path, monitor: Monitor | None = None
) -> tuple[bool, str]:
    name = f"{'on' if accounting else 'off'}{'-mon' if monitor else ''}-{rate}-"
    run_dir = Path(tempfile.mkdtemp(prefix=name, dir=work))  # a rate gets several trials
    env = {
        **os.environ,
        "DELIVERYDAGS_TARGET_TOKEN": secrets.token_hex(8),
        "DELIVERYDAGS_CALLBACK_SECRET": secrets.token_hex(8),
    }
    with (
        collector.start(out_dir=run_dir, env=env, discard=not accounting) as coll,
        target.start(out_dir=run_dir, env=env) as ref,
        monitor(ref.url, run_dir) if monitor else nullcontext(([], {})) as (k6_args, k6_env),
        closing(SendCopier(run_dir, f"{run_dir.name}-")) if accounting else nullcontext() as copier,
    ):
        outcome = run_k6(
            K6_DIR / "message_soak.js",
            env={
                **env,
                "DD_TARGET_URL": ref.url,
                "DD_RATE": str(rate),
                "DD_DURATION_S": str(seconds),
                "DD_RUN_ID": run_dir.name,
                "DD_COLLECTOR_URL": coll.url,
                "DD_ACCOUNTING": "on" if accounting else "off",
                **k6_env,
            },
            extra_args=k6_args,
            work_dir=run_dir,
            timeout_s=seconds + 120,
            log=lambda _m: None,
            console_output=run_dir / "sends.ndjson",
        )
        if copier is not None:
            copier.finish()
            time.sleep(3)  # let the last receipts in
    values = (outcome.summary or {}).get("metrics", {})
    planned = rate * seconds
    dropped = values.get("dropped_iterations", {}).get("values", {}).get("count", 0)
    errors = values.get("dd_errors", {}).get("values", {}).get("rate", 1.0)
    ok = dropped <= planned * 0.01 and errors <= 0.001
    note = f"dropped {dropped:.0f}/{planned}, not accepted {errors:.4%}"
    if accounting:
        counts = reconcile(run_dir, (30.0,), close_ns=time.time_ns()).to_dict()["counts"]
        ok = ok and counts["delivered"] == counts["accepted"] > 0
        note += f", ledger delivered {counts['delivered']}/{counts['accepted']}"
    return ok, note


def main() -> None:
    def modes(seconds: int, work: Path) -> tuple[tuple[str, Trial], tuple[str, Trial]]:
        return (
            ("accounting off", lambda rate: trial(rate, seconds, False, work)),
            ("accounting on ", lambda rate: trial(rate, seconds, True, work)),
        )

    sustained.main(__doc__.split("\n\n")[0], modes, goal=0.90, resolution=0.02)


if __name__ == "__main__":
    main()
