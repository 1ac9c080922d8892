"""Benchmark both trend detectors on 365 nights x 100 metrics.

    .venv/bin/python bench/bench_trend.py [--nights 365] [--scenarios 10] [--repeat 3]

The history is synthetic and seeded (``bench/synthetic.py``): 10 scenarios x
the 10 standard metrics, a fifth of them with a 10-30 % step, 1 % outlier nights. One
"judge" is what the nightly job does: the seed rule over every metric, E-divisive with
its permutation test over every metric's whole history, and the staleness check. Prints
the machine, the wall time of each part (best of ``--repeat``), and how the detectors did
against the known steps. Exit status 1 when the best judge exceeds the 2 s budget.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

import machine  # bench/ is on sys.path when a script here runs
import numpy as np
import synthetic  # bench/ is on sys.path when a script here runs

from deliverydags.stats import rule, trend

BUDGET_S = 2.0


def best_of(repeat: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--scenarios", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    hist, truths = synthetic.history(args.seed, nights=args.nights, scenarios=args.scenarios)
    now = datetime.combine(hist.nights[-1], datetime.min.time(), UTC) + timedelta(hours=26)
    print(machine.describe(f"numpy {np.__version__}"))
    print(
        f"history: {len(hist.nights)} nights x {len(hist.metrics)} metrics, "
        f"{sum(t.step_index is not None for t in truths)} with a step"
    )

    t_rule, _ = best_of(args.repeat, lambda: rule.scan(hist.values, hist.worse_sign))
    t_cp, changes = best_of(args.repeat, lambda: trend.detect_changes(hist))
    t_judge, report = best_of(args.repeat, lambda: trend.judge(hist, now=now))
    print(f"rule (vectorised, all metrics): {t_rule * 1000:8.1f} ms")
    print(f"change points (E-divisive):     {t_cp * 1000:8.1f} ms")
    print(f"judge (both + staleness):       {t_judge * 1000:8.1f} ms   budget {BUDGET_S:.1f} s")

    stepped = {t.metric: t for t in truths if t.step_index is not None}
    worse = [c for c in changes if c.direction == "worse"]
    hits = {
        c.metric
        for c in worse
        if c.metric in stepped
        and abs(
            hist.nights.index(datetime.fromisoformat(c.night).date()) - stepped[c.metric].step_index
        )
        <= 2
    }
    print(
        f"change points: {len(worse)} worse, {len(hits)}/{len(stepped)} steps found "
        f"within 2 nights, {len(worse) - len(hits)} other"
    )
    rule_metrics = {r["metric"] for r in report["regressions"] if r["detector"] == "rule"}
    print(
        f"rule: regressions on {len(rule_metrics)} metrics "
        f"({len(rule_metrics & set(stepped))} of them stepped)"
    )
    return 0 if t_judge <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
