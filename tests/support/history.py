"""Synthetic nights for a temp results store: stored result documents, the resources the
review assets run with, a latency series with a step in it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np

from deliverydags.defs.resources import (
    ActionWebhookResource,
    DeliveryTargetResource,
    K6Resource,
    PagerDutyResource,
    PrometheusResource,
    ResultsStoreResource,
    SlackResource,
)
from deliverydags.history.store import ResultsStore

START = date(2025, 3, 3)  # a Monday


def night(i: int) -> str:
    return (START + timedelta(days=i)).isoformat()


def result_doc(
    n: str,
    rate: float = 0.999,
    p95: float = 120.0,
    accepted: int = 100_000,
    by_variant: dict | None = None,
    **extra: object,
) -> dict:
    """A stored nightly result (contract v1 fields + status, run_id, by_variant)."""
    delivered = round(accepted * rate)
    return {
        "scenario": "message_soak",
        "target_url": "http://127.0.0.1:1",
        "started_at": f"{n}T02:10:00.000Z",
        "finished_at": f"{n}T02:40:00.000Z",
        "rate": 500,
        "duration_s": 1800,
        "deadlines_s": [30, 300, 900],
        "counts": {
            "attempted": accepted,
            "accepted": accepted,
            "rejected": 0,
            "indeterminate": 0,
            "delivered": delivered,
            "late": 0,
            "failed": 0,
            "lost": accepted - delivered,
            "recovered": 0,
            "unseen": 0,
            "duplicates": 40,
            "unexpected": 0,
            "out_of_order": 12,
            "bad_signature": 0,
        },
        "latency_ms": {"p50": 40.0, "p95": float(p95), "p99": 250.0, "max": 400.0},
        "delivery_rate": delivered / accepted,
        "gates": [{"name": "zero_loss", "passed": delivered == accepted}],
        "status": "passed",
        "run_id": f"run-{n}",
        "by_variant": by_variant or {"": {"attempted": accepted, "accepted": accepted}},
        **extra,
    }


def seed(data_dir: Path, docs: list[dict]) -> ResultsStore:
    store = ResultsStore(data_dir / "results.duckdb")
    store.save_many([(d["started_at"][:10], d) for d in docs])
    return store


def resources(data_dir: Path, **overrides: object) -> dict:
    return {
        "results": ResultsStoreResource(data_dir=str(data_dir)),
        "slack": SlackResource(),
        "pagerduty": PagerDutyResource(),
        "action_webhook": ActionWebhookResource(),
        "k6": K6Resource(),
        "target": DeliveryTargetResource(),
        "prometheus": PrometheusResource(),
        **overrides,
    }


def stepped_p95(n: int, at: int, step: float, seed_: int = 4) -> np.ndarray:
    x = 100 * np.random.default_rng(seed_).lognormal(0, 0.01, n)
    x[at:] *= 1 + step
    return x
