"""payload_integrity end to end from a terminal against the reference target (with its
own Prometheus for the memory check): clean, every check passes and the size histogram
is what was sent; with the corrupt and undigest faults on, the ledger's counts equal the
faults the target logged and both checks fail."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.integration

RUN = ["run", "payload_integrity", "--rate", "40", "--duration", "12", "--deadlines", "5,10"]
RUN += ["--payload-mix", "100,2048,65536"]


def _run(tmp_path: Path, *extra: str) -> tuple[int, dict, list[dict]]:
    out, log = tmp_path / "result.json", tmp_path / "faults.ndjson"
    proc = run_cli(*RUN, *extra, f"--target-arg=--fault-log={log}", "--work-dir",
                   str(tmp_path), "--json", str(out))  # fmt: skip
    assert out.is_file(), proc.stderr[-2000:]
    faults = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
    return proc.returncode, orjson.loads(out.read_bytes()), faults


def test_clean_payloads_up_to_64_kib_pass_with_their_histogram(tmp_path: Path) -> None:
    code, result, faults = _run(tmp_path)
    failed = [g["name"] for g in result["gates"] if not g["passed"]]
    assert code == 0 and failed == [] and faults == []
    sizes = result["payload_sizes"]
    assert set(sizes) == {"100", "2048", "65536"}
    assert sum(sizes.values()) == result["counts"]["attempted"]
    assert result["counts"]["corrupted"] == result["counts"]["undigested"] == 0


def test_corrupted_and_undigested_receipts_are_counted_exactly(tmp_path: Path) -> None:
    code, result, faults = _run(
        tmp_path, "--target-arg=--fault-corrupt=0.1", "--target-arg=--fault-undigest=0.1"
    )
    failed = {g["name"] for g in result["gates"] if not g["passed"]}
    assert code == 1 and failed == {"zero_corrupted", "zero_undigested"}
    by_kind = {
        kind: {f["id"] for f in faults if f["fault"] == kind} for kind in ("corrupt", "undigest")
    }
    assert by_kind["corrupt"] and by_kind["undigest"]
    assert result["counts"]["corrupted"] == len(by_kind["corrupt"])
    assert result["counts"]["undigested"] == len(by_kind["undigest"])
