"""The service's figures beside the ledger's, for people (markdown) and for plots
(numeric ``service_*`` metadata entries). Pure: the asset wraps them for Dagster."""

from __future__ import annotations

import math


def numbers(prom: dict) -> dict[str, float | int]:
    """Numeric ``service_*`` entries (absent figures are left out, never 'n/a')."""
    svc = prom.get("service") or {}
    out: dict[str, float | int] = {}
    for key in ("delivered", "failed", "accepted"):
        if svc.get(key) is not None:
            out[f"service_{key}"] = int(svc[key])
    for key in ("delivery_rate_percentage", "max_consumer_lag", "max_dlq_depth", "rss_max_bytes"):
        value = svc.get(key)
        if value is not None and math.isfinite(value):
            out[f"service_{key}"] = float(value)
    for name, value in (svc.get("latency_ms") or {}).items():
        if value is not None:
            out[f"service_latency_{name}_ms"] = float(value)
    k6 = prom.get("k6_remote_write") or {}
    if k6.get("http_reqs_total") is not None:
        out["service_k6_http_reqs_remote_write"] = float(k6["http_reqs_total"])
    return out


def markdown(prom: dict, result: dict) -> str:
    """A "ledger vs service" table, or the one-line reason there is none."""
    if prom.get("error"):
        return f"**Service metrics unavailable:** {prom['error']}"
    svc = prom.get("service") or {}
    c = result["counts"]
    lat = result.get("latency_ms") or {}
    led_rate = result.get("delivery_rate")
    rows = [
        ("delivered (+late +recovered)", c["delivered"] + c["late"] + c["recovered"],
         svc.get("delivered")),
        ("failed", c["failed"], svc.get("failed")),
        ("delivery rate %", None if led_rate is None else 100 * led_rate,
         svc.get("delivery_rate_percentage")),
        ("latency p50 ms", lat.get("p50"), (svc.get("latency_ms") or {}).get("p50")),
        ("latency p95 ms", lat.get("p95"), (svc.get("latency_ms") or {}).get("p95")),
        ("latency p99 ms", lat.get("p99"), (svc.get("latency_ms") or {}).get("p99")),
        ("max consumer lag", None, svc.get("max_consumer_lag")),
        ("max DLQ depth", None, svc.get("max_dlq_depth")),
        ("max RSS MiB", None, _mib(svc.get("rss_max_bytes"))),
    ]  # fmt: skip
    lines = ["| figure | ledger | service |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {_fmt(a)} | {_fmt(b)} |" for name, a, b in rows]
    k6 = prom.get("k6_remote_write") or {}
    if k6.get("enabled"):
        seen = "arrived" if k6.get("present") else "MISSING"
        lines.append(
            f"\nk6 metrics by remote write: {seen} (http_reqs {_fmt(k6.get('http_reqs_total'))})"
        )
    bucket = svc.get("p95_bucket_ms")
    lines.append(
        f"\nService latency: accepted → receipt acknowledged (p95 in bucket {bucket} ms); "
        "ledger: k6 send → collector receipt."
    )
    return "\n".join(lines)


def error(result: dict) -> str:
    """Why the run has no service report: the Prometheus hook's error."""
    return (result.get("prometheus") or {}).get("error", "no report from Prometheus")


def _mib(value: float | None) -> float | None:
    return None if value is None else value / 2**20


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if math.isfinite(value) else "—"
    return f"{value:,}" if isinstance(value, int) else str(value)
