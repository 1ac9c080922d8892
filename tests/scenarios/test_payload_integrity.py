"""payload_integrity end to end from a terminal against the reference target (with its
own Prometheus for the memory check): clean, every check passes and the size histogram
is what was sent; with the corrupt and undigest faults on, the ledger's counts equal the
faults the target logged and both checks fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scenario_cli import failed_checks, run_with_fault_log

pytestmark = pytest.mark.integration

RUN = ["run", "payload_integrity", "--rate", "40", "--duration", "12", "--deadlines", "5,10"]
RUN += ["--payload-mix", "100,2048,65536"]


def test_clean_payloads_up_to_64_kib_pass_with_their_histogram(tmp_path: Path) -> None:
    code, result, faults = run_with_fault_log(tmp_path, *RUN)
    failed = failed_checks(result)
    assert code == 0 and failed == set() and faults == []
    sizes = result["payload_sizes"]
    assert set(sizes) == {"100", "2048", "65536"}
    assert sum(sizes.values()) == result["counts"]["attempted"]
    assert result["counts"]["corrupted"] == result["counts"]["undigested"] == 0


def test_corrupted_and_undigested_receipts_are_counted_exactly(tmp_path: Path) -> None:
    faulty = ["--target-arg=--fault-corrupt=0.1", "--target-arg=--fault-undigest=0.1"]
    code, result, faults = run_with_fault_log(tmp_path, *RUN, *faulty)
    failed = failed_checks(result)
    assert code == 1 and failed == {"zero_corrupted", "zero_undigested"}
    by_kind = {
        kind: {f["id"] for f in faults if f["fault"] == kind} for kind in ("corrupt", "undigest")
    }
    assert by_kind["corrupt"] and by_kind["undigest"]
    assert result["counts"]["corrupted"] == len(by_kind["corrupt"])
    assert result["counts"]["undigested"] == len(by_kind["undigest"])
