"""overload: past the backlog bound the target answers 429 with Retry-After, nothing
accepted is lost and every 429 is counted; the checks fail when the load never passes
the bound, and when a 429 comes without Retry-After."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from deliverydags.formats import SENDS_FILE
from deliverydags.run.result import RunResult
from deliverydags.scenarios.overload import OverloadConfig, _finish

RUN = ["run", "overload", "--rate", "300", "--duration", "6", "--deadlines", "10,20"]


class _Env:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir


def _result(rejected_429: int) -> RunResult:
    return RunResult(
        scenario="overload", target_url="u", started_at="a", finished_at="b", rate=1.0,
        duration_s=1.0, deadlines_s=(1.0,), counts={"indeterminate": 0}, latency_ms={},
        delivery_rate=1.0, checks=(), status="failed", run_id="r",
        sections={"rejected_by_status": {"429": rejected_429}},
    )  # fmt: skip


def _sends(tmp_path: Path, *lines: dict) -> Path:
    base = {"dd": 1, "stream": "s", "status": 202, "class": "accepted", "variant": ""}
    text = b"".join(
        orjson.dumps({**base, "id": f"m{i}", "seq": i, "sent_ms": 1000.0 * i, **line}) + b"\n"
        for i, line in enumerate(lines)
    )
    (tmp_path / SENDS_FILE).write_bytes(text)
    return tmp_path


def _verdicts(result: RunResult) -> dict[str, bool]:
    return {c.name: c.passed for c in result.checks}


def test_every_429_is_counted_and_a_missing_retry_after_fails(tmp_path: Path) -> None:
    run_dir = _sends(
        tmp_path,
        {"answers_429": 2},  # accepted on its third try
        {"answers_429": 3, "status": 429, "class": "rejected", "no_retry_after": 1},
        {},
    )
    done = _finish(_result(1), OverloadConfig(), _Env(run_dir))  # type: ignore[arg-type]
    figures = done.sections["overload"]
    assert figures["answers_429"] == 5 and figures["messages_accepted_after_429"] == 1
    assert figures["backpressure_s"] == 2  # the seconds of the two sends that met a 429
    assert _verdicts(done) == {
        "backpressure_reached": True,
        "retry_after_on_429": False,
        "refused_only_with_429": True,
    }


def test_no_429_means_the_bound_was_not_reached(tmp_path: Path) -> None:
    done = _finish(_result(0), OverloadConfig(), _Env(_sends(tmp_path, {})))  # type: ignore[arg-type]
    assert _verdicts(done)["backpressure_reached"] is False


@pytest.mark.integration
def test_past_the_bound_nothing_accepted_is_lost(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    out = tmp_path / "result.json"
    proc = run_cli(*RUN, "--work-dir", str(tmp_path), "--json", str(out))
    result = orjson.loads(out.read_bytes())
    assert proc.returncode == 0, [g for g in result["gates"] if not g["passed"]]
    assert result["counts"]["lost"] == 0 and result["counts"]["accepted"] > 0
    overload = result["overload"]
    assert overload["answers_429"] >= overload["messages_refused_429"] > 0
    assert overload["messages_refused_429"] == result["rejected_by_status"]["429"]
    assert overload["backpressure_s"] > 0


@pytest.mark.integration
def test_a_load_within_the_bound_fails_backpressure_reached(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    out = tmp_path / "result.json"
    roomy = ["--max-backlog", "1000000", "--slow-share", "0", "--rate", "50"]
    proc = run_cli(*RUN, *roomy, "--work-dir", str(tmp_path), "--json", str(out))
    result = orjson.loads(out.read_bytes())
    assert proc.returncode == 1
    assert [g["name"] for g in result["gates"] if not g["passed"]] == [
        "backpressure_reached",
        "retry_after_on_429",
    ]
