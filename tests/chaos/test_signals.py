"""Chaos signals go to the process found, never to whatever holds its pid later."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import psutil
import pytest

from deliverydags.chaos import ChaosTiming, ProcessGone, send_signal
from deliverydags.chaos.consumer_kill import ConsumerKill

pytestmark = pytest.mark.integration


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_an_exited_process_is_not_signalled(sleeper: subprocess.Popen) -> None:
    found = psutil.Process(sleeper.pid)
    sleeper.kill()
    sleeper.wait()  # reaped: its pid is free for the next process
    with pytest.raises(ProcessGone, match=r"^consumer 1 \(pid \d+\) has exited: SIGKILL not sent"):
        send_signal(found, signal.SIGKILL, "consumer 1")


def test_a_reused_pid_is_never_hit(sleeper: subprocess.Popen) -> None:
    # A handle from an earlier process with this pid: same pid, another create time
    # (what psutil.Process records when it is made). The live process must survive.
    stale = psutil.Process(sleeper.pid)
    stale._ident = (stale.pid, stale.create_time() - 1000.0)
    with pytest.raises(ProcessGone, match="has exited: SIGKILL not sent"):
        send_signal(stale, signal.SIGKILL, "consumer 0")
    assert sleeper.poll() is None, "the process now holding the pid was killed"


def test_resuming_a_consumer_that_exited_says_so(sleeper: subprocess.Popen) -> None:
    hook = ConsumerKill(ChaosTiming(1.0, 1.0, 1000.0), "redis://127.0.0.1:1", "dd",
                        "SIGSTOP", 30.0, 1)  # fmt: skip
    hook.victim = psutil.Process(sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    lines: list[str] = []
    hook.release(SimpleNamespace(log=lines.append))  # type: ignore[arg-type]
    assert len(lines) == 1 and "has exited: SIGCONT not sent" in lines[0]
