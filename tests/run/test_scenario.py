"""A scenario's verdict is its declared checks: the run's status and the CLI's exit code
follow from it, never a partial pass."""

from __future__ import annotations

import pytest

from deliverydags.run.scenario import CheckSpec, Scenario, ScenarioConfig, missing_reason

SCENARIO = Scenario(
    name="probe",
    description="test",
    config=ScenarioConfig,
    checks=(CheckSpec("zero_loss", "-"), CheckSpec("agree", "-", blocking=False)),
    setup=lambda *_: None,  # type: ignore[arg-type,return-value]
)


def _result(*gates: tuple[str, bool], status: str = "failed") -> dict:
    return {"status": status, "gates": [{"name": n, "passed": p} for n, p in gates]}


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
        # A hook's gate comes later and wins a name clash, as on the asset's check.
        ([("zero_loss", False), ("zero_loss", True)], "passed"),
    ],
)
def test_the_verdict_is_the_declared_checks(gates: list, verdict: str) -> None:
    assert SCENARIO.verdict(_result(*gates)) == verdict


def test_an_aborted_run_stays_aborted() -> None:
    assert SCENARIO.verdict(_result(("zero_loss", True), status="aborted")) == "aborted"


def test_a_missing_check_says_which_hook_failed() -> None:
    assert missing_reason({"prometheus": {"error": "no RSS series"}}) == "no RSS series"
    assert missing_reason({"chaos": {"error": "victim gone"}}) == "victim gone"
    assert missing_reason({"prometheus": {}}) == "not evaluated"
