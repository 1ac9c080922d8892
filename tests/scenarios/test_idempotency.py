"""idempotency end to end from a terminal against the reference target: with its
idempotency intact the checks pass; with a fault knob on, the ledger reports exactly the
faults the target logged and the check that judges them fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scenario_cli import failed_checks, run_with_fault_log

pytestmark = pytest.mark.integration

RUN = ["run", "idempotency", "--rate", "50", "--duration", "4", "--deadlines", "5,10"]


def test_resends_add_no_delivery_and_changed_bodies_get_409(tmp_path: Path) -> None:
    code, result, faults = run_with_fault_log(tmp_path, *RUN)
    assert code == 0 and failed_checks(result) == set() and faults == []
    figures = result["idempotency"]
    assert figures["resent_same"] > 0 and figures["resent_changed"] > 0
    assert result["counts"]["resent"] == figures["resent_same"] + figures["resent_changed"]
    assert result["counts"]["conflicts"] == figures["resent_changed"]
    assert result["counts"]["duplicates"] == 0


def test_a_redelivered_resend_is_a_duplicate_and_fails_the_check(tmp_path: Path) -> None:
    code, result, faults = run_with_fault_log(
        tmp_path, *RUN, "--target-arg=--fault-redeliver-resend=1"
    )
    assert code == 1 and failed_checks(result) == {"resends_add_no_delivery"}
    redelivered = [f for f in faults if f["fault"] == "redeliver-resend"]
    assert redelivered and result["counts"]["duplicates"] == len(redelivered)


def test_an_accepted_changed_body_fails_the_409_check(tmp_path: Path) -> None:
    code, result, faults = run_with_fault_log(
        tmp_path, *RUN, "--target-arg=--fault-accept-changed=1"
    )
    assert code == 1 and "changed_bodies_409" in failed_checks(result)
    accepted = [f for f in faults if f["fault"] == "accept-changed"]
    figures = result["idempotency"]
    assert accepted and figures["changed_answered_409"] == figures["resent_changed"] - len(accepted)
