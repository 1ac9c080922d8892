"""PrometheusHook: a Prometheus scraping the target during the run (and receiving k6's
metrics by remote write); its report puts the service's SLIs beside the ledger's."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from deliverydags.run.checks import Check
from deliverydags.run.hooks import HookReport, RunContext, RunHook

from . import compare, memory, service_gates
from .errors import PrometheusError
from .queries import COUNTERS, HISTOGRAM, ServiceMetrics, Window, duration
from .server import JOB, PrometheusServer
from .service_gates import ServiceGate

SCRAPE_WAIT_S = 10.0  # after the load: discovery (~5 s) plus a scrape or two
K6_TREND_STATS = "p(50),p(95),p(99),max"


@dataclass(frozen=True)
class MemoryCheck:
    """``memory_growth`` gate: RSS growth after the warm-up below ``limit`` (fraction)."""

    limit: float = 0.10
    warmup_fraction: float = 0.25


class PrometheusHook(RunHook):
    """Use as a context manager around ``run_check`` so the managed server stops with the
    run whatever happens. ``url`` set: an existing Prometheus (it must scrape the target
    itself, matched by ``selector``); else a private one under ``work_dir``. A server that
    cannot start or answer never stops the run: the report carries the one-line reason
    and a failed ``service_metrics_agree`` gate, the ledger's figures stand."""

    name = "prometheus"

    def __init__(
        self,
        work_dir: Path,
        *,
        url: str | None = None,
        selector: str | None = None,
        metrics_url: str | None = None,
        binary: str | None = None,
        remote_write: bool = True,
        run_id: str | None = None,
        scrape_interval_s: float = 1.0,
        memory_check: MemoryCheck | None = None,
        service_gates: Sequence[ServiceGate] = (),
    ) -> None:
        self.server = None if url else PrometheusServer(work_dir, binary, scrape_interval_s)
        self.url = url
        self.selector = selector or f'job="{JOB}"'
        self.metrics_url = metrics_url
        self.remote_write = remote_write
        self.run_id = run_id
        self.interval_s = scrape_interval_s
        self.memory_check = memory_check
        self.service_gates = tuple(service_gates)
        self.error: str | None = None
        self.metrics: ServiceMetrics | None = None
        self._direct_start: dict[str, float] | None = None
        self._end_s: float | None = None

    # -- lifetime -----------------------------------------------------------------------
    def __enter__(self) -> PrometheusHook:
        try:
            if self.server is not None:
                self.url = self.server.start().url
            self.metrics = ServiceMetrics(self.url or "", self.selector)
        except PrometheusError as exc:
            self.error = str(exc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def describe(self) -> str:
        where = "managed" if self.server is not None else "external"
        return f"{where} Prometheus at {self.url}" if not self.error else self.error

    # -- RunHook ------------------------------------------------------------------------
    def k6_args(self) -> list[str]:
        if not (self.remote_write and self.metrics and not self.error):
            return []
        tag = ["--tag", f"testid={self.run_id}"] if self.run_id else []
        return ["-o", "experimental-prometheus-rw", *tag]

    def k6_env(self) -> dict[str, str]:
        if not (self.remote_write and self.metrics and not self.error):
            return {}
        return {
            "K6_PROMETHEUS_RW_SERVER_URL": f"{self.url}/api/v1/write",
            "K6_PROMETHEUS_RW_PUSH_INTERVAL": f"{self.interval_s:g}s",
            "K6_PROMETHEUS_RW_TREND_STATS": K6_TREND_STATS,
        }

    def before_load(self, ctx: RunContext) -> None:
        if self.error:
            return
        url = self.metrics_url or ctx.target_url.rstrip("/") + "/metrics"
        if self.server is not None:
            try:
                self.server.scrape(url)
            except PrometheusError as exc:
                self.error = str(exc)
                return
        # Prometheus discovers a new target only after ~5 s (it batches discovery updates),
        # so the counters' values at load start are also read once from the same /metrics:
        # they are the baseline when Prometheus has no sample from before the load.
        self._direct_start = _read_counters(url)

    def after_load(self, ctx: RunContext) -> None:
        """The target is still up: wait for one scrape after the books closed."""
        if self.error or self.metrics is None:
            return
        ran_s = ((ctx.load_ended_ns or 0) - (ctx.load_started_ns or 0)) / 1e9
        if ran_s < ctx.settings.duration_s:
            # Stopped early (terminate, Ctrl-C): the run is aborted, don't hold it up.
            self.error = "the load was stopped before its end; no service metrics read"
            return
        closed_s = time.time()
        deadline = time.monotonic() + SCRAPE_WAIT_S + 2 * self.interval_s
        try:
            while time.monotonic() < deadline:
                last = self.metrics.last_scrape_s()
                if last is not None and last >= closed_s:
                    self._end_s = last
                    return
                time.sleep(self.interval_s / 4)
        except PrometheusError as exc:
            self.error = str(exc)
            return
        self.error = f"Prometheus at {self.url} did not scrape the target after the load"

    def report(self, ctx: RunContext, result: dict) -> HookReport:
        data: dict = {"url": self.url, "selector": self.selector}
        gates: list[dict] = []
        try:
            if self.error:
                raise PrometheusError(self.error)
            assert self.metrics is not None and self._end_s is not None
            start_s = (ctx.load_started_ns or 0) / 1e9
            window = Window(start_s, self._end_s)
            data.update(self._slis(window))
            rows = compare.compare(data["service"], result)
            data["comparison"] = rows
            gates.append(compare.agreement_gate(rows))
            if self.memory_check is not None:
                load_end_s = (ctx.load_ended_ns or 0) / 1e9
                data["memory"], gate = self._memory(Window(start_s, load_end_s))
                gates.append(gate)
            gates += self._service_gates(window)
        except PrometheusError as exc:
            ctx.log(f"prometheus: {exc}")
            data["error"] = str(exc)
            gates.append(_failed("service_metrics_agree", str(exc), compare.TOLERANCE))
            if self.memory_check is not None:
                gates.append(_failed("memory_growth", str(exc), self.memory_check.limit))
            if self.service_gates:
                failed = [g.check(None) for g in self.service_gates]
                gates += [_failed(c.name, str(exc), c.limit) for c in failed]
                gates.append(_failed(service_gates.SUMMARY, str(exc), "every service gate"))
        return HookReport(data, gates)

    def _service_gates(self, window: Window) -> list[dict]:
        """The user's PromQL gates over the run's window, and their summary."""
        if not self.service_gates:
            return []
        assert self.metrics is not None
        span = duration(window.end_s - window.start_s)
        checks = [
            g.check(self.metrics.scalar(g.promql(self.selector, span), window.end_s))
            for g in self.service_gates
        ]
        return [c.to_json() for c in (*checks, service_gates.summary(checks))]

    # -- queries ------------------------------------------------------------------------
    def _slis(self, window: Window) -> dict:
        m = self.metrics
        assert m is not None
        end = m.counters_at(window.end_s, 2 * self.interval_s)
        if end is None:
            raise PrometheusError(
                f"Prometheus at {self.url} has no sample of the target ({self.selector}) "
                "at the end of the run"
            )
        start = m.counters_at(window.start_s, 2 * self.interval_s)
        source = "prometheus"
        if start is None:
            start, source = self._direct_start, "target /metrics at load start"
        if start is None:
            raise PrometheusError("no counter values from the start of the load")
        k6_reqs = m.k6_total("k6_http_reqs_total", self.run_id, window.end_s)
        return {
            "window": {"start_s": window.start_s, "end_s": window.end_s},
            "baseline_source": source,
            "service": {
                **compare.service_slis(start, end),
                "delivery_rate_percentage_gauge": m.last("delivery_rate_percentage", window.end_s),
                "max_consumer_lag": m.max_over("consumer_lag", window),
                "max_dlq_depth": m.max_over("dlq_depth", window),
                "rss_max_bytes": m.max_over("process_resident_memory_bytes", window),
            },
            "k6_remote_write": {
                "enabled": bool(self.k6_args()),
                "http_reqs_total": k6_reqs,
                "present": k6_reqs is not None and k6_reqs > 0,
            },
        }

    def _memory(self, window: Window) -> tuple[dict, dict]:
        assert self.metrics is not None and self.memory_check is not None
        series = self.metrics.rss_series(window, self.interval_s)
        if not series:
            raise PrometheusError(f"no RSS series of the target in Prometheus at {self.url}")
        out = memory.growth(series, window.start_s, window.end_s, self.memory_check.warmup_fraction)
        limit = self.memory_check.limit
        grew = out["growth"]
        if grew is None:
            raise PrometheusError("too few RSS samples after the warm-up to fit a slope")
        observed = round(grew, 4)
        return out, Check("memory_growth", grew < limit, observed, limit).to_json()


def _failed(name: str, observed: str, limit: object) -> dict:
    return Check(name, False, observed, limit).to_json()


def _read_counters(metrics_url: str) -> dict[str, float] | None:
    """One direct read of the target's counters (same keys as ``counters_at``)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as resp:
            text = resp.read(4 << 20).decode("utf-8", "replace")
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in COUNTERS:
                    out[s.name] = out.get(s.name, 0.0) + s.value
                elif s.name == HISTOGRAM:
                    key = f"le:{s.labels['le']}"
                    out[key] = out.get(key, 0.0) + s.value
        return out
    except Exception:
        return None
