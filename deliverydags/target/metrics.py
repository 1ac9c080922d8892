"""Prometheus exposition of a broker snapshot plus this process's own metrics."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator

import psutil
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from .broker import LATENCY_BUCKETS, Snapshot


class _SnapshotCollector:
    """Whole-service numbers, read from the broker just before each scrape."""

    def __init__(self) -> None:
        self.snapshot = Snapshot({}, 0, 0)
        self.consumer_restarts = 0  # this process's supervisor: not shared

    def collect(self) -> Iterator[Metric]:
        c = self.snapshot.counters
        delivered, failed = c.get("delivered", 0.0), c.get("failed", 0.0)
        yield CounterMetricFamily("accepted", "Messages answered 202.", c.get("accepted", 0.0))
        yield CounterMetricFamily("delivered", "Messages with an acknowledged receipt.", delivered)
        # Named as the seed service named it (no _total suffix).
        failed_metric = Metric("failed_delivery_count", "Messages that ended failed.", "counter")
        failed_metric.add_sample("failed_delivery_count", {}, failed)
        yield failed_metric
        yield CounterMetricFamily(
            "fault_dropped", "Messages dropped by the drop fault.", c.get("dropped", 0.0)
        )
        yield CounterMetricFamily(
            "delivery_retries", "Receipt POSTs retried.", c.get("retries", 0.0)
        )
        yield GaugeMetricFamily(
            "dlq_depth", "Entries in the dead-letter queue.", self.snapshot.dlq_depth
        )
        yield GaugeMetricFamily(
            "consumer_lag", "Accepted messages not yet acknowledged.", self.snapshot.backlog
        )
        rate = 100.0 * delivered / (delivered + failed) if delivered + failed else math.nan
        yield GaugeMetricFamily(
            "delivery_rate_percentage", "delivered / (delivered + failed) * 100.", rate
        )
        yield CounterMetricFamily(
            "consumer_restarts", "Consumer processes restarted.", self.consumer_restarts
        )
        cumulative, buckets = 0.0, []
        for i, bound in enumerate([*map(str, LATENCY_BUCKETS), "+Inf"]):
            cumulative += c.get(f"lat{i}", 0.0)
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "message_latency_seconds",
            "Accepted until its receipt was acknowledged.",
            buckets=buckets,
            sum_value=c.get("lat_sum", 0.0),
        )


class _ProcessesCollector:
    """Resident memory of every process of the service (this one and, in Redis mode, its
    consumer processes), so a leak in any of them shows in one scrape."""

    def __init__(self) -> None:
        self.pids: Callable[[], list[int]] = list

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "target_process_resident_memory_bytes",
            "Resident memory of each target process.",
            labels=["process"],
        )
        named = [("api", os.getpid())]
        named += [(f"consumer-{i}", pid) for i, pid in enumerate(self.pids())]
        for name, pid in named:
            with contextlib.suppress(psutil.Error):  # a consumer may be gone by now
                family.add_metric([name], psutil.Process(pid).memory_info().rss)
        yield family


class Exposition:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self._snapshot = _SnapshotCollector()
        self.registry.register(self._snapshot)
        self._processes = _ProcessesCollector()
        self.registry.register(self._processes)

    def watch_processes(self, pids: Callable[[], list[int]]) -> None:
        self._processes.pids = pids

    def count_restart(self) -> None:
        self._snapshot.consumer_restarts += 1

    def render(self, snapshot: Snapshot) -> bytes:
        # Set-then-generate with no await between: safe on one event loop.
        self._snapshot.snapshot = snapshot
        # prometheus_client names every counter family "<name>_total" in HELP/TYPE; this
        # one keeps the seed's name, so its metadata must name the sample as it is.
        return generate_latest(self.registry).replace(
            b" failed_delivery_count_total ", b" failed_delivery_count "
        )
