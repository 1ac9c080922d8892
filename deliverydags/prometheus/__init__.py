"""A real Prometheus beside each run: launcher (server), SLI queries, comparison with
the ledger, memory growth, and the run hook tying them together."""

from .errors import PrometheusError
from .hook import MemoryCheck, PrometheusHook
from .queries import ServiceMetrics, Window
from .server import PrometheusServer, find_prometheus

__all__ = [
    "MemoryCheck",
    "PrometheusError",
    "PrometheusHook",
    "PrometheusServer",
    "ServiceMetrics",
    "Window",
    "find_prometheus",
]
