"""`deliverydags run NAME` as a user runs it, with the reference target's fault log: the
exit code, the result JSON and the faults the target says it injected."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.conftest import run_cli


def run_with_fault_log(
    tmp_path: Path, *args: str, env: dict | None = None
) -> tuple[int, dict, list[dict]]:
    out, log = tmp_path / "result.json", tmp_path / "faults.ndjson"
    proc = run_cli(*args, f"--target-arg=--fault-log={log}", "--work-dir",
                   str(tmp_path / "runs"), "--json", str(out), env=env)  # fmt: skip
    assert out.is_file(), proc.stderr[-2000:]
    faults = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
    return proc.returncode, orjson.loads(out.read_bytes()), faults


def failed_checks(result: dict) -> set[str]:
    return {g["name"] for g in result["gates"] if not g["passed"]}
