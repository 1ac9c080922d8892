"""tenant_isolation end to end from a terminal against the reference target: tenants
from DELIVERYDAGS_TENANT_TOKENS (their tokens never written anywhere), every
cross-tenant send 403, no leak; with the leak fault on, leaked equals the receipts the
target logged as leaked and the check fails."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.integration

RUN = ["run", "tenant_isolation", "--rate", "50", "--duration", "5", "--deadlines", "5,10"]
RUN += ["--cross-tenant-share", "0.05"]
TOKENS = {"acme": "acme-secret-token-1234", "globex": "globex-secret-token-5678"}


def _run(tmp_path: Path, *extra: str, env: dict | None = None) -> tuple[int, dict, list[dict]]:
    out, log = tmp_path / "result.json", tmp_path / "faults.ndjson"
    proc = run_cli(*RUN, *extra, f"--target-arg=--fault-log={log}", "--work-dir",
                   str(tmp_path / "runs"), "--json", str(out), env=env)  # fmt: skip
    assert out.is_file(), proc.stderr[-2000:]
    faults = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
    return proc.returncode, orjson.loads(out.read_bytes()), faults


def test_configured_tenants_are_isolated_and_their_tokens_stay_secret(tmp_path: Path) -> None:
    pairs = ",".join(f"{t}:{token}" for t, token in TOKENS.items())
    code, result, faults = _run(tmp_path, env={"DELIVERYDAGS_TENANT_TOKENS": pairs})
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
    code, result, faults = _run(tmp_path, "--target-arg=--fault-leak=0.2")
    failed = {g["name"] for g in result["gates"] if not g["passed"]}
    leaks = [f for f in faults if f["fault"] == "leak"]
    assert code == 1 and "zero_leaked" in failed
    assert leaks and result["counts"]["leaked"] == len(leaks)
