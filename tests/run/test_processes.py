"""Child processes die with the run, even a SIGKILLed one, and hold only their own secrets.

The end-to-end tests kill a real run (the CLI, and `dagster asset materialize`) with
SIGKILL mid-load and read /proc of every process under it beforehand.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psutil
import pytest

from deliverydags import procs
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

SECRETS = {
    "DELIVERYDAGS_SLACK_TOKEN": "xoxb-slack-0f1e2d",
    "DELIVERYDAGS_PAGERDUTY_ROUTING_KEY": "pd-routing-9a8b7c",
    "DELIVERYDAGS_ACTION_SECRET": "action-secret-5d4c3b",
    "DELIVERYDAGS_TARGET_TOKEN": "target-token-3e2f1a",
    "DELIVERYDAGS_CALLBACK_SECRET": "callback-secret-7c6b5a",
}
REDIS_PASSWORD = "redis-pw-4b3a29"
# What each kind of child may hold; the Redis password travels in DELIVERYDAGS_REDIS_URL.
ALLOWED = {
    "collector": {"DELIVERYDAGS_CALLBACK_SECRET"},
    "target": {"DELIVERYDAGS_TARGET_TOKEN", "DELIVERYDAGS_CALLBACK_SECRET", "REDIS_PASSWORD"},
    "k6": {"DELIVERYDAGS_TARGET_TOKEN"},
    "prometheus": set(),
}


def _kind(proc: psutil.Process) -> str:
    cmd = " ".join(proc.cmdline())
    for kind in ("collector", "target", "prometheus"):
        if f"deliverydags.{kind}" in cmd or proc.name() == kind:
            return kind
    return proc.name()


def _secrets_held(pid: int) -> tuple[set[str], list[str]]:
    """Names of the secrets in the process's environment, and those in its argv."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    values = {**SECRETS, "REDIS_PASSWORD": REDIS_PASSWORD}
    held = {k for k, v in values.items() if v in environ}
    return held, [k for k, v in values.items() if v in argv]


def _wait_for_k6(run: subprocess.Popen, log: Path, timeout_s: float = 120) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert run.poll() is None, f"the run ended before k6 started:\n{log.read_text()}"
        tree = psutil.Process(run.pid).children(recursive=True)
        if any(p.name() == "k6" for p in tree if p.is_running()):
            time.sleep(2)  # let some messages through; every service is up by now
            return psutil.Process(run.pid).children(recursive=True)
        time.sleep(0.2)
    raise AssertionError(f"k6 never started:\n{log.read_text()}")


def _left_after(tree: list[psutil.Process], seconds: float) -> list[str]:
    _, alive = psutil.wait_procs(tree, timeout=seconds)
    return [
        f"{p.pid} {' '.join(p.cmdline()[:3])}"
        for p in alive
        if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]


def _kill_all(run: subprocess.Popen, tree: list[psutil.Process]) -> None:
    """A failed test must not leave load running into later tests."""
    with contextlib.suppress(psutil.Error):
        tree = [*tree, *psutil.Process(run.pid).children(recursive=True)]
    run.kill()
    run.wait()
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed_leftover(tmpdir: Path) -> subprocess.Popen:
    """A process recorded as started by an owner that no longer runs (a killed run)."""
    owner = subprocess.Popen(["sleep", "0.1"])
    owner_created = psutil.Process(owner.pid).create_time()
    owner.wait()
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)
    folder = tmpdir / f"deliverydags-{os.getuid()}" / "children"
    folder.mkdir(parents=True)
    record = {"pid": leftover.pid, "create_time": psutil.Process(leftover.pid).create_time()}
    (folder / f"{owner.pid}-{owner_created}.ndjson").write_bytes(orjson.dumps(record) + b"\n")
    return leftover


@pytest.fixture
def redis_with_password(tmp_path: Path):
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--requirepass", REDIS_PASSWORD, "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    yield f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    server.kill()
    server.wait()


def test_sigkilled_cli_run_leaves_nothing_and_children_hold_only_their_secrets(
    tmp_path: Path, redis_with_password: str
) -> None:
    leftover = _seed_leftover(tmp_path)
    env = {
        **os.environ,
        **SECRETS,
        "DELIVERYDAGS_REDIS_URL": redis_with_password,
        "TMPDIR": str(tmp_path),  # a registry of children of this test's own
    }
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr_file:
        run = subprocess.Popen(
            [str(ROOT / ".venv/bin/deliverydags"), "run", "message_soak",
             "--rate", "20", "--duration", "30", "--deadlines", "2,4,6",
             "--work-dir", str(tmp_path / "runs")],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=stderr_file,
        )  # fmt: skip
    tree: list[psutil.Process] = []
    try:
        tree = _wait_for_k6(run, log)
        assert leftover.wait(timeout=5) == -signal.SIGKILL
        assert f"left running by an earlier killed run: {leftover.pid}" in log.read_text()
        kinds = [_kind(p) for p in tree]
        # Redis mode: the target's consumer processes are under it, too.
        assert sorted(set(kinds)) == ["collector", "k6", "target"], kinds
        assert kinds.count("target") == 3, kinds
        for proc in tree:
            held, in_argv = _secrets_held(proc.pid)
            assert held == ALLOWED[_kind(proc)], (proc.cmdline(), held)
            assert in_argv == [], (proc.cmdline(), in_argv)

        _sigkill_leaves_nothing(run, tree)
    finally:
        _kill_all(run, tree)
        leftover.kill()
        leftover.wait()


def _sigkill_leaves_nothing(run: subprocess.Popen, tree: list[psutil.Process]) -> None:
    run.send_signal(signal.SIGKILL)
    left = _left_after(tree, 5.0)
    assert left == [], f"still running 5 s after the run was SIGKILLed: {left}"


def test_sigkilled_dagster_run_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        **SECRETS,
        "DAGSTER_HOME": str(home),
        "DELIVERYDAGS_DATA_DIR": str(tmp_path / "data"),
        "TMPDIR": str(tmp_path),
    }
    config = {"rate": 20.0, "duration_s": 30.0, "deadlines_s": [2.0, 4.0, 6.0]}
    log = tmp_path / "output.txt"
    with log.open("w") as output_file:
        run = subprocess.Popen(
            [sys.executable, "-m", "dagster", "asset", "materialize",
             "-m", "deliverydags.definitions", "--select", "message_soak",
             "--partition", datetime.now(UTC).date().isoformat(),
             "--config-json", json.dumps({"ops": {"message_soak": {"config": config}}})],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=output_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    tree: list[psutil.Process] = []
    try:
        tree = _wait_for_k6(run, log)
        kinds = {_kind(p) for p in tree}
        assert {"collector", "target", "k6", "prometheus"} <= kinds, kinds
        for proc in tree:
            if _kind(proc) in ALLOWED:  # the Dagster step process itself holds them all
                held, in_argv = _secrets_held(proc.pid)
                # The embedded queue: no Redis URL at all.
                assert held == ALLOWED[_kind(proc)] - {"REDIS_PASSWORD"}, (proc.cmdline(), held)
                assert in_argv == [], (proc.cmdline(), in_argv)

        _sigkill_leaves_nothing(run, tree)
    finally:
        _kill_all(run, tree)


def test_a_child_started_from_a_thread_outlives_the_thread_and_dies_with_the_process() -> None:
    owner_code = (
        "import threading, time\n"
        "from deliverydags import procs\n"
        "start = lambda: print(procs.popen(['sleep', '300']).pid, flush=True)\n"
        "t = threading.Thread(target=start)\n"
        "t.start(); t.join(); print('thread ended', flush=True); time.sleep(300)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    child = None
    try:
        assert owner.stdout is not None
        child = psutil.Process(int(owner.stdout.readline()))
        assert owner.stdout.readline() == "thread ended\n"
        time.sleep(0.5)
        assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        owner.kill()
        owner.wait()
        assert _left_after([child], 5.0) == []
    finally:
        owner.kill()
        owner.wait()
        if child is not None:
            with contextlib.suppress(psutil.Error):
                child.kill()


def test_kill_group_kills_the_group_after_its_leader_was_reaped() -> None:
    # The leader starts a grandchild in its own group and exits at once.
    leader = procs.popen(["sh", "-c", "sleep 300 & echo $!"], stdout=subprocess.PIPE, text=True)
    assert leader.stdout is not None
    grandchild = psutil.Process(int(leader.stdout.readline()))
    leader.stdout.close()
    assert leader.wait(timeout=5) == 0  # reaped
    try:
        assert os.getpgid(grandchild.pid) == leader.pid
        procs.kill_group(leader, grace_s=0.5)
        assert _left_after([grandchild], 2.0) == []
    finally:
        with contextlib.suppress(psutil.Error):
            grandchild.kill()


def test_sweep_kills_only_children_of_owners_that_are_gone(tmp_path: Path) -> None:
    folder = tmp_path / "children"
    folder.mkdir()
    dead_owner = subprocess.Popen(["sleep", "0.1"])
    dead_created = psutil.Process(dead_owner.pid).create_time()
    dead_owner.wait()
    leftover, reused, of_live_owner = (
        subprocess.Popen(["sleep", "300"], start_new_session=True) for _ in range(3)
    )

    def rec(proc: subprocess.Popen, created: float | None = None) -> bytes:
        created = created or psutil.Process(proc.pid).create_time()
        return orjson.dumps({"pid": proc.pid, "create_time": created}) + b"\n"

    # ``reused``: its pid is recorded with another start time (the pid was reused).
    (folder / f"{dead_owner.pid}-{dead_created}.ndjson").write_bytes(
        rec(leftover) + rec(reused, created=1.0) + b"torn {\n"
    )
    me = psutil.Process().create_time()
    (folder / f"{os.getpid()}-{me}.ndjson").write_bytes(rec(of_live_owner))
    lines: list[str] = []
    try:
        assert procs.sweep_leftovers(lines.append, folder) == [leftover.pid]
        assert leftover.wait(timeout=5) == -signal.SIGKILL
        assert reused.poll() is None and of_live_owner.poll() is None
        assert len(lines) == 1 and str(leftover.pid) in lines[0]
        assert sorted(p.name for p in folder.iterdir()) == [f"{os.getpid()}-{me}.ndjson"]
    finally:
        for proc in (leftover, reused, of_live_owner):
            proc.kill()
            proc.wait()


def test_the_chaos_redis_server_gets_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deliverydags.chaos.redis_server import RedisServer

    # redis-server overwrites its /proc environ (its process title): a wrapper that
    # records the environment it was given, then becomes the real server.
    seen = tmp_path / "environ.txt"
    wrapper = tmp_path / "redis-server"
    wrapper.write_text(f'#!/bin/sh\nenv > {seen}\nexec redis-server "$@"\n')
    wrapper.chmod(0o755)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with RedisServer(tmp_path / "data", binary=str(wrapper)) as server:
        assert server.ping()
    environ = seen.read_text()
    assert "PATH=" in environ
    assert [k for k, v in SECRETS.items() if v in environ] == []


def test_child_env_is_the_allowlist_plus_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_CTYPE", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("DAGSTER_HOME", "/somewhere")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    env = procs.child_env({"DELIVERYDAGS_CALLBACK_SECRET": "own"})
    assert env["LC_CTYPE"] == "C.UTF-8" and env["TZ"] == "UTC" and "PATH" in env
    assert env["DELIVERYDAGS_CALLBACK_SECRET"] == "own"
    rest = {k for k in env if not k.startswith("LC_")}
    assert rest <= {*procs.ENV_ALLOWLIST, "DELIVERYDAGS_CALLBACK_SECRET"}, rest
