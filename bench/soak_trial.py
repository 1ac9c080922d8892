"""One message_soak run for the rate benchmarks (bench_overhead, bench_monitoring,
bench_pg_dependency): fresh secrets, k6 against a target and collector the caller started,
and the verdict every rate benchmark uses."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from deliverydags import procs
from deliverydags.run.k6 import K6Outcome, run_k6
from deliverydags.run.settings import K6_DIR


def trial_env() -> dict[str, str]:
    """A fresh target token and callback secret (collector.start and target.start add the
    allowlisted rest of the environment; nothing else of ours reaches them)."""
    return {
        "DELIVERYDAGS_TARGET_TOKEN": secrets.token_hex(8),
        "DELIVERYDAGS_CALLBACK_SECRET": secrets.token_hex(8),
    }


def run_soak(
    run_dir: Path,
    rate: int,
    seconds: int,
    env: Mapping[str, str],
    target_url: str,
    collector_url: str,
    *,
    accounting: bool = True,
    k6_args: Sequence[str] = (),
    k6_env: Mapping[str, str] | None = None,
) -> K6Outcome:
    """message_soak.js at ``rate`` for ``seconds``; send records go to sends.ndjson."""
    return run_k6(
        K6_DIR / "message_soak.js",
        env={  # k6 holds the target token only, never the callback secret
            **procs.child_env({"DELIVERYDAGS_TARGET_TOKEN": env["DELIVERYDAGS_TARGET_TOKEN"]}),
            "DD_TARGET_URL": target_url,
            "DD_RATE": str(rate),
            "DD_DURATION_S": str(seconds),
            "DD_RUN_ID": run_dir.name,
            "DD_COLLECTOR_URL": collector_url,
            "DD_ACCOUNTING": "on" if accounting else "off",
            **(k6_env or {}),
        },
        extra_args=k6_args,
        work_dir=run_dir,
        timeout_s=seconds + 120,
        log=lambda _m: None,
        console_output=run_dir / "sends.ndjson",
    )


def judge(outcome: K6Outcome, rate: int, seconds: int) -> tuple[bool, str, dict]:
    """Sustained (k6 dropped <= 1% of the planned messages, <= 0.1% not accepted)?, a note
    for the log, and k6's summary metrics."""
    metrics = (outcome.summary or {}).get("metrics", {})
    planned = rate * seconds
    dropped = metrics.get("dropped_iterations", {}).get("values", {}).get("count", 0)
    errors = metrics.get("dd_errors", {}).get("values", {}).get("rate", 1.0)
    ok = dropped <= planned * 0.01 and errors <= 0.001
    return ok, f"dropped {dropped:.0f}/{planned}, not accepted {errors:.4%}", metrics
