"""chaos_consumer_kill end to end: a real SIGKILL of a consumer process of the reference
target on its own redis-server; with reclaiming on nothing is lost and delivery recovers
within 30 s, with it switched off the checks fail."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from deliverydags.defs.assets.catalog import SCENARIO_ASSETS
from deliverydags.scenarios.chaos_consumer_kill import CHECKS
from tests.support.chaos import BASE, TARGET, checks, materialize, metadata, no_orphans, stored

chaos_consumer_kill = SCENARIO_ASSETS["chaos_consumer_kill"]

pytestmark = pytest.mark.integration

NAME = "chaos_consumer_kill"


def test_killed_consumer_entries_are_reclaimed_with_zero_loss_within_30_s(tmp_path: Path) -> None:
    result = materialize(chaos_consumer_kill, tmp_path, {**BASE, "target_args": TARGET})
    meta = metadata(result, NAME)
    assert checks(result) == dict.fromkeys(CHECKS, True), meta
    assert result.success
    assert meta["fault"] == "consumer_kill" and meta["signal"] == "SIGKILL"
    assert meta["pending_at_kill"] >= 5  # the kill landed on work in flight ...
    assert not psutil.pid_exists(meta["killed_pid"]) or (
        psutil.Process(meta["killed_pid"]).status() == psutil.STATUS_ZOMBIE
    )
    assert meta["consumer_restarted"] is True
    assert meta["lost"] == 0 == meta["count_lost"]
    assert meta["count_delivered"] + meta["count_late"] == meta["count_accepted"] > 2000
    if meta["time_to_detect_s"] is None:
        # Nothing went overdue: the victim's entries were taken over within the latency
        # bound (seen when the kill fell between its receipts' POST and its XACK).
        assert meta["time_to_recover_s"] == 0
    else:  # ... its entries went overdue: noticed, and recovered well within the limit.
        assert 0 <= meta["time_to_detect_s"] < 5
        assert 0 <= meta["time_to_recover_s"] <= 30
    assert meta["duplicates"] == meta["count_duplicates"] and meta["dlq"] == 0
    assert meta["injected_at"] == meta["released_at"]  # instantaneous
    print({k: v for k, v in meta.items() if k not in ("report", "result")})
    row = stored(tmp_path, NAME)
    assert row is not None and row["chaos"]["time_to_recover_s"] == meta["time_to_recover_s"]
    no_orphans()


def test_reclaim_switched_off_makes_the_checks_fail(tmp_path: Path) -> None:
    config = {**BASE, "target_args": [*TARGET, "--no-reclaim"]}
    result = materialize(chaos_consumer_kill, tmp_path, config)
    meta = metadata(result, NAME)
    assert meta["pending_at_kill"] >= 5
    # The dead consumer's batch is never delivered: lost by the ledger, never recovered.
    assert meta["lost"] > 0 and meta["pending_left"] > 0
    assert meta["time_to_recover_s"] is None
    assert checks(result) == {"zero_loss": False, "recovered_within_s": False}
    assert not result.success
    no_orphans()


def test_hung_consumer_entries_are_taken_over_by_xautoclaim(tmp_path: Path) -> None:
    # SIGSTOP: the process stays, so no restart re-reads its pending list; only another
    # consumer's XAUTOCLAIM (after --claim-idle-s) can deliver what it holds.
    config = {
        **BASE,
        "signal": "SIGSTOP",
        "hold_s": 10.0,
        "target_args": [*TARGET, "--claim-idle-s", "3"],
    }
    result = materialize(chaos_consumer_kill, tmp_path, config)
    meta = metadata(result, NAME)
    print({k: v for k, v in meta.items() if k not in ("report", "result")})
    assert checks(result) == dict.fromkeys(CHECKS, True), meta
    assert meta["signal"] == "SIGSTOP" and meta["consumer_restarted"] is False
    assert meta["reclaim_log_lines"] >= 1
    assert meta["lost"] == 0
    no_orphans()
