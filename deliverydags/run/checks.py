"""The gates one run must hold: ledger limits plus k6's own thresholds."""

from __future__ import annotations

from deliverydags.run.settings import Gates


def error_rate(counts: dict) -> float | None:
    """Messages not accepted (rejected or unanswered) over messages attempted."""
    attempted = counts["attempted"]
    return (counts["rejected"] + counts["indeterminate"]) / attempted if attempted else None


def evaluate_gates(
    ledger: dict, limits: Gates, k6_thresholds: list[dict], k6_crossed: bool
) -> list[dict]:
    """Each gate as {name, passed, observed, limit}. A run that sent nothing, or measured
    no latency, fails rather than passing vacuously."""
    counts = ledger["counts"]
    p95 = (ledger.get("latency_ms") or {}).get("p95")
    err = error_rate(counts)
    crossed = [t for t in k6_thresholds if not t["passed"]]
    return [
        _gate("messages_sent", counts["attempted"] > 0, counts["attempted"], "> 0"),
        _gate("zero_loss", counts["lost"] <= limits.max_lost, counts["lost"], limits.max_lost),
        _gate(
            "zero_failed",
            counts["failed"] <= limits.max_failed,
            counts["failed"],
            limits.max_failed,
        ),
        _gate(
            "p95_latency_ms",
            p95 is not None and p95 < limits.p95_latency_ms,
            p95,
            limits.p95_latency_ms,
        ),
        _gate(
            "error_rate",
            err is not None and err < limits.max_error_rate,
            err,
            limits.max_error_rate,
        ),
        _gate(
            "k6_thresholds",
            not k6_crossed and not crossed,
            [f"{t['metric']} {t['threshold']}" for t in crossed],
            "none crossed",
        ),
    ]


def _gate(name: str, passed: bool, observed: object, limit: object) -> dict:
    return {"name": name, "passed": bool(passed), "observed": observed, "limit": limit}
