"""tenant_isolation end to end from a terminal against the reference target: tenants
from DELIVERYDAGS_TENANT_TOKENS (their tokens never written anywhere), every
cross-tenant send 403, no leak; with the leak fault on, leaked equals the receipts the
target logged as leaked and the check fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scenario_cli import failed_checks, run_with_fault_log

pytestmark = pytest.mark.integration

RUN = ["run", "tenant_isolation", "--rate", "50", "--duration", "5", "--deadlines", "5,10"]
RUN += ["--cross-tenant-share", "0.05"]
TOKENS = {"acme": "acme-secret-token-1234", "globex": "globex-secret-token-5678"}


def test_configured_tenants_are_isolated_and_their_tokens_stay_secret(tmp_path: Path) -> None:
    pairs = ",".join(f"{t}:{token}" for t, token in TOKENS.items())
    code, result, faults = run_with_fault_log(
        tmp_path, *RUN, env={"DELIVERYDAGS_TENANT_TOKENS": pairs}
    )
    assert code == 0, [g for g in result["gates"] if not g["passed"]]
    assert result["tenants"]["tenants"] == sorted(TOKENS)
    assert result["tenants"]["cross_tenant_sends"] > 0
    assert result["rejected_by_status"]["403"] == result["tenants"]["cross_tenant_sends"]
    assert result["counts"]["leaked"] == 0 and faults == []
    for path in tmp_path.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert not any(token.encode() in text for token in TOKENS.values()), path


def test_leaked_receipts_are_counted_exactly_and_fail_the_check(tmp_path: Path) -> None:
    code, result, faults = run_with_fault_log(tmp_path, *RUN, "--target-arg=--fault-leak=0.2")
    failed = failed_checks(result)
    leaks = [f for f in faults if f["fault"] == "leak"]
    assert code == 1 and "zero_leaked" in failed
    assert leaks and result["counts"]["leaked"] == len(leaks)
