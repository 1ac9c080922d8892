"""A built wheel carries the k6 scenarios, and a non-editable install runs a check from any
directory (no checkout beside it)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"


def test_a_wheel_runs_message_soak_from_anywhere(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("deliverydags-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"deliverydags/k6/message_soak.js", "deliverydags/k6/lib/deliverydags.js"} <= names

    venv = tmp_path / "venv"
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    py = str(venv / "bin" / "python")
    # The lock's exact versions (uv's cache has them), then the wheel itself.
    for args in (
        ["sync", "--require-hashes", str(ROOT / "requirements.lock")],
        ["install", "--no-deps", str(wheel)],
    ):
        subprocess.run([str(UV), "pip", *args, "--quiet", "--python", py], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DELIVERYDAGS_", "VIRTUAL"))}
    out = subprocess.run(
        [
            str(venv / "bin" / "deliverydags"),
            "run",
            "message_soak",
            "--rate",
            "20",
            "--duration",
            "2",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| zero_loss | yes |" in out.stdout
    # It ran the installed copy, not this checkout.
    installed = subprocess.run(
        [py, "-c", "import deliverydags; print(deliverydags.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in installed, installed
