"""idempotency end to end from a terminal against the reference target: with its
idempotency intact the checks pass; with a fault knob on, the ledger reports exactly the
faults the target logged and the check that judges them fails."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.integration

RUN = ["run", "idempotency", "--rate", "50", "--duration", "4", "--deadlines", "5,10"]


def _run(tmp_path: Path, *extra: str) -> tuple[int, dict, list[dict]]:
    out, log = tmp_path / "result.json", tmp_path / "faults.ndjson"
    proc = run_cli(*RUN, *extra, f"--target-arg=--fault-log={log}", "--work-dir",
                   str(tmp_path), "--json", str(out))  # fmt: skip
    assert out.is_file(), proc.stderr[-2000:]
    faults = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
    return proc.returncode, orjson.loads(out.read_bytes()), faults


def _failed(result: dict) -> list[str]:
    return [g["name"] for g in result["gates"] if not g["passed"]]


def test_resends_add_no_delivery_and_changed_bodies_get_409(tmp_path: Path) -> None:
    code, result, faults = _run(tmp_path)
    assert code == 0 and _failed(result) == [] and faults == []
    figures = result["idempotency"]
    assert figures["resent_same"] > 0 and figures["resent_changed"] > 0
    assert result["counts"]["resent"] == figures["resent_same"] + figures["resent_changed"]
    assert result["counts"]["conflicts"] == figures["resent_changed"]
    assert result["counts"]["duplicates"] == 0


def test_a_redelivered_resend_is_a_duplicate_and_fails_the_check(tmp_path: Path) -> None:
    code, result, faults = _run(tmp_path, "--target-arg=--fault-redeliver-resend=1")
    assert code == 1 and _failed(result) == ["resends_add_no_delivery"]
    redelivered = [f for f in faults if f["fault"] == "redeliver-resend"]
    assert redelivered and result["counts"]["duplicates"] == len(redelivered)


def test_an_accepted_changed_body_fails_the_409_check(tmp_path: Path) -> None:
    code, result, faults = _run(tmp_path, "--target-arg=--fault-accept-changed=1")
    assert code == 1 and "changed_bodies_409" in _failed(result)
    accepted = [f for f in faults if f["fault"] == "accept-changed"]
    figures = result["idempotency"]
    assert accepted and figures["changed_answered_409"] == figures["resent_changed"] - len(accepted)
