"""Writes docs/examples/history/: three weeks of nightly message_soak results (contract v1
JSON, as `deliverydags run --json` writes them) for the README's review commands. The
last four nights' p95 latency steps up by a third, so `deliverydags trend` finds it.

    .venv/bin/python docs/examples/make_history.py
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "history"
FIRST_NIGHT = date(2026, 11, 1)
NIGHTS = 21
STEP_FROM = 17  # nights from here on are slower


def night_result(night: date, rng: np.random.Generator, slow: bool) -> dict:
    accepted = 900_000
    lost = int(rng.poisson(40))
    late = int(rng.poisson(150))
    p95 = rng.normal(80.0 if slow else 60.0, 2.0)
    latency = {
        "p50": round(p95 * 0.45, 3),
        "p95": round(p95, 3),
        "p99": round(p95 * 1.6, 3),
        "max": round(p95 * 4.0, 3),
    }
    counts = {
        "attempted": accepted,
        "accepted": accepted,
        "rejected": 0,
        "indeterminate": 0,
        "delivered": accepted - lost - late,
        "late": late,
        "failed": 0,
        "lost": lost,
        "recovered": 0,
        "unseen": 0,
        "duplicates": int(rng.poisson(300)),
        "unexpected": 0,
        "out_of_order": int(rng.poisson(20)),
        "bad_signature": 0,
    }
    day = night.isoformat()
    return {
        "scenario": "message_soak",
        "target_url": "http://127.0.0.1:8080",
        "started_at": f"{day}T02:10:05.000Z",
        "finished_at": f"{day}T02:55:10.000Z",
        "rate": 500.0,
        "duration_s": 1800.0,
        "deadlines_s": [30.0, 300.0, 900.0],
        "counts": counts,
        "rejected_by_status": {},
        "late_by_deadline": {"300": late, "900": 0},
        "latency_ms": latency,
        "delivery_rate": (accepted - lost) / accepted,
        "gates": [
            {"name": "zero_loss", "passed": lost == 0, "observed": lost, "limit": 0},
            {
                "name": "p95_latency_ms",
                "passed": p95 < 100,
                "observed": latency["p95"],
                "limit": 100.0,
            },
        ],
        "status": "passed" if lost == 0 else "failed",
        "samples": {"lost": [], "duplicates": [], "out_of_order": [], "unexpected": []},
    }


def main() -> None:
    rng = np.random.default_rng(20261101)
    OUT.mkdir(exist_ok=True)
    for i in range(NIGHTS):
        night = FIRST_NIGHT + timedelta(days=i)
        doc = night_result(night, rng, slow=i >= STEP_FROM)
        (OUT / f"message_soak-{night}.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
