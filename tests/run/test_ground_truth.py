"""Whole runs against the reference target with its fault knobs on: every count equals
what the target's own fault log and k6's send records say, computed here independently
of the ledger. Forged and stale receipts posted mid-run are rejected and counted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from deliverydags.formats import signing
from deliverydags.formats.receipt_columns import sealed_columns
from deliverydags.formats.send_columns import sealed_send_columns
from deliverydags.ledger import reconcile
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

SECRET = "ground-truth-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path: Path, faults: list[str], deadlines: str, collector_port: int | None = None,
         during=None) -> tuple[dict, list[dict], dict[str, str]]:  # fmt: skip
    fault_log = tmp_path / "faults.ndjson"
    out = tmp_path / "result.json"
    env = {"DELIVERYDAGS_CALLBACK_SECRET": SECRET, "PATH": "/usr/bin:/bin"}
    if collector_port:
        env["DELIVERYDAGS_COLLECTOR_ADDR"] = f"127.0.0.1:{collector_port}"
    target_args = [*faults, "--fault-seed", "11", "--fault-log", str(fault_log)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deliverydags.cli", "run", "message_soak",
         "--rate", "60", "--duration", "6", "--deadlines", deadlines,
         "--json", str(out), "--work-dir", str(tmp_path / "runs"),
         *(f"--target-arg={a}" for a in target_args)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if during:
        during()
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode in (0, 1), stderr
    result = json.loads(out.read_text())
    run_dir = Path(result["files"]["run_dir"])
    _same_books_without_the_copies(run_dir, deadlines, result)
    sends = [
        json.loads(line)
        for line in (run_dir / "sends.ndjson").read_text().splitlines()
        if line.startswith('{"dd":1')
    ]
    faulted = {}
    if fault_log.exists():
        for line in fault_log.read_text().splitlines():
            rec = json.loads(line)
            faulted.setdefault(rec["id"], rec["fault"])
    return result, sends, faulted


def _same_books_without_the_copies(run_dir: Path, deadlines: str, result: dict) -> None:
    """The run left sealed columnar copies of its sends and receipts; the ledger's books
    from them are the books from the NDJSON files alone."""
    assert sealed_send_columns(run_dir) is not None
    assert sealed_columns(run_dir) is not None
    close_ns = result["files"]["closed_at_ns"]
    deadlines_s = [float(d) for d in deadlines.split(",")]
    with_copies = reconcile(run_dir, deadlines_s, close_ns=close_ns).to_dict()
    assert with_copies["counts"] == result["counts"]
    plain = run_dir / "ndjson-only"
    plain.mkdir()
    for path in run_dir.glob("*.ndjson"):
        os.link(path, plain / path.name)
    assert reconcile(plain, deadlines_s, close_ns=close_ns).to_dict() == with_copies


def test_drop_duplicate_fail_and_forged_receipts(tmp_path: Path) -> None:
    port = _free_port()

    def forge() -> None:
        """Once the collector is up, post 3 forged and 2 stale receipts to it."""
        url = f"http://127.0.0.1:{port}/v1/receipts"
        receipt = {"id": "forged-1", "stream": "s", "seq": 0, "status": "delivered",
                   "delivered_at": "2026-11-23T00:00:00Z"}  # fmt: skip
        body = json.dumps(receipt).encode()
        headers = [
            signing.sign(b"not-the-secret", body),
            "t=1,v1=00",
            "",
            signing.sign(SECRET.encode(), body, t=int(time.time()) - 310),
            signing.sign(SECRET.encode(), body, t=int(time.time()) + 310),
        ]
        deadline = time.monotonic() + 60
        for header in headers:
            while time.monotonic() < deadline:
                req = urllib.request.Request(url, data=body, method="POST")
                req.add_header("Content-Type", "application/json")
                if header:
                    req.add_header("X-Signature", header)
                try:
                    urllib.request.urlopen(req, timeout=5)
                    raise AssertionError("a forged receipt was accepted")
                except urllib.error.HTTPError as exc:
                    assert exc.code == 401
                    break
                except urllib.error.URLError:
                    time.sleep(0.1)  # collector not up yet

    result, sends, faulted = _run(
        tmp_path,
        ["--fault-drop", "0.04", "--fault-duplicate", "0.05", "--fault-fail", "0.03"],
        "2,4,6",
        collector_port=port,
        during=lambda: threading.Thread(target=forge).start(),
    )
    accepted = {s["id"] for s in sends if s["class"] == "accepted"}
    kinds = defaultdict(set)
    for mid, kind in faulted.items():
        if mid in accepted:
            kinds[kind].add(mid)
    assert kinds["drop"] and kinds["duplicate"] and kinds["fail"], "the faults must occur"
    c = result["counts"]
    assert c["attempted"] == len(sends) == len({s["id"] for s in sends})
    assert c["accepted"] == len(accepted)
    assert c["lost"] == len(kinds["drop"])
    assert c["failed"] == len(kinds["fail"])
    assert c["duplicates"] == len(kinds["duplicate"])
    assert c["delivered"] == len(accepted - kinds["drop"] - kinds["fail"])
    assert c["late"] == c["out_of_order"] == c["unexpected"] == 0
    assert c["bad_signature"] == 5
    assert set(result["samples"]["lost"]) == kinds["drop"]
    assert set(result["samples"]["duplicates"]) == kinds["duplicate"]
    assert result["status"] == "failed"
    failed = {g["name"] for g in result["gates"] if not g["passed"]}
    assert failed == {"zero_loss", "zero_failed", "duplicate_rate"}  # 5% duplicates > 0.1%


def test_delay_past_the_first_deadline_is_late_and_out_of_order(tmp_path: Path) -> None:
    result, sends, faulted = _run(
        tmp_path, ["--fault-delay", "0.05", "--fault-delay-s", "3"], "1.5,6,9"
    )
    accepted = [s for s in sends if s["class"] == "accepted"]
    delayed = {s["id"] for s in accepted if faulted.get(s["id"]) == "delay"}
    assert delayed, "the fault must occur"
    # A delayed message is overtaken by any later message of its stream that was not
    # delayed itself (they are 3 s apart at most within this 6 s run).
    by_stream = defaultdict(list)
    for s in accepted:
        by_stream[s["stream"]].append(s)
    overtaken = {
        s["id"]
        for s in accepted
        if s["id"] in delayed
        and any(o["seq"] > s["seq"] and o["id"] not in delayed for o in by_stream[s["stream"]])
    }
    c = result["counts"]
    assert c["late"] == len(delayed)
    assert result["late_by_deadline"] == {"6": len(delayed), "9": 0}
    assert c["delivered"] == len(accepted) - len(delayed)
    assert c["lost"] == c["failed"] == c["duplicates"] == 0
    assert c["out_of_order"] == len(overtaken)
    assert set(result["samples"]["out_of_order"]) == overtaken
    assert result["latency_ms"]["max"] >= 3000
