"""Monitoring overhead: the highest rate message_soak sustains against the reference
target with a Prometheus scraping the target every second and k6 remote-writing its own
metrics to it, over the highest rate without either, both measured in this run (accounting
on in both). Same trials as bench_overhead.py, the same search (sustained.py), bisected
to 1%. Goal: ratio >= 0.98 (monitoring costs < 2%).

    .venv/bin/python bench/bench_monitoring.py [--start 1500] [--resolution 0.01] [--seconds 20]
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sustained
from bench_overhead import trial  # bench/ is on sys.path when this script runs
from sustained import Trial

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
    def modes(seconds: int, work: Path) -> tuple[tuple[str, Trial], tuple[str, Trial]]:
        return (
            ("monitoring off", lambda rate: trial(rate, seconds, True, work)),
            ("monitoring on ", lambda rate: trial(rate, seconds, True, work, monitored)),
        )

    sustained.main(__doc__.split("\n\n")[0], modes, goal=0.98, resolution=0.01)


if __name__ == "__main__":
    main()
