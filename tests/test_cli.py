"""`deliverydags run` from a terminal: where its files go, and a collector that fails
mid-run is the harness's failure (exit 2, one line), never the target's loss."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = str(ROOT / ".venv" / "bin" / "deliverydags")
USER_ENV = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERYDAGS_")}


def test_run_from_another_directory_keeps_its_files_in_the_data_dir(tmp_path: Path) -> None:
    env = {**USER_ENV, "DELIVERYDAGS_DATA_DIR": "store"}  # relative: to the cwd
    out = subprocess.run(
        [CLI, "run", "message_soak", "--rate", "20", "--duration", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = (tmp_path / "store" / "runs").iterdir()
    assert (run / "result.json").is_file()
    assert f"full result: {run / 'result.json'}" in out.stdout


def _collector_of(cli: subprocess.Popen, timeout_s: float = 60) -> psutil.Process:
    """The CLI's collector, once k6 is sending (so receipts are flowing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cli.poll() is not None:
            raise AssertionError(f"the run ended before k6 started: {cli.communicate()[1]}")
        kids = psutil.Process(cli.pid).children(recursive=True)
        collector = [p for p in kids if "deliverydags.collector" in " ".join(_cmdline(p))]
        if collector and any(_name(p) == "k6" for p in kids):
            time.sleep(2)  # a few seconds of load
            return collector[0]
        time.sleep(0.2)
    raise AssertionError("no collector and k6 under the CLI")


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _name(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def _run_and_break_collector(tmp_path: Path, breaker) -> tuple[int, str, Path]:
    work = tmp_path / "runs"
    cli = subprocess.Popen(
        [CLI, "run", "message_soak", "--rate", "50", "--duration", "30", "--work-dir", str(work)],
        cwd=ROOT,
        env=USER_ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        breaker(_collector_of(cli))
        _, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    (run,) = work.iterdir()
    return cli.returncode, err, run


def _assert_void(code: int, err: str, run: Path) -> None:
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("deliverydags: collector failed mid-run"), last
    assert "not a verdict on the target" in last
    assert not (run / "result.json").exists()  # no result, so no zero_loss verdict


def test_a_killed_collector_voids_the_run(tmp_path: Path) -> None:
    code, err, run = _run_and_break_collector(tmp_path, lambda p: p.send_signal(signal.SIGKILL))
    _assert_void(code, err, run)
    assert "exited" in err.strip().splitlines()[-1]


def test_a_collector_that_cannot_write_voids_the_run(tmp_path: Path) -> None:
    """Its files may grow no further (as on a full disk): it stops acknowledging and its
    /healthz says so; the run must stop and say the harness failed."""

    def fill_disk(collector: psutil.Process) -> None:
        size = (tmp_path / "runs").stat().st_size  # any small bound: writes fail at once
        try:
            collector.rlimit(psutil.RLIMIT_FSIZE, (size, size))
        except psutil.AccessDenied:
            pytest.fail("setting another process's RLIMIT_FSIZE needs root (or CAP_SYS_RESOURCE)")

    code, err, run = _run_and_break_collector(tmp_path, fill_disk)
    _assert_void(code, err, run)
    assert "/healthz answered 503" in err.strip().splitlines()[-1]
