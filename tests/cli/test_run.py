"""`deliverydags run` from a terminal: where its files go, and a collector that fails
mid-run is the harness's failure (exit 2, one line; the asset's step fails with that
line), never the target's loss."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from tests.conftest import ROOT, soak_resources

pytestmark = pytest.mark.integration


CLI = str(ROOT / ".venv" / "bin" / "deliverydags")
USER_ENV = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERYDAGS_")}
# Short deadlines: unwatched, a broken collector's run would end in a zero_loss verdict.
BROKEN_LOAD = ["--rate", "50", "--duration", "10", "--deadlines", "2,4,6"]
README_RUN = [CLI, "run", "message_soak", "--rate", "20", "--duration", "3"]


def _run_as_a_user(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        README_RUN,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def _remove_own_run_dirs(runs: Path, before: set[str], stderr: str) -> None:
    """Delete the run dirs this run made under ``runs``, found by its collector's port
    (others may be running from the same directory at the same time)."""
    port = re.search(r"collector listening on http://[\d.]+:(\d+)", stderr)
    if port is None or not runs.is_dir():
        return
    for run in runs.iterdir():
        log = run / "collector.log"
        if run.name not in before and log.is_file() and f":{port[1]}," in log.read_text():
            shutil.rmtree(run)


def test_run_from_the_project_root_as_the_readme_shows() -> None:
    runs = ROOT / "data" / "runs"
    before = set(os.listdir(runs)) if runs.is_dir() else set()
    out = _run_as_a_user(ROOT, USER_ENV)
    try:
        assert out.returncode == 0, out.stderr[-2000:]
        result = re.search(r"full result: (.+)", out.stdout)
        assert result is not None, out.stdout[-2000:]
        assert Path(result[1]).parent.parent == runs
        assert Path(result[1]).is_file()
    finally:
        _remove_own_run_dirs(runs, before, out.stderr)


@pytest.mark.parametrize(
    ("data_dir", "runs"), [(None, "data/runs"), ("store", "store/runs")]
)  # relative to the cwd, as a user means it
def test_run_from_another_directory_keeps_its_files_in_the_data_dir(
    tmp_path: Path, data_dir: str | None, runs: str
) -> None:
    env = {**USER_ENV, **({"DELIVERYDAGS_DATA_DIR": data_dir} if data_dir else {})}
    out = _run_as_a_user(tmp_path, env)
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = (tmp_path / runs).iterdir()
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
        [CLI, "run", "message_soak", *BROKEN_LOAD, "--work-dir", str(work)],
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
    # Progress lines go to stderr too; the error is the one line of the CLI's own, last.
    errors = [line for line in err.splitlines() if line.startswith("deliverydags:")]
    assert len(errors) == 1, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last == errors[0] and last.startswith("deliverydags: collector failed mid-run"), last
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


def test_a_killed_collector_fails_the_asset_for_the_harness(tmp_path: Path) -> None:
    """The night's materialization fails with the one line (failed_for: harness): no
    materialization, so no zero_loss check speaks of the target, and nothing stored."""
    killed: list[str] = []

    def kill_the_collector() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            kids = psutil.Process().children(recursive=True)
            collector = [p for p in kids if "deliverydags.collector" in " ".join(_cmdline(p))]
            if collector and any(_name(p) == "k6" for p in kids):
                time.sleep(2)  # a few seconds of load
                collector[0].send_signal(signal.SIGKILL)
                killed.append(" ".join(_cmdline(collector[0])))
            time.sleep(0.2)

    from deliverydags.defs.assets.catalog import message_soak

    resources = soak_resources(tmp_path)
    killer = threading.Thread(target=kill_the_collector, daemon=True)
    killer.start()
    config = {"rate": 50.0, "duration_s": 10.0, "deadlines_s": [2.0, 4.0, 6.0]}
    result = dg.materialize(
        [message_soak],
        partition_key="2026-11-20",
        run_config={"ops": {"message_soak": {"config": config}}},
        resources=resources,
        raise_on_error=False,
    )
    killer.join()
    assert killed, "the collector was never seen under the run"
    assert not result.success
    failure = result.failure_data_for_node("message_soak")
    assert failure is not None
    message = failure.error.message.strip()
    assert "collector failed mid-run (it exited" in message, message
    assert "not a verdict on the target" in message
    assert "Traceback" not in message
    assert failure.user_failure_data.metadata["failed_for"].value == "harness"
    assert result.asset_materializations_for_node("message_soak") == []
    assert result.get_asset_check_evaluations() == []
    assert resources["results"].store.load("2026-11-20") is None
