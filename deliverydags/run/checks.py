"""The gates one run must hold: ledger limits plus k6's own thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deliverydags.run.settings import Gates


@dataclass(frozen=True)
class Check:
    """One pass/fail verdict of a run. In the result JSON it is a "gates" entry,
    {"name", "passed", "observed", "limit"}: ``to_json`` and ``from_json`` are that edge."""

    name: str
    passed: bool
    observed: object
    limit: object

    def __post_init__(self) -> None:
        object.__setattr__(self, "passed", bool(self.passed))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "observed": self.observed,
            "limit": self.limit,
        }

    @classmethod
    def from_json(cls, d: dict) -> Check:
        return cls(d["name"], d["passed"], d.get("observed"), d.get("limit"))


def error_rate(counts: dict) -> float | None:
    """Messages not accepted (rejected or unanswered) over messages attempted."""
    attempted = counts["attempted"]
    return (counts["rejected"] + counts["indeterminate"]) / attempted if attempted else None


def evaluate_gates(
    ledger: dict, limits: Gates, k6_thresholds: list[dict], k6_crossed: bool
) -> list[dict]:
    """Each gate as {name, passed, observed, limit} (``Check.to_json``). A run that sent
    nothing, or measured no latency, fails rather than passing vacuously."""
    return [c.to_json() for c in evaluate_checks(ledger, limits, k6_thresholds, k6_crossed)]


def evaluate_checks(
    ledger: dict, limits: Gates, k6_thresholds: list[dict], k6_crossed: bool
) -> list[Check]:
    """The run's checks, see ``evaluate_gates``."""
    counts = ledger["counts"]
    p95 = (ledger.get("latency_ms") or {}).get("p95")
    err = error_rate(counts)
    crossed = [t for t in k6_thresholds if not t["passed"]]
    return [
        *_v1_checks(counts, p95, err, crossed, k6_crossed, limits),
        *_soak_checks(ledger, limits),
    ]


def _v1_checks(
    counts: dict,
    p95: float | None,
    err: float | None,
    crossed: list,
    k6_crossed: bool,
    limits: Gates,
) -> list[Check]:
    return [
        Check("messages_sent", counts["attempted"] > 0, counts["attempted"], "> 0"),
        Check("zero_loss", counts["lost"] <= limits.max_lost, counts["lost"], limits.max_lost),
        Check(
            "zero_failed",
            counts["failed"] <= limits.max_failed,
            counts["failed"],
            limits.max_failed,
        ),
        Check(
            "p95_latency_ms",
            p95 is not None and p95 < limits.p95_latency_ms,
            p95,
            limits.p95_latency_ms,
        ),
        Check(
            "error_rate",
            err is not None and err < limits.max_error_rate,
            err,
            limits.max_error_rate,
        ),
        Check(
            "k6_thresholds",
            not k6_crossed and not crossed,
            [f"{t['metric']} {t['threshold']}" for t in crossed],
            "none crossed",
        ),
    ]


def _soak_checks(ledger: dict, limits: Gates) -> list[Check]:
    """The optional limits that are set, each a check."""
    counts, latency = ledger["counts"], ledger.get("latency_ms") or {}
    out = []
    if limits.max_out_of_order is not None:
        n = counts["out_of_order"]
        out.append(
            Check("zero_out_of_order", n <= limits.max_out_of_order, n, limits.max_out_of_order)
        )
    if limits.max_duplicate_rate is not None:
        rate = counts["duplicates"] / counts["accepted"] if counts["accepted"] else None
        out.append(
            Check(
                "duplicate_rate",
                rate is not None and rate <= limits.max_duplicate_rate,
                rate,
                limits.max_duplicate_rate,
            )
        )
    for name, limit in (("p50", limits.p50_latency_ms), ("p99", limits.p99_latency_ms)):
        if limit is not None:
            value = latency.get(name)
            out.append(
                Check(f"{name}_latency_ms", value is not None and value < limit, value, limit)
            )
    return out
