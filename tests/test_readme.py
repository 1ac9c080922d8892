"""Every command the README shows, run exactly as written: from the project root, with the
README's own flags and no DELIVERYDAGS_* or DAGSTER_HOME in the environment, as a user
who has just cloned the project types it. A command added to the README without a case
here fails ``test_every_readme_command_is_run``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# What a fresh shell has: nothing of ours, nothing a test set.
USER_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("DELIVERYDAGS_", "DAGSTER_", "PYTEST_")) and k != "VIRTUAL_ENV"
}


def readme_commands() -> list[str]:
    """The README's ```bash blocks, a command per line (continuations joined), comments
    dropped."""
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(), re.M | re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def sh(command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=USER_ENV,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def explain(out: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {out.returncode}\n--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}"
    )


DEMO = "scripts/demo.sh"
TESTS = "scripts/test.sh"
UNIT = '.venv/bin/pytest -m "not integration"'
UI = "DAGSTER_HOME=$PWD/.dagster .venv/bin/dagster dev -m deliverydags.definitions"
RUN = ".venv/bin/deliverydags run message_soak --rate 50 --duration 5"
EXAMPLE = "--data-dir data/example"
IMPORT = f".venv/bin/deliverydags history import docs/examples/history {EXAMPLE}"
TREND = f".venv/bin/deliverydags trend {EXAMPLE}"
GATE = f".venv/bin/deliverydags gate {EXAMPLE}"
AB = ".venv/bin/deliverydags ab --a 100000:99500 --b 100000:99310"
PROD = (
    "export DAGSTER_HOME=$PWD/.dagster-prod && mkdir -p $DAGSTER_HOME "
    "&& cp dagster.yaml $DAGSTER_HOME/",
    "export DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT=5432 DAGSTER_PG_USER=postgres "
    "DAGSTER_PG_PASSWORD= DAGSTER_PG_DB=test",
    ".venv/bin/dagster-webserver -w workspace.yaml "
    "& .venv/bin/dagster-daemon run -w workspace.yaml",
)
TESTED = {DEMO, TESTS, UNIT, UI, RUN, IMPORT, TREND, GATE, AB, *PROD}


def test_every_readme_command_is_run() -> None:
    shown = readme_commands()
    assert set(shown) == TESTED, (
        f"in the README, not run here: {sorted(set(shown) - TESTED)}; "
        f"run here, not in the README: {sorted(TESTED - set(shown))}"
    )


def test_the_readme_test_command_is_what_ci_runs() -> None:
    # scripts/test.sh runs this suite, so it is run by .ci/run, not from inside it.
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec scripts/test\.sh$", ci, re.M), ci
    assert readme_commands()[:2] == [DEMO, TESTS]  # the README opens with the two


def test_run_then_review_commands_as_written() -> None:
    runs = ROOT / "data" / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    try:
        out = sh(RUN, timeout_s=180)
        assert out.returncode == 0, explain(out)
        assert "| zero_loss | yes |" in out.stdout, explain(out)
        made = set(runs.iterdir()) - before
        assert len(made) == 1, made
        result = json.loads((made.pop() / "result.json").read_bytes())
        assert result["status"] == "passed"
        assert result["counts"]["delivered"] == result["counts"]["accepted"] > 0
    finally:
        for path in set(runs.iterdir()) - before if runs.exists() else ():
            shutil.rmtree(path, ignore_errors=True)

    shutil.rmtree(ROOT / "data" / "example", ignore_errors=True)
    out = sh(IMPORT, timeout_s=120)
    assert out.returncode == 0, explain(out)
    assert "imported 21 night(s)" in out.stdout, explain(out)
    out = sh(TREND, timeout_s=120)
    assert out.returncode == 1, explain(out)  # the README: the last nights got slower
    assert "latency_ms.p95:2026-11-20" in out.stdout, explain(out)
    out = sh(GATE, timeout_s=120)
    assert out.returncode == 0, explain(out)
    assert "decision: HOLD" in out.stdout, explain(out)
    out = sh(AB, timeout_s=60)
    assert out.returncode == 0, explain(out)
    assert "B delivers worse than A" in out.stdout, explain(out)


def test_unit_tier_as_written() -> None:
    began = time.monotonic()
    out = sh(UNIT, timeout_s=600)
    assert out.returncode == 0, explain(out)
    last = out.stdout.strip().splitlines()[-1]  # "==== N passed, M deselected ... ===="
    assert re.search(r"\b\d+ passed, \d+ deselected\b", last), explain(out)
    assert "failed" not in last and "error" not in last, explain(out)
    print(f"unit tier: {time.monotonic() - began:.0f} s")  # the goal is under a minute


def test_demo_as_written() -> None:
    out = sh(DEMO, timeout_s=600)
    assert out.returncode == 0, explain(out)
    assert "| zero_loss | yes |" in out.stdout, explain(out)
    assert "Open the Dagster UI on this run" in out.stdout, explain(out)


def _serves_message_soak(timeout_s: float, proc: subprocess.Popen) -> None:
    query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited {proc.returncode}"
        try:
            req = urllib.request.Request(
                "http://127.0.0.1:3000/graphql",
                data=query,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                nodes = json.loads(resp.read())["data"]["assetNodes"]
            keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
            assert "message_soak" in keys, keys
            return
        except (OSError, KeyError, TypeError, ValueError) as exc:
            last = repr(exc)
            time.sleep(1)
    raise AssertionError(f"the UI did not serve message_soak within {timeout_s:.0f} s: {last}")


def _serve(script: str, log: Path) -> None:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            env=USER_ENV,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            _serves_message_soak(180, proc)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ui_command_as_written(tmp_path: Path) -> None:
    _serve(UI, tmp_path / "dagster-dev.log")


def test_production_commands_as_written(tmp_path: Path, postgres_env: dict[str, str]) -> None:
    try:
        _serve("set -e\n" + "\n".join(PROD) + "\nwait\n", tmp_path / "production.log")
    finally:
        shutil.rmtree(ROOT / ".dagster-prod", ignore_errors=True)
