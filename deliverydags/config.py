"""Settings read from the environment, and the defaults they fall back to: read here, used
by the Dagster wiring and the command line alike.

Each DELIVERYDAGS_* variable is named once below. An empty value counts as unset (so
``VAR= deliverydags run`` means the default, in the CLI and in Dagster alike). Plain
Python: the wiring turns the names into ``dg.EnvVar`` so that secrets reach resources by
name, never as values in config, argv, logs or metadata."""

from __future__ import annotations

import os
from pathlib import Path

# The system under test (unset URL: the bundled reference target).
TARGET_URL = "DELIVERYDAGS_TARGET_URL"
TARGET_TOKEN = "DELIVERYDAGS_TARGET_TOKEN"  # secret
TENANT_TOKENS = "DELIVERYDAGS_TENANT_TOKENS"  # secret: tenant:token,tenant2:token2 (v1.1)
CALLBACK_SECRET = "DELIVERYDAGS_CALLBACK_SECRET"  # secret: signs delivery receipts
COLLECTOR_ADDR = "DELIVERYDAGS_COLLECTOR_ADDR"
COLLECTOR_URL = "DELIVERYDAGS_COLLECTOR_URL"
REDIS_URL = "DELIVERYDAGS_REDIS_URL"  # may carry a password: env, never argv
K6_DIR = "DELIVERYDAGS_K6_DIR"
# Service metrics.
PROMETHEUS_URL = "DELIVERYDAGS_PROMETHEUS_URL"
PROMETHEUS_SELECTOR = "DELIVERYDAGS_PROMETHEUS_SELECTOR"
METRICS_URL = "DELIVERYDAGS_METRICS_URL"
# Results store and run files.
DATA_DIR = "DELIVERYDAGS_DATA_DIR"
# Notifications and the gate's action webhook.
SLACK_TOKEN = "DELIVERYDAGS_SLACK_TOKEN"  # secret
SLACK_CHANNEL = "DELIVERYDAGS_SLACK_CHANNEL"
SLACK_BASE_URL = "DELIVERYDAGS_SLACK_BASE_URL"
PAGERDUTY_ROUTING_KEY = "DELIVERYDAGS_PAGERDUTY_ROUTING_KEY"  # secret
PAGERDUTY_URL = "DELIVERYDAGS_PAGERDUTY_URL"
ACTION_SECRET = "DELIVERYDAGS_ACTION_SECRET"  # secret: signs action webhook calls
# The CLI: re-raise unexpected errors with their traceback.
DEBUG = "DELIVERYDAGS_DEBUG"

DEFAULT_DATA_DIR = "data"
# The nightly soak: its k6 script, its asset and the scenario its results are stored under.
SOAK_SCENARIO = "message_soak"
DEFAULT_COLLECTOR_ADDR = "127.0.0.1:0"  # loopback, any free port
# The seed's webhook timeouts (contract v1: "Deadlines").
DEFAULT_DEADLINES_S = (30.0, 300.0, 900.0)
# Tonight's delivery rate below this is a critical alert: PagerDuty, and the phase gate
# rolls back.
CRITICAL_DELIVERY_RATE = 0.95


def env(name: str) -> str | None:
    """The variable's value; None when unset or empty."""
    return os.environ.get(name) or None


def is_set(name: str) -> bool:
    return env(name) is not None


def data_dir() -> Path:
    """Results (results.duckdb) and each run's files: $DELIVERYDAGS_DATA_DIR, else ./data."""
    return Path(env(DATA_DIR) or DEFAULT_DATA_DIR)
