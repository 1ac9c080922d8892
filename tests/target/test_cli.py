"""The target as a program: setup errors, stdout, signals, children, secrets in logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from deliverydags import procs
from deliverydags.target.allowlist import callback_args

from .conftest import SECRET, TOKEN, Receiver, messages, post_message

pytestmark = pytest.mark.integration

SECRETS = {"DELIVERYDAGS_TARGET_TOKEN": TOKEN, "DELIVERYDAGS_CALLBACK_SECRET": SECRET}


def run_target(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERYDAGS_")}
    return subprocess.run(
        [sys.executable, "-m", "deliverydags.target", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        ([], {"DELIVERYDAGS_CALLBACK_SECRET": SECRET}, "DELIVERYDAGS_TARGET_TOKEN"),
        ([], {"DELIVERYDAGS_TARGET_TOKEN": TOKEN}, "DELIVERYDAGS_CALLBACK_SECRET"),
        (["--fault-drop", "1.5"], SECRETS, "fraction"),
        (["--fault-drop", "0.6", "--fault-fail", "0.6"], SECRETS, "add up"),
        (["--consumers", "0"], SECRETS, "must be > 0"),
        (["--listen", "nowhere"], SECRETS, "HOST:PORT"),
        (["--callback-allow", "10.0.0.0/33"], SECRETS, "callback-allow"),
        (["--fault-log", "/nonexistent/dir/f.ndjson"], SECRETS, "fault-log"),
        (["--redis-url", "redis://:hunter2@127.0.0.1:1/0"], SECRETS, "cannot use Redis"),
    ],
    ids=[
        "no_token",
        "no_secret",
        "bad_fraction",
        "fractions_sum",
        "zero_consumers",
        "bad_listen",
        "bad_allow",
        "bad_fault_log",
        "redis_unreachable",
    ],
)
def test_setup_errors_exit_2_with_one_line(args: list[str], env: dict, says: str) -> None:
    proc = run_target(args, env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert says in lines[0]
    assert "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr


def children_gone(pids: list[int]) -> bool:
    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(gone(pid) for pid in pids)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
@pytest.mark.parametrize("mode", ["embedded", "redis"])
def test_signal_stops_cleanly(
    request: pytest.FixtureRequest, mode: str, sig: int, receiver: Receiver, tmp_path: Path
) -> None:
    args = []
    if mode == "redis":
        prefix = request.getfixturevalue("stream_prefix")
        args = ["--redis-url", request.getfixturevalue("redis_url"), "--stream-prefix", prefix]
    log = tmp_path / "target.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deliverydags.target", *args, *callback_args(receiver.url)],
            env={**os.environ, **SECRETS},
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().decode()
        assert ready.startswith("READY http://127.0.0.1:") and ready.endswith("\n")
        url = ready.split()[1]
        receiver.fail_until = time.monotonic() + 0.3  # some warnings in the log
        for msg in messages(receiver.url, streams=2, per_stream=5):
            assert post_message(url, msg)[0] == 202
        assert post_message(url, msg, token="wrong-token")[0] == 401
        children = [p.pid for p in psutil.Process(proc.pid).children()]
        assert len(children) == (2 if mode == "redis" else 0)

        proc.send_signal(sig)  # to the target alone: it must stop its children itself
        assert proc.wait(timeout=15) == 0
        assert proc.stdout.read() == b""  # nothing but the READY line, ever
        deadline = time.monotonic() + 5
        while not children_gone(children):
            assert time.monotonic() < deadline, "consumer processes outlived the target"
            time.sleep(0.05)
    finally:
        procs.kill_group(proc, 1.0)
        proc.stdout.close()
    text = log.read_text()
    assert TOKEN not in text and SECRET not in text
    assert "Traceback" not in text


def test_consumers_exit_when_the_target_is_killed(redis_target) -> None:
    service = redis_target()
    children = [p.pid for p in psutil.Process(service.pid).children()]
    assert len(children) == 2
    os.kill(service.pid, signal.SIGKILL)  # no chance to stop them
    deadline = time.monotonic() + 10
    while not children_gone(children):
        assert time.monotonic() < deadline, "orphaned consumer processes"
        time.sleep(0.1)


def test_secrets_stay_out_of_argv(redis_target) -> None:
    service = redis_target()
    for p in [psutil.Process(service.pid), *psutil.Process(service.pid).children()]:
        cmdline = " ".join(p.cmdline())
        assert TOKEN not in cmdline and SECRET not in cmdline
