"""The send records k6 writes (lib/deliverydags.js through message_soak.js) against a fake
target in this process that logs every request and its answer: each line says what the
target was sent and answered, computed here from the target's log, not from the module.
Contract v1.1: intended_ms, batch send, payload digest, tenants, resends."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deliverydags.collector import SECRET_ENV, start
from deliverydags.formats import signing
from deliverydags.ledger import reconcile
from deliverydags.run.k6 import find_k6

pytestmark = pytest.mark.integration  # k6 as a process

SCRIPT = Path(__file__).resolve().parents[2] / "deliverydags" / "k6" / "message_soak.js"
TOKENS = {"tA": "a", "tB": "b"}  # token -> tenant
COLLECTOR = "http://collector.test:9"


class FakeTarget:
    """Answers like a v1.1 target: 202, or 400 for every 7th seq from 3, 409 for an id
    accepted before with another body (the same body: 202 again), 403 for a tenant that
    is not its token's; a batch whose first seq is 8 gets no answer at all."""

    def __init__(self) -> None:
        self.log: list[dict] = []  # one per message per request: token, body, answer
        self.accepted: dict[str, dict] = {}
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if self.path == "/v1/messages":
                    self._answer(202, None, target.one(token, body, batch=False))
                elif self.path == "/v1/messages:batch":
                    msgs = body["messages"]
                    if msgs[0]["seq"] == 8:
                        with target.lock:
                            target.log += [{"token": token, "body": m, "answer": 0} for m in msgs]
                        self.close_connection = True  # no answer: k6 sees status 0
                        return
                    results = [target.one(token, m, batch=True) for m in msgs]
                    self._answer(200, {"results": results}, None)
                else:
                    self._answer(404, None, None)

            def _answer(self, status: int, doc: dict | None, one: dict | None) -> None:
                if one is not None:
                    status = one["status"]
                data = json.dumps(doc or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def one(self, token: str, msg: dict, batch: bool) -> dict:
        with self.lock:
            first = self.accepted.get(msg["id"])
            if "tenant" in msg and TOKENS.get(token) != msg["tenant"]:
                status = 403
            elif first is not None:
                status = 202 if first == msg else 409
            elif msg["seq"] % 7 == 3:
                status = 400
            else:
                status = 202
                self.accepted[msg["id"]] = msg
            self.log.append({"token": token, "body": msg, "answer": status, "batch": batch})
        return {"id": msg["id"], "status": status}


@pytest.fixture
def target() -> Iterator[FakeTarget]:
    fake = FakeTarget()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def run_k6(run_dir: Path, target: FakeTarget, **env: str) -> list[dict]:
    run_dir.mkdir(parents=True, exist_ok=True)
    full = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(run_dir),
        "K6_NO_USAGE_REPORT": "true",
        "DD_TARGET_URL": target.url,
        "DD_COLLECTOR_URL": COLLECTOR,
        "DD_RUN_ID": "r1",
        "DD_REQUEST_TIMEOUT_S": "3",
        "DD_MAX_ERROR_RATE": "1",
        "DELIVERYDAGS_TARGET_TOKEN": "tA",
        **env,
    }
    argv = [find_k6(), "run", "-q", "--address=", "--log-format=raw", "--no-color"]
    argv += [f"--console-output={run_dir / 'sends.ndjson'}", str(SCRIPT)]
    proc = subprocess.run(argv, env=full, cwd=run_dir, capture_output=True, timeout=120)
    assert proc.returncode in (0, 99), proc.stdout.decode() + proc.stderr.decode()
    text = (run_dir / "sends.ndjson").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"dd":')]


def test_v1_soak_lines_gain_only_the_intended_time(tmp_path: Path, target: FakeTarget) -> None:
    lines = run_k6(tmp_path, target, DD_RATE="20", DD_DURATION_S="1")
    assert len(lines) == len(target.log) and 19 <= len(lines) <= 21  # k6 may tick once more
    v1 = ["dd", "id", "stream", "seq", "sent_ms", "class", "status", "variant"]
    assert {tuple(line) for line in lines} == {(*v1, "intended_ms")}
    sent = {e["body"]["id"]: e for e in target.log}
    for line in lines:
        answer = sent[line["id"]]["answer"]
        assert line["status"] == answer
        assert line["class"] == ("accepted" if answer == 202 else "rejected")
        assert isinstance(sent[line["id"]]["body"]["payload"], dict)  # v1 payload
    # the schedule: one iteration every 50 ms from the scenario's start (whole ms)
    intended = sorted(line["intended_ms"] for line in lines)
    steps = {round(b - a, 6) for a, b in itertools.pairwise(intended)}
    assert steps == {50.0}
    for line in lines:
        assert -1.0 <= line["sent_ms"] - line["intended_ms"] < 1000.0
    out = reconcile(tmp_path, [30]).to_dict()
    assert list(out["counts"])[-1] == "bad_signature"  # no v1.1 counts in a v1 run
    delay = out["send_delay_ms"]
    assert delay is not None and -1.0 <= delay["p50"] <= delay["p99"] <= delay["max"] < 1000


def test_batches_digests_tenants_and_resends(tmp_path: Path, target: FakeTarget) -> None:
    lines = run_k6(
        tmp_path,
        target,
        DD_RATE="40",
        DD_DURATION_S="2",
        DD_BATCH="4",
        DD_INTEGRITY="on",
        DD_PAYLOAD_BYTES="300",
        DD_TENANTS="a:tA,b:tB",
        DD_RESEND_SHARE="0.3",
        DD_CONFLICT_SHARE="0.3",
        DD_MAX_VUS="4",
    )
    messages = [line for line in lines if "resend" not in line]
    resends = [line for line in lines if "resend" in line]
    firsts = [e for e in target.log if e.get("batch", True)]  # batched: first sends
    n = len(messages)  # messages, 4 per request, never requests
    assert n == len(firsts) and n % 4 == 0 and 76 <= n <= 84
    by_id = {e["body"]["id"]: e for e in firsts}
    assert len(by_id) == n
    vus = {}
    for line in messages:
        entry = by_id[line["id"]]
        body = entry["body"]
        # each message's class from its own status; no answer: indeterminate, status 0
        answer = entry["answer"]
        want = {202: "accepted", 0: "indeterminate"}.get(answer, "rejected")
        assert (line["class"], line["status"]) == (want, answer), line
        # the payload: a string of 300 bytes encoded, and its SHA-256 in the line
        assert isinstance(body["payload"], str) and len(json.dumps(body["payload"])) == 300
        assert line["digest"] == hashlib.sha256(body["payload"].encode()).hexdigest()
        # tenants: a VU's messages go with one tenant, its callback and its token
        assert line["tenant"] == body["tenant"] == TOKENS[entry["token"]]
        assert body["callback_url"] == f"{COLLECTOR}/v1/receipts/{line['tenant']}"
        vus.setdefault(line["stream"], set()).add(line["tenant"])
    assert all(len(t) == 1 for t in vus.values()) and len(vus) >= 2
    assert {line["tenant"] for line in messages} == {"a", "b"}
    assert any(line["class"] == "indeterminate" for line in messages)
    assert any(line["class"] == "rejected" for line in messages)
    # a request's messages: one sent_ms, one intended_ms (batch 4 at 40/s: 100 ms apart)
    per_request: dict[float, set[float]] = {}
    for line in messages:
        per_request.setdefault(line["sent_ms"], set()).add(line["intended_ms"])
    assert len(per_request) == n // 4 and all(len(v) == 1 for v in per_request.values())
    intended = sorted({line["intended_ms"] for line in messages})
    assert {round(b - a, 6) for a, b in itertools.pairwise(intended)} == {100.0}
    # resends: only of accepted messages, each its own line with the repeat's answer
    repeats = [e for e in target.log if e.get("batch") is False]
    assert len(repeats) == len(resends) > 0
    answered = {e["body"]["id"]: e for e in repeats}
    for line in resends:
        assert by_id[line["id"]]["answer"] == 202
        again = answered[line["id"]]
        assert line["resend"] in ("same", "changed")
        same_body = again["body"] == by_id[line["id"]]["body"]
        assert same_body == (line["resend"] == "same")
        assert line["status"] == again["answer"] == (202 if same_body else 409)
        assert line["class"] == ("accepted" if same_body else "rejected")
    kinds = {line["resend"] for line in resends}
    out = reconcile(tmp_path, [30]).to_dict()
    c = out["counts"]
    assert c["attempted"] == n and c["accepted"] == sum(1 for e in firsts if e["answer"] == 202)
    assert c["indeterminate"] == sum(1 for e in firsts if e["answer"] == 0)
    assert (c["resent"], c["conflicts"]) == (
        len(resends),
        sum(1 for line in resends if line["status"] == 409),
    )
    assert c["undigested"] == c["corrupted"] == c["leaked"] == 0  # no receipts at all
    assert c["lost"] == c["accepted"]
    assert kinds  # at least one kind drawn


# --- through the collector to the ledger -------------------------------------------------


def deliveries(target: FakeTarget, collector_url: str) -> list[tuple[str, dict]]:
    """The receipts the fake target delivers, in order, as (callback path, receipt): every
    accepted message once, and once more per accepted identical resend. Faults by seq:
    % 6 == 2 goes to the other tenant's callback, == 4 carries a wrong digest, == 5 none."""
    out = []
    for e in target.log:
        if e["answer"] != 202:
            continue
        body = e["body"]
        path = body["callback_url"].removeprefix(collector_url)
        digest = hashlib.sha256(body["payload"].encode()).hexdigest()
        receipt = {
            "id": body["id"],
            "stream": body["stream"],
            "seq": body["seq"],
            "status": "delivered",
            "delivered_at": "2026-01-01T00:00:00Z",
            "digest": digest,
        }
        if e.get("batch", True):  # a first send; its resends are delivered as they are
            if body["seq"] % 6 == 2:
                other = "b" if body["tenant"] == "a" else "a"
                path = f"/v1/receipts/{other}"
            elif body["seq"] % 6 == 4:
                receipt["digest"] = "00" * 32
            elif body["seq"] % 6 == 5:
                del receipt["digest"]
        out.append((path, receipt))
    return out


def test_integrity_tenants_and_resends_end_to_end(tmp_path: Path, target: FakeTarget) -> None:
    secret = "e2e-secret"
    run_dir = tmp_path / "run"
    with start(out_dir=run_dir, env={**os.environ, SECRET_ENV: secret}) as collector:
        run_k6(
            run_dir,
            target,
            DD_COLLECTOR_URL=collector.url,
            DD_RATE="30",
            DD_DURATION_S="2",
            DD_BATCH="3",
            DD_INTEGRITY="on",
            DD_PAYLOAD_BYTES="1000",
            DD_TENANTS="a:tA,b:tB",
            DD_RESEND_SHARE="0.4",
            DD_CONFLICT_SHARE="0.2",
            DD_MAX_VUS="4",
        )
        sent = deliveries(target, collector.url)
        for path, receipt in sent:
            body = json.dumps(receipt).encode()
            signature = signing.sign(secret.encode(), body)
            headers = {"Content-Type": "application/json", signing.HEADER: signature}
            req = urllib.request.Request(collector.url + path, body, headers, method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 204
    # The truth from the target's log: per message, its receipts in order.
    firsts = {e["body"]["id"]: e for e in target.log if e.get("batch", True)}
    got: dict[str, list[tuple[str, dict]]] = {}
    for path, receipt in sent:
        got.setdefault(receipt["id"], []).append((path, receipt))
    leaked, corrupted, undigested, duplicates = [], [], 0, 0
    for mid, receipts in got.items():
        own = f"/v1/receipts/{firsts[mid]['body']['tenant']}"
        kept = [r for path, r in receipts if path == own]
        leaked += [mid] * (len(receipts) - len(kept))
        undigested += sum(1 for r in kept if "digest" not in r)
        duplicates += max(0, len(kept) - 1)
        want = hashlib.sha256(firsts[mid]["body"]["payload"].encode()).hexdigest()
        if kept and kept[0].get("digest", want) != want:
            corrupted.append(mid)
    accepted = [m for m, e in firsts.items() if e["answer"] == 202]
    assert leaked and corrupted and undigested and duplicates, "every fault must occur"
    out = reconcile(run_dir, [30]).to_dict()
    c = out["counts"]
    assert list(c)[14:] == ["corrupted", "undigested", "resent", "conflicts", "leaked"]
    assert c["accepted"] == len(accepted)
    assert c["leaked"] == len(leaked)
    assert set(out["samples"]["leaked"]) == set(leaked)
    assert c["corrupted"] == len(corrupted)
    assert set(out["samples"]["corrupted"]) == set(corrupted)
    assert c["undigested"] == undigested
    assert c["duplicates"] == duplicates
    assert c["unexpected"] == 0

    def own_callback(mid: str) -> str:
        return f"/v1/receipts/{firsts[mid]['body']['tenant']}"

    delivered = {m for m in accepted if any(p == own_callback(m) for p, _ in got.get(m, []))}
    assert c["delivered"] == len(delivered)
    assert c["lost"] == len(accepted) - len(delivered)
    repeats = [e for e in target.log if e.get("batch") is False]
    assert c["resent"] == len(repeats)
    assert c["conflicts"] == sum(1 for e in repeats if e["answer"] == 409)


RAMP_SCRIPT = """
import http from 'k6/http';
import { Accounting } from '%s';
export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate', startRate: 10, timeUnit: '1s',
      preAllocatedVUs: 5, maxVUs: 10,
      stages: [{ target: 40, duration: '1s' }, { target: 40, duration: '500ms' },
               { target: 0, duration: '1s' }],
    },
  },
};
const acct = new Accounting();
export default function () {
  const msg = acct.next();
  acct.send(msg, () => http.post(`${__ENV.DD_TARGET_URL}/v1/messages`,
    JSON.stringify({ ...msg, payload: 'p' }), { headers: { Authorization: 'Bearer tA' } }));
}
"""


def test_ramping_arrival_rate_intended_times(tmp_path: Path, target: FakeTarget) -> None:
    lib = SCRIPT.parent / "lib" / "deliverydags.js"
    script = tmp_path / "ramp.js"
    script.write_text(RAMP_SCRIPT % lib)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "K6_NO_USAGE_REPORT": "true"}
    argv = [find_k6(), "run", "-q", "--address=", "--log-format=raw", "--no-color"]
    argv += [f"--console-output={tmp_path / 'sends.ndjson'}", str(script)]
    env["DD_TARGET_URL"] = target.url
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    lines = [
        json.loads(line)
        for line in (tmp_path / "sends.ndjson").read_text().splitlines()
        if line.startswith('{"dd":')
    ]
    # the area under 10 -> 40/s over 1 s, 40/s for 0.5 s, 40 -> 0/s over 1 s: 25 + 20 + 20
    assert 63 <= len(lines) <= 65

    # Iteration k starts when the area under the rate reaches k + 1 (k6's own schedule,
    # computed here from the stages): on time, a fixed offset from the intended times.
    def area_ms(k: int) -> float:
        i = k + 1
        if i <= 25:  # 10 + 30 t per s: 10 t + 15 t^2 = i
            return 1000 * (-10 + math.sqrt(100 + 60 * i)) / 30
        if i <= 45:
            return 1000 + (i - 25) * 25.0
        j = i - 45  # 40 - 40 t: 40 t - 20 t^2 = j
        return 1500 + 1000 * (40 - math.sqrt(1600 - 80 * j)) / 40

    by_seq = sorted(lines, key=lambda line: line["intended_ms"])
    start = by_seq[0]["intended_ms"] - area_ms(0)
    for k, line in enumerate(by_seq):
        assert line["intended_ms"] - start == pytest.approx(area_ms(k), abs=1e-3), k  # ulp
        assert -1.0 <= line["sent_ms"] - line["intended_ms"] < 500.0
