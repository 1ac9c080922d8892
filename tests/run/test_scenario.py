"""A scenario's verdict is its declared checks: the run's status and the CLI's exit code
follow from it, never a partial pass."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from deliverydags.run.checks import Check
from deliverydags.run.result import RunResult
from deliverydags.run.scenario import CheckSpec, Scenario, ScenarioConfig, missing_reason

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "history"

SCENARIO = Scenario(
    name="probe",
    description="test",
    config=ScenarioConfig,
    checks=(
        CheckSpec("zero_loss", "-"),
        CheckSpec("agree", "-", blocking=False),
        CheckSpec("p99", "-", blocking=False, warning=True),
    ),
    setup=lambda *_: None,  # type: ignore[arg-type,return-value]
)


def _result(*gates: tuple[str, bool], status: str = "failed") -> RunResult:
    return RunResult(
        scenario="probe",
        target_url="http://127.0.0.1:1",
        started_at="2026-12-04T00:00:00.000Z",
        finished_at="2026-12-04T00:01:00.000Z",
        rate=10.0,
        duration_s=60.0,
        deadlines_s=(30.0,),
        counts={"attempted": 1},
        latency_ms={},
        delivery_rate=1.0,
        checks=tuple(Check(n, p, None, None) for n, p in gates),
        status=status,
        run_id="r",
    )


@pytest.mark.parametrize(
    ("gates", "verdict"),
    [
        ([("zero_loss", True), ("agree", True)], "passed"),
        ([("zero_loss", True)], "passed"),  # a non-blocking check not produced: no verdict
        ([("zero_loss", True), ("agree", False)], "failed"),  # produced, and it failed
        ([("agree", True)], "failed"),  # a blocking check not produced: never a pass
        ([], "failed"),
        # A gate the scenario does not declare (k6 thresholds under a fault) is not its
        # verdict.
        ([("zero_loss", True), ("k6_thresholds", False)], "passed"),
        # A warning is shown, never the verdict.
        ([("zero_loss", True), ("p99", False)], "passed"),
        # A hook's gate comes later and wins a name clash, as on the asset's check.
        ([("zero_loss", False), ("zero_loss", True)], "passed"),
    ],
)
def test_the_verdict_is_the_declared_checks(gates: list, verdict: str) -> None:
    assert SCENARIO.verdict(_result(*gates)) == verdict


def test_a_warning_cannot_block() -> None:
    with pytest.raises(ValueError, match="a warning cannot be blocking"):
        CheckSpec("p99", "-", warning=True)


def test_an_aborted_run_stays_aborted() -> None:
    assert SCENARIO.verdict(_result(("zero_loss", True), status="aborted")) == "aborted"


def test_a_missing_check_says_which_hook_failed() -> None:
    result = _result()
    prometheus_down = result.with_sections(prometheus={"error": "no RSS series"})
    assert missing_reason(prometheus_down) == "no RSS series"
    assert missing_reason(result.with_sections(chaos={"error": "victim gone"})) == "victim gone"
    assert missing_reason(result.with_sections(prometheus={})) == "not evaluated"


def test_the_result_round_trips_the_contract_json() -> None:
    example = orjson.loads((EXAMPLES / "message_soak-2026-11-01.json").read_bytes())
    doc = {**example, "run_id": "20261101T021005-abcdef"}  # a run's own result has one
    result = RunResult.from_json(doc)
    assert result.to_json() == doc
    assert result.counts["attempted"] == doc["counts"]["attempted"]
    assert [c.to_json() for c in result.checks] == doc["gates"]
    assert set(result.sections) == {"rejected_by_status", "late_by_deadline", "samples"}
