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

import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, closing, nullcontext
from pathlib import Path

import sustained  # bench/ is on sys.path when this script runs
from soak_trial import judge, run_soak, trial_env
from sustained import Trial

from deliverydags import collector, target
from deliverydags.formats.send_columns import SendCopier
from deliverydags.ledger import reconcile
from deliverydags.target.allowlist import callback_args

# Given the target's URL and the trial's dir, a context yielding extra k6 args and env
# (bench_monitoring.py: a Prometheus scraping the target, k6 remote-writing to it).
Monitor = Callable[[str, Path], AbstractContextManager[tuple[list[str], dict[str, str]]]]


def trial(
    rate: int, seconds: int, accounting: bool, work: Path, monitor: Monitor | None = None
) -> tuple[bool, str]:
    name = f"{'on' if accounting else 'off'}{'-mon' if monitor else ''}-{rate}-"
    run_dir = Path(tempfile.mkdtemp(prefix=name, dir=work))  # a rate gets several trials
    env = trial_env()
    with (
        collector.start(out_dir=run_dir, env=env, discard=not accounting) as coll,
        target.start(out_dir=run_dir, env=env, extra_args=callback_args(coll.url)) as ref,
        monitor(ref.url, run_dir) if monitor else nullcontext(([], {})) as (k6_args, k6_env),
        closing(SendCopier(run_dir, f"{run_dir.name}-")) if accounting else nullcontext() as copier,
    ):
        outcome = run_soak(
            run_dir, rate, seconds, env, ref.url, coll.url,
            accounting=accounting, k6_args=k6_args, k6_env=k6_env,
        )  # fmt: skip
        if copier is not None:
            copier.finish()
            time.sleep(3)  # let the last receipts in
    ok, note, _ = judge(outcome, rate, seconds)
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
