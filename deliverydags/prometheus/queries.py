"""The service's SLIs for one run window, read from Prometheus with prometheus-api-client.

Counts are differences of two sample values (window end minus window start), not
``increase()``: increase() extrapolates to the window's edges, which on a run of tens of
seconds is several percent off, while the difference of two scrapes of a counter that
did not reset is exact.
"""

from __future__ import annotations

import ast
import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from .errors import PrometheusError

COUNTERS = ("delivered_total", "failed_delivery_count", "accepted_total")
HISTOGRAM = "message_latency_seconds_bucket"
QUERY_TIMEOUT_S = 10


@dataclass(frozen=True)
class Window:
    start_s: float  # unix seconds
    end_s: float


class ServiceMetrics:
    """PromQL against one Prometheus, for the series matching ``selector``
    (label matchers without braces, e.g. ``job="dd_target"``)."""

    def __init__(self, url: str, selector: str) -> None:
        self.url = url.rstrip("/")
        self.selector = selector
        # One quick retry: a down Prometheus must fail in seconds, not after backoffs.
        self._client = PrometheusConnect(
            self.url, disable_ssl=True, retry=Retry(total=1, backoff_factor=0.1)
        )

    def _sel(self, metric: str, extra: str = "") -> str:
        matchers = ",".join(m for m in (self.selector, extra) if m)
        return f"{metric}{{{matchers}}}"

    def query(self, promql: str, at_s: float | None = None) -> list[dict]:
        """An instant query; PrometheusError (one line) when down or refused."""
        params = {"time": f"{at_s:.3f}"} if at_s is not None else None
        try:
            return self._client.custom_query(promql, params=params, timeout=QUERY_TIMEOUT_S)
        except Exception as exc:
            raise PrometheusError(_reason(self.url, promql, exc)) from None

    def query_range(self, promql: str, window: Window, step_s: float) -> list[dict]:
        try:
            return self._client.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(window.start_s, UTC),
                end_time=datetime.fromtimestamp(window.end_s, UTC),
                step=duration(step_s),
                timeout=QUERY_TIMEOUT_S,
            )
        except Exception as exc:
            raise PrometheusError(_reason(self.url, promql, exc)) from None

    def scalar(self, promql: str, at_s: float | None = None) -> float | None:
        """The single value of ``promql`` (summed when several series), None if empty."""
        rows = self.query(promql, at_s)
        if not rows:
            return None
        return sum(float(row["value"][1]) for row in rows)

    def last_scrape_s(self) -> float | None:
        """When Prometheus last scraped the target successfully (unix seconds)."""
        return self.scalar(f"max(timestamp({self._sel('up')} == 1))")

    def counters_at(self, at_s: float, lookback_s: float) -> dict[str, float] | None:
        """Counter values (and latency buckets as ``le:<bound>``) at ``at_s`` from the
        newest sample no older than ``lookback_s``; None when there is none."""
        span = duration(lookback_s)
        up = self.scalar(f"max(last_over_time({self._sel('up')}[{span}]))", at_s)
        if not up:
            return None
        out = {}
        for name in COUNTERS:
            out[name] = self.scalar(f"sum(last_over_time({self._sel(name)}[{span}]))", at_s) or 0.0
        buckets = self.query(f"sum by (le) (last_over_time({self._sel(HISTOGRAM)}[{span}]))", at_s)
        for row in buckets:
            out[f"le:{row['metric']['le']}"] = float(row["value"][1])
        return out

    def max_over(self, metric: str, window: Window) -> float | None:
        span = duration(window.end_s - window.start_s)
        return self.scalar(f"max(max_over_time({self._sel(metric)}[{span}]))", window.end_s)

    def last(self, metric: str, at_s: float) -> float | None:
        return self.scalar(f"max(last_over_time({self._sel(metric)}[1m]))", at_s)

    def rss_series(self, window: Window, step_s: float) -> dict[str, list[tuple[float, float]]]:
        """Resident memory per target process (``process`` label), from the target's
        per-process gauge, or the scraped process's own when the service has no such gauge."""
        rows = self.query_range(
            f"sum by (process) ({self._sel('target_process_resident_memory_bytes')})",
            window,
            step_s,
        )
        if not rows:
            rows = self.query_range(
                f"sum({self._sel('process_resident_memory_bytes')})", window, step_s
            )
        return {
            row["metric"].get("process", "process"): [
                (float(t), float(v)) for t, v in row["values"]
            ]
            for row in rows
        }

    def k6_total(self, metric: str, testid: str | None, at_s: float) -> float | None:
        """A k6 counter pushed by remote write (k6 tags become labels)."""
        sel = f'{metric}{{testid="{testid}"}}' if testid else metric
        return self.scalar(f"sum(last_over_time({sel}[5m]))", at_s)


def duration(seconds: float) -> str:
    """A PromQL duration (integer units only in Prometheus 2.x)."""
    return f"{max(int(seconds * 1000), 1)}ms"


def _reason(url: str, promql: str, exc: Exception) -> str:
    text = str(exc)
    if "HTTP Status Code" in text:
        # prometheus-api-client puts the body's repr in its message; the API's own
        # {"error": "..."} is the useful part, kept on one line.
        detail = text
        with contextlib.suppress(Exception):
            body = ast.literal_eval(text[text.index("(b") + 1 : text.rindex(")")])
            detail = json.loads(body)["error"]
        return f"Prometheus at {url} refused the query {promql!r}: {' '.join(detail.split())}"
    kind = type(exc).__name__
    return f"Prometheus at {url} is unreachable ({kind}); is it running?"
