"""Monitoring overhead: the highest rate message_soak sustains against the reference
target with a Prometheus scraping the target every second and k6 remote-writing its own
metrics to it, over the highest rate without either, both measured in this run (accounting
on in both). Same method and criteria as bench_overhead.py, whose helpers this reuses.
Goal: ratio >= 0.98 (monitoring costs < 2%).

    .venv/bin/python bench/bench_monitoring.py [--rates 500,1000,...] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench_overhead import highest  # bench/ is on sys.path when this script runs

from deliverydags.prometheus import PrometheusHook


@contextmanager
def monitored(target_url: str, run_dir: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The soak's own monitoring: a private Prometheus scraping the target at 1 s, and
    k6's experimental-prometheus-rw output pushing to it every second."""
    with PrometheusHook(run_dir / "prometheus", run_id=run_dir.name) as hook:
        if hook.error or hook.server is None:
            raise SystemExit(f"bench_monitoring: {hook.error}")
        hook.server.scrape(target_url + "/metrics")
        # Prometheus takes ~5 s to discover a target: wait, so it scrapes the whole trial.
        deadline = time.monotonic() + 15
        while hook.metrics.last_scrape_s() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        yield hook.k6_args(), hook.k6_env()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="250,500,750,1000,1250,1500,1750,2000,2500")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        off = highest(rates, args.seconds, True, work, label="monitoring off")
        on = highest(rates, args.seconds, True, work, monitor=monitored, label="monitoring on ")
    ratio = on / off if off else float("nan")
    print(f"highest sustained rate: monitoring off {off}/s, on {on}/s; ratio {ratio:.2f} "
          f"(goal >= 0.98; steps {args.rates}; load average now "
          f"{os.getloadavg()[0]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
