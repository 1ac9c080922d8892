"""chaos_redis_outage end to end: the target's own redis-server is stopped for real
(SIGTERM) mid-load and started again on the same port and data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from deliverydags.defs.assets.catalog import SCENARIO_ASSETS
from deliverydags.scenarios.chaos_redis_outage import CHECKS
from tests.support.chaos import checks, materialize, metadata, no_orphans, stored

chaos_redis_outage = SCENARIO_ASSETS["chaos_redis_outage"]

pytestmark = pytest.mark.integration

NAME = "chaos_redis_outage"


def test_outage_answers_503_loses_nothing_accepted_and_recovers_within_60_s(
    tmp_path: Path,
) -> None:
    config = {
        "rate": 150.0,
        "duration_s": 30.0,
        "inject_after_s": 6.0,
        "hold_s": 8.0,
        "deadlines_s": [40.0],
        # 2% of messages are reported failed (and dead-lettered), some of them while
        # Redis is down: the DLQ must still account for every one.
        "target_args": ["--consumers", "2", "--fault-fail", "0.02", "--fault-seed", "3"],
    }
    result = materialize(chaos_redis_outage, tmp_path, config)
    meta = metadata(result, NAME)
    print({k: v for k, v in meta.items() if k not in ("report", "result")})
    assert checks(result) == dict.fromkeys(CHECKS, True), meta
    assert result.success
    assert meta["redis_starts"] == 2  # stopped and started again for real
    assert 7.5 <= meta["hold_s"] <= 10
    # ~8 s x 150 msg/s refused with 503, none hung or answered otherwise.
    assert meta["outage_503"] > 900 and meta["outage_no_answer"] == 0
    assert meta["count_rejected"] >= meta["outage_503"]
    assert meta["lost"] == 0 == meta["count_lost"] and meta["count_accepted"] > 2000
    assert 0 <= meta["time_to_detect_s"] < 2
    assert 0 <= meta["time_to_recover_s"] <= 60
    assert meta["count_failed"] > 0 and meta["dlq"] >= meta["count_failed"]
    assert meta["failed_not_in_dlq"] == 0
    row = stored(tmp_path, NAME)
    assert row is not None and row["chaos"]["fault"] == "redis_outage"
    no_orphans()


def test_hung_redis_is_answered_503_within_the_request_timeout(tmp_path: Path) -> None:
    # SIGSTOP: connections stay open and nothing answers. Before the publish deadline
    # covered the lock wait, requests queued behind a stuck batch waited 5-10 s.
    config = {
        "rate": 150.0,
        "duration_s": 22.0,
        "inject_after_s": 6.0,
        "hold_s": 8.0,
        "deadlines_s": [40.0],
        "mode": "hang",
        "request_timeout_s": 3.0,
    }
    result = materialize(chaos_redis_outage, tmp_path, config)
    meta = metadata(result, NAME)
    print({k: v for k, v in meta.items() if k not in ("report", "result")})
    assert checks(result) == dict.fromkeys(CHECKS, True), meta
    assert meta["mode"] == "hang" and meta["redis_starts"] == 1
    assert meta["outage_503"] > 500 and meta["outage_no_answer"] == 0
    assert meta["lost"] == 0 and meta["time_to_recover_s"] <= 60
    # (k6 drops some sends while its VUs wait on the stalled requests: the run's status
    # may say k6_thresholds failed; the scenario's own checks above are what count.)
    no_orphans()
