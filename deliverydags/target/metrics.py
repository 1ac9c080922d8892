"""Prometheus exposition of a broker snapshot plus this process's own metrics."""

from __future__ import annotations

import math
from collections.abc import Iterator

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


class Exposition:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self._snapshot = _SnapshotCollector()
        self.registry.register(self._snapshot)

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
