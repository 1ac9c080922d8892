"""The metrics judged night over night, named by their path in the result JSON.

A metric is ``None`` when the night has no meaningful value for it (nothing accepted, so
no delivery rate; nothing attempted, so no error rate). ``None`` is never replaced by 0:
a night that sent nothing did not deliver perfectly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    better: Better
    unit: str


_SPECS = (
    MetricSpec("delivery_rate", "higher", "ratio"),
    MetricSpec("counts.lost", "lower", "messages"),
    MetricSpec("counts.duplicates", "lower", "receipts"),
    MetricSpec("counts.out_of_order", "lower", "messages"),
    MetricSpec("counts.late", "lower", "messages"),
    MetricSpec("latency_ms.p50", "lower", "ms"),
    MetricSpec("latency_ms.p95", "lower", "ms"),
    MetricSpec("latency_ms.p99", "lower", "ms"),
    MetricSpec("error_rate", "lower", "ratio"),
    MetricSpec("throughput", "higher", "messages/s"),
    # The throughput ladder's (None for other scenarios).
    MetricSpec("knee", "higher", "messages/s"),
    MetricSpec("linear_scaling", "higher", "ratio"),
)

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)

# The subset a k6 summary can give (k6 knows requests, not deliveries).
K6_METRIC_NAMES: tuple[str, ...] = (
    "latency_ms.p50",
    "latency_ms.p95",
    "latency_ms.p99",
    "error_rate",
    "throughput",
)


def better(metric: str) -> Better:
    """Which way is good for ``metric``; unknown metrics are refused, not guessed."""
    try:
        return METRICS[metric].better
    except KeyError:
        raise KeyError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}") from None


def _number(value: Any) -> float | None:
    # bool is an int in Python; a flag is not a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _path(doc: Mapping[str, Any], dotted: str) -> float | None:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return _number(node)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def extract_metrics(result: Mapping[str, Any]) -> dict[str, float | None]:
    """Every metric of ``METRIC_NAMES`` from one run result (contract v1 JSON)."""
    out = {name: _path(result, name) for name in METRIC_NAMES if "." in name}
    for top in ("delivery_rate", "knee", "linear_scaling"):
        out[top] = _path(result, top)
    counts = result.get("counts") if isinstance(result.get("counts"), Mapping) else {}
    attempted = _number(counts.get("attempted"))
    rejected = _number(counts.get("rejected"))
    indeterminate = _number(counts.get("indeterminate"))
    failed_sends = None if rejected is None or indeterminate is None else rejected + indeterminate
    out["error_rate"] = _ratio(failed_sends, attempted)
    out["throughput"] = _ratio(_number(counts.get("accepted")), _number(result.get("duration_s")))
    return {name: out[name] for name in METRIC_NAMES}


def _k6_stat(metric: Any, key: str) -> float | None:
    """One statistic of a k6 metric, in either summary layout.

    ``--summary-export`` puts stats on the metric itself (``{"p(95)": ..}``, rates as
    ``"value"``); ``handleSummary``'s ``data`` nests them under ``"values"`` (rates as
    ``"rate"``).
    """
    if not isinstance(metric, Mapping):
        return None
    stats = metric.get("values") if isinstance(metric.get("values"), Mapping) else metric
    if key == "rate" and "rate" not in stats and "passes" in stats:
        key = "value"  # a Rate metric in --summary-export layout
    return _number(stats.get(key))


def extract_k6_metrics(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """``K6_METRIC_NAMES`` from a k6 summary (either layout).

    http_req_duration p50 (``p(50)``, else k6's default ``med``) / p95 / p99 -> latency;
    http_req_failed rate -> error_rate; iterations per second -> throughput. A percentile
    missing from ``summaryTrendStats`` is ``None``.
    """
    metrics = summary.get("metrics") if isinstance(summary.get("metrics"), Mapping) else {}
    duration = metrics.get("http_req_duration")
    p50 = _k6_stat(duration, "p(50)")
    return {
        "latency_ms.p50": p50 if p50 is not None else _k6_stat(duration, "med"),
        "latency_ms.p95": _k6_stat(duration, "p(95)"),
        "latency_ms.p99": _k6_stat(duration, "p(99)"),
        "error_rate": _k6_stat(metrics.get("http_req_failed"), "rate"),
        "throughput": _k6_stat(metrics.get("iterations"), "rate"),
    }
