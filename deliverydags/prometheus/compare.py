"""The service's own figures against the ledger's, and the tolerance between them (pure).

What each side measures:
- delivered: the service counts a message when the receipt POST carrying it got a 2xx;
  the ledger counts distinct sent ids with a valid ``delivered`` receipt (delivered +
  late + recovered). Both count each message once, so they must be equal, except that
  a message the service finished twice (redelivered after a reclaim) counts twice there
  and as a duplicate in the ledger: the service may exceed the ledger by at most the
  ledger's duplicates. On top, ``COUNT_SLACK`` of the accepted messages either way for
  the window's edges (a receipt acknowledged between the books closing and the last
  scrape).
- failed: the same, for ``failed`` outcomes.
- latency p95: the service's histogram runs from acceptance to the 2xx of the receipt
  POST; the ledger's from k6's send to the collector's arrival of the receipt. The two
  intervals differ at each end: k6 -> target before acceptance (ledger only), and the
  collector's durable write (fsync) and answer back to the target (service only). That is
  a few ms on loopback, tens of ms when the machine is loaded; the service's side is
  usually the longer. And the histogram only knows which bucket holds its p95. So the
  ledger's p95 must fall inside that bucket's bounds widened by ``LATENCY_ALLOWANCE_MS``.
"""

from __future__ import annotations

import math

from deliverydags.run.checks import Check

COUNT_SLACK = 0.001  # of accepted messages, for the window's edges
LATENCY_ALLOWANCE_MS = 25.0
TOLERANCE = (
    f"counts exact (service delivered may exceed by the ledger's duplicates) "
    f"± {COUNT_SLACK:.1%} of accepted; ledger p95 within the service's p95 histogram "
    f"bucket ± {LATENCY_ALLOWANCE_MS:g} ms"
)


def bucket_deltas(start: dict[str, float], end: dict[str, float]) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) pairs of the window, sorted, from ``le:`` keys."""
    out = []
    for key, value in end.items():
        if key.startswith("le:"):
            out.append((float(key[3:]), value - start.get(key, 0.0)))
    return sorted(out)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile over cumulative buckets (linear within a bucket,
    the first bucket from 0, the +Inf bucket answered by the highest finite bound)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            frac = (rank - lower_count) / width if width else 1.0
            return lower_bound + (bound - lower_bound) * frac
        lower_bound, lower_count = bound, count
    return lower_bound


def bucket_of(value: float, buckets: list[tuple[float, float]]) -> tuple[float, float]:
    """The (lower, upper) bounds of the bucket holding ``value`` (seconds)."""
    lower = 0.0
    for bound, _count in buckets:
        if value <= bound:
            return lower, bound
        lower = bound
    return lower, math.inf


def service_slis(start: dict[str, float], end: dict[str, float]) -> dict:
    """The window's figures from counter values at its start and end."""
    delivered = end.get("delivered_total", 0.0) - start.get("delivered_total", 0.0)
    failed = end.get("failed_delivery_count", 0.0) - start.get("failed_delivery_count", 0.0)
    accepted = end.get("accepted_total", 0.0) - start.get("accepted_total", 0.0)
    buckets = bucket_deltas(start, end)
    out = {
        "accepted": round(accepted),
        "delivered": round(delivered),
        "failed": round(failed),
        "delivery_rate_percentage": (
            100.0 * delivered / (delivered + failed) if delivered + failed else None
        ),
        "latency_ms": {},
        "p95_bucket_ms": None,
    }
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        value = histogram_quantile(q, buckets)
        out["latency_ms"][name] = None if value is None else round(value * 1000, 3)
    p95 = histogram_quantile(0.95, buckets)
    if p95 is not None:
        lo, hi = bucket_of(p95, buckets)
        out["p95_bucket_ms"] = [lo * 1000, None if math.isinf(hi) else hi * 1000]
    return out


def compare(service: dict, ledger: dict) -> list[dict]:
    """One row per figure: service, ledger, excess over the tolerance (0 = agrees)."""
    c = ledger["counts"]
    slack = math.floor(COUNT_SLACK * c["accepted"])
    rows = []
    led_delivered = c["delivered"] + c["late"] + c["recovered"]
    low, high = led_delivered - slack, led_delivered + c["duplicates"] + slack
    rows.append(_count_row("delivered", service["delivered"], led_delivered, low, high))
    rows.append(
        _count_row(
            "failed", service["failed"], c["failed"], c["failed"] - slack, c["failed"] + slack
        )
    )
    led_p95 = (ledger.get("latency_ms") or {}).get("p95")
    bucket = service.get("p95_bucket_ms")
    if led_p95 is not None or bucket is not None:
        rows.append(_latency_row(service["latency_ms"].get("p95"), led_p95, bucket))
    return rows


def _count_row(name: str, service: int, ledger: int, low: int, high: int) -> dict:
    excess = max(low - service, service - high, 0)
    return {"figure": name, "service": service, "ledger": ledger, "allowed": [low, high],
            "excess": excess}  # fmt: skip


def _latency_row(service_p95: float | None, ledger_p95: float | None, bucket) -> dict:
    row = {"figure": "latency_p95_ms", "service": service_p95, "ledger": ledger_p95}
    if ledger_p95 is None or bucket is None:
        # One side saw deliveries and the other none: they cannot agree.
        return {**row, "allowed": None, "excess": math.inf}
    low = max(bucket[0] - LATENCY_ALLOWANCE_MS, 0.0)
    high = math.inf if bucket[1] is None else bucket[1] + LATENCY_ALLOWANCE_MS
    excess = max(low - ledger_p95, ledger_p95 - high, 0.0)
    return {**row, "allowed": [round(low, 3), None if math.isinf(high) else round(high, 3)],
            "excess": round(excess, 3)}  # fmt: skip


def _relative_excess(row: dict) -> float:
    """Excess as a share of the ledger's figure (counts and ms compare), at most 1."""
    if not row["excess"]:
        return 0.0
    if math.isinf(row["excess"]):
        return 1.0
    return min(row["excess"] / max(abs(row["ledger"] or 0), 1), 1.0)


def agreement_gate(rows: list[dict]) -> dict:
    """``service_metrics_agree``: observed is the worst disagreement, limit the tolerance."""
    worst = max(rows, key=_relative_excess)
    off = sum(1 for r in rows if r["excess"])
    if not off:
        observed = "all figures within tolerance"
    else:
        observed = (
            f"{worst['figure']}: service {worst['service']} vs ledger {worst['ledger']} "
            f"(allowed {worst['allowed']})" + (f"; {off - 1} more figure(s) off" if off > 1 else "")
        )
    return Check("service_metrics_agree", worst["excess"] == 0, observed, TOLERANCE).to_json()
