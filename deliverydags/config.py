"""Settings read from the environment, and the defaults they fall back to: read here, used
by the Dagster wiring and the command line alike."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA_DIR = "data"
# The seed's webhook timeouts (contract v1: "Deadlines").
DEFAULT_DEADLINES_S = (30.0, 300.0, 900.0)
# Tonight's delivery rate below this is a critical alert: PagerDuty, and the phase gate
# rolls back.
CRITICAL_DELIVERY_RATE = 0.95


def data_dir() -> Path:
    """Results (results.duckdb) and each run's files: $DELIVERYDAGS_DATA_DIR, else ./data."""
    return Path(os.environ.get("DELIVERYDAGS_DATA_DIR") or DEFAULT_DATA_DIR)
