"""Stopping a running load test leaves nothing behind: k6, the collector and the
reference target all end within 5 s, and the run is never reported as passed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

LONG = {"rate": 50.0, "duration_s": 120.0, "deadlines_s": [2.0, 4.0, 6.0]}


def _wait_for_k6(proc: subprocess.Popen, timeout_s: float = 90) -> list[psutil.Process]:
    """Every process under ``proc`` once k6 is running and sending."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before k6 started"
        tree = psutil.Process(proc.pid).children(recursive=True)
        if any(p.name() == "k6" for p in tree if p.is_running()):
            time.sleep(3)  # let some messages through
            return psutil.Process(proc.pid).children(recursive=True)
        time.sleep(0.2)
    raise AssertionError("k6 never started")


def _stop_all(run: subprocess.Popen, known: list[psutil.Process]) -> None:
    """Kill the run and every process under it: a failed test must not leave services
    running into later tests (killing the run alone would orphan them)."""
    procs = list(known)
    if run.poll() is None:
        with contextlib.suppress(psutil.Error):
            procs += psutil.Process(run.pid).children(recursive=True)
        run.kill()
        run.wait()
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _gone_within(procs: list[psutil.Process], seconds: float) -> list[str]:
    _, alive = psutil.wait_procs(procs, timeout=seconds)
    return [" ".join(p.cmdline()[:3]) for p in alive if p.is_running() and p.status() != "zombie"]


def test_terminating_a_dagster_run_stops_every_process_it_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DELIVERYDAGS_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "output.txt"  # a file, not a pipe: a full pipe would block the run
    with log.open("w") as output_file:
        run = subprocess.Popen(
            [
                sys.executable, "-m", "dagster", "asset", "materialize",
                "-m", "deliverydags.definitions", "--select", "message_soak",
                "--partition", "2026-11-20",
                "--config-json", json.dumps({"ops": {"message_soak": {"config": LONG}}}),
            ],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=output_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    tree: list[psutil.Process] = []
    try:
        tree = _wait_for_k6(run)
        names = {p.name() for p in tree}
        assert "k6" in names
        os.kill(run.pid, signal.SIGINT)  # what Dagster's Terminate does to the run worker
        started = time.monotonic()
        left = _gone_within([*tree, psutil.Process(run.pid)], 5.0)
        assert left == [], (
            f"still running {time.monotonic() - started:.1f} s after terminate: {left}"
        )
        run.wait(timeout=10)
    finally:
        _stop_all(run, tree)
    output = log.read_text()
    assert "RUN_SUCCESS" not in output
    assert not list((tmp_path / "data").glob("results.duckdb")) or _no_stored_result(tmp_path)


def _no_stored_result(tmp_path: Path) -> bool:
    from deliverydags.history.store import ResultsStore

    return ResultsStore(tmp_path / "data" / "results.duckdb").nights() == []


def test_ctrl_c_on_the_cli_writes_an_aborted_result_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    log = tmp_path / "stderr.txt"  # a file, not a pipe: a full pipe would block the CLI
    with log.open("w") as stderr_file:
        run = subprocess.Popen(
            [sys.executable, "-m", "deliverydags.cli", "run", "message_soak",
             "--rate", "50", "--duration", "120", "--deadlines", "2,4,6",
             "--json", str(out), "--work-dir", str(tmp_path / "runs")],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_file,
        )  # fmt: skip
    tree: list[psutil.Process] = []
    try:
        tree = _wait_for_k6(run)
        run.send_signal(signal.SIGINT)
        started = time.monotonic()
        left = _gone_within(tree, 5.0)
        assert left == [], (
            f"still running {time.monotonic() - started:.1f} s after Ctrl-C: {left}; "
            f"the CLI said:\n{log.read_text()}"
        )
        run.wait(timeout=30)
    finally:
        _stop_all(run, tree)
    stderr = log.read_text()
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr
    result = json.loads(out.read_text())
    assert result["status"] == "aborted"
    counts = result["counts"]
    assert counts["attempted"] > 0
    assert counts["delivered"] > 0  # receipts already in are counted
    assert counts["attempted"] == counts["accepted"] + counts["rejected"] + counts["indeterminate"]
