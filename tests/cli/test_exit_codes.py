"""Exit 1 means a verdict (a gate failed, a regression, a rollback). Bad input and crashes
must never look like one: one line on stderr, exit 2, at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


CLI = str(ROOT / ".venv" / "bin" / "deliverydags")
EXAMPLE = ROOT / "docs" / "examples" / "history" / "message_soak-2026-11-01.json"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERYDAGS_")}


def cli(*args: str, cwd: Path) -> tuple[int, list[str], float]:
    began = time.monotonic()
    out = subprocess.run(
        [CLI, *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return out.returncode, out.stderr.strip().splitlines(), time.monotonic() - began


def assert_one_line_exit_2(code: int, err: list[str], took: float, *expect: str) -> None:
    assert code == 2, err
    assert len(err) == 1, err
    for text in expect:
        assert text in err[0], err[0]
    assert took < 10, took


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"started_at": 1764547200}, "started_at: input should be a valid string"),
        ({"scenario": None}, "scenario: input should be a valid string"),
        ({"gates": {"zero_loss": True}}, "gates: input should be a valid list"),
        ({"counts": {"lost": "none"}}, "counts.lost: input should be a valid integer"),
        ({"delivery_rate": "high"}, "delivery_rate: input should be a valid number"),
        ({"gates": [{"name": "zero_loss", "passed": "yes"}]}, "gates.0.passed: input should"),
        ({"gates": [{"name": "zero_loss"}]}, "gates.0.passed: field required"),
    ],
)
def test_a_bad_history_file_is_one_line(tmp_path: Path, change: dict, expect: str) -> None:
    doc = {**json.loads(EXAMPLE.read_text()), **change}
    bad = tmp_path / "night.json"
    bad.write_text(json.dumps(doc))
    code, err, took = cli("history", "import", str(bad), "--data-dir", "d", cwd=tmp_path)
    assert_one_line_exit_2(code, err, took, str(bad), expect)
    assert not (tmp_path / "d" / "results.duckdb").exists() or "imported" not in err[0]


@pytest.mark.parametrize(
    ("metrics", "expect"),
    [
        ({"http_req_duration": 5}, "metrics.http_req_duration: input should be a valid dict"),
        ({"iterations": {"thresholds": ["rate>1"]}}, "metrics.iterations.thresholds: input"),
    ],
)
def test_a_bad_k6_summary_is_one_line(tmp_path: Path, metrics: dict, expect: str) -> None:
    bad = tmp_path / "summary-2026-11-01.json"
    bad.write_text(json.dumps({"state": {"testRunDurationMs": 1000}, "metrics": metrics}))
    code, err, took = cli("history", "import", str(bad), "--data-dir", "d", cwd=tmp_path)
    assert_one_line_exit_2(code, err, took, str(bad), expect)


def test_a_store_locked_by_another_process_is_one_line_at_once(tmp_path: Path) -> None:
    store = tmp_path / "d" / "results.duckdb"
    code, err, _ = cli("history", "import", str(EXAMPLE), "--data-dir", "d", cwd=tmp_path)
    assert code == 0, err
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(store)!r}); print('held', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        for args in (("trend",), ("gate",), ("history", "import", str(EXAMPLE))):
            code, err, took = cli(*args, "--data-dir", "d", cwd=tmp_path)
            assert_one_line_exit_2(code, err, took, "is in use by process", "try again")
    finally:
        holder.communicate("")


def test_an_unexpected_error_is_one_line_not_a_verdict(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "results.duckdb").write_bytes(b"not a database, " * 512)
    code, err, took = cli("trend", "--data-dir", "d", cwd=tmp_path)
    assert_one_line_exit_2(code, err, took, "deliverydags: unexpected", "DELIVERYDAGS_DEBUG=1")
