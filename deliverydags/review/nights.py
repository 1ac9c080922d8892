"""Stored nights as metrics: the one place that knows how a stored document maps to metrics.

A stored document is a run result (contract v1) or an imported k6 summary (``"source":
"k6_summary"``, its metrics extracted at import time: k6 knows requests, not deliveries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deliverydags.history.store import ResultsStore
from deliverydags.stats.history import History, as_night
from deliverydags.stats.metrics import METRIC_NAMES, extract_metrics

Metrics = dict[str, float | None]
K6_SOURCE = "k6_summary"


def _dotted(doc: Mapping[str, Any], path: str) -> float | None:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


def night_metrics(doc: Mapping[str, Any], extra: Sequence[str] = ()) -> Metrics:
    """The standard metrics of one stored document, plus ``extra`` metrics by dotted path
    (e.g. ``opt_out_rate`` for the SMS rollout; looked up at the top level, then under
    ``metrics``)."""
    if doc.get("source") == K6_SOURCE:
        stored = doc.get("metrics") or {}
        out: Metrics = {name: stored.get(name) for name in METRIC_NAMES}
    else:
        out = extract_metrics(doc)
    for name in extra:
        if name not in out or out[name] is None:
            value = _dotted(doc, name)
            out[name] = value if value is not None else _dotted(doc, f"metrics.{name}")
    return out


def stored_metrics(
    store: ResultsStore,
    scenario: str,
    upto: str | None = None,
    extra: Sequence[str] = (),
) -> dict[str, Metrics]:
    """``{night: metrics}`` of every stored night of ``scenario`` (up to ``upto``)."""
    return {
        night: night_metrics(doc, extra)
        for night, doc in store.nights(scenario)
        if upto is None or night <= upto
    }


def history_of(per_night: Mapping[str, Metrics], last: str | None = None) -> History | None:
    """Calendar nights first..``last`` (missing nights NaN); None when nothing is stored."""
    if not per_night:
        return None
    first = min(per_night)
    end = last if last is not None and last >= first else max(per_night)
    return History.from_nights(per_night, METRIC_NAMES, first=as_night(first), last=as_night(end))
