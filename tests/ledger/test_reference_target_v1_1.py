"""Contract v1.1 end to end: k6 (message_soak with batches, string payloads, tenants and
resends) -> the reference target with its integrity and tenant faults -> the collector
-> the ledger. Every v1.1 count equals what the target's own fault log and k6's send
records say, computed here independently of the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from deliverydags.collector import SECRET_ENV, start
from deliverydags.ledger import reconcile
from deliverydags.procs import Service
from deliverydags.run.k6 import find_k6

pytestmark = pytest.mark.integration  # target, collector and k6 as processes

SCRIPT = Path(__file__).resolve().parents[2] / "deliverydags" / "k6" / "message_soak.js"
SECRET = "v11-secret"


def _wait_for_receipts(run_dir: Path, want: int, timeout_s: float = 30.0) -> None:
    path = run_dir / "receipts.ndjson"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= want:
            time.sleep(1.0)  # trailing ones
            return
        time.sleep(0.2)


def test_integrity_tenants_batches_and_resends(tmp_path: Path) -> None:
    run = tmp_path / "run"
    faults = run / "faults.ndjson"
    base = {**os.environ, SECRET_ENV: SECRET}
    target_env = {
        **base,
        "DELIVERYDAGS_TARGET_TOKEN": "own",
        "DELIVERYDAGS_TENANT_TOKENS": "a:tA,b:tB",
    }
    with start(out_dir=run, env=base) as collector:
        args = [
            "--listen",
            "127.0.0.1:0",
            "--allow-callback",
            collector.url.removeprefix("http://"),
        ]
        args += ["--fault-corrupt", "0.1", "--fault-undigest", "0.1", "--fault-leak", "0.1"]
        args += ["--fault-seed", "5", "--fault-log", str(faults)]
        with Service.python_module(
            "target", "deliverydags.target", args, env=target_env, log_path=run / "target.log"
        ) as target:
            k6_env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(tmp_path),
                "K6_NO_USAGE_REPORT": "true",
                "DD_TARGET_URL": target.url,
                "DD_COLLECTOR_URL": collector.url,
                "DD_RUN_ID": "v11",
                "DD_RATE": "60",
                "DD_DURATION_S": "3",
                "DD_BATCH": "4",
                "DD_INTEGRITY": "on",
                "DD_PAYLOAD_BYTES": "2048",
                "DD_TENANTS": "a:tA,b:tB",
                "DD_RESEND_SHARE": "0.2",
                "DD_CONFLICT_SHARE": "0.1",
                "DD_MAX_ERROR_RATE": "1",
            }
            argv = [find_k6(), "run", "-q", "--address=", "--log-format=raw", "--no-color"]
            argv += [f"--console-output={run / 'sends.ndjson'}", str(SCRIPT)]
            proc = subprocess.run(argv, env=k6_env, cwd=run, capture_output=True, timeout=120)
            assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
            lines = [
                json.loads(line)
                for line in (run / "sends.ndjson").read_text().splitlines()
                if line.startswith('{"dd":')
            ]
            messages = [s for s in lines if "resend" not in s]
            resends = [s for s in lines if "resend" in s]
            accepted = {s["id"] for s in messages if s["class"] == "accepted"}
            _wait_for_receipts(run, len(accepted))
    fault_of: dict[str, str] = {}
    for line in faults.read_text().splitlines():
        rec = json.loads(line)
        if rec["id"] in accepted:
            fault_of.setdefault(rec["id"], rec["fault"])
    ids = {kind: {m for m, f in fault_of.items() if f == kind} for kind in ("corrupt", "leak")}
    undigest = sum(1 for f in fault_of.values() if f == "undigest")
    assert ids["corrupt"] and ids["leak"] and undigest, "the faults must occur"
    assert len(messages) % 4 == 0 and len(accepted) == len(messages)  # all in tenant
    assert all(s["digest"] and s["tenant"] in ("a", "b") for s in messages)

    out = reconcile(run, [30]).to_dict()
    c = out["counts"]
    assert list(c)[14:] == ["corrupted", "undigested", "resent", "conflicts", "leaked"]
    assert c["attempted"] == c["accepted"] == len(accepted)
    assert c["corrupted"] == len(ids["corrupt"])
    assert set(out["samples"]["corrupted"]) == ids["corrupt"]
    assert c["undigested"] == undigest
    assert c["leaked"] == len(ids["leak"])  # each leaked message's one receipt
    assert set(out["samples"]["leaked"]) == ids["leak"]
    assert c["lost"] == len(ids["leak"])  # a leaked receipt delivers nothing
    assert c["delivered"] == len(accepted) - len(ids["leak"])
    assert c["duplicates"] == c["unexpected"] == 0  # an identical resend adds no delivery
    assert c["resent"] == len(resends)
    assert c["conflicts"] == sum(1 for s in resends if s["resend"] == "changed")
    assert all(s["status"] == (409 if s["resend"] == "changed" else 202) for s in resends)
    delay = out["send_delay_ms"]
    assert delay is not None and -1.0 <= delay["p50"] <= delay["p99"] <= delay["max"]
