"""The receipt collector, tested as the real process over 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from deliverydags.collector import RECEIPTS_PATH, SECRET_ENV, ReceiptTail, start
from deliverydags.collector.journal import Journal, JournalError
from deliverydags.formats import RECEIPTS_FILE, REJECTED_FILE, signing
from deliverydags.formats.receipt_columns import COLUMNS_FILE, SEAL_FILE, sealed_columns
from deliverydags.procs import Service
from tests.support.collector import ENV, KEY, SECRET, get_json, lines, post, receipt

pytestmark = pytest.mark.integration  # the collector as a process


def batch(ids: range, stream: str = "s") -> dict:
    return {"messages": [receipt(i, stream) for i in ids]}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def collector(out: Path) -> Iterator[Service]:
    with start(out_dir=out, env=ENV) as service:
        yield service


# --- valid receipts --------------------------------------------------------------------


def test_single_receipt_is_recorded_exactly(collector: Service, out: Path) -> None:
    before = time.time_ns()
    status, _ = post(collector.url, orjson.dumps(receipt(7)))
    after = time.time_ns()
    assert status == 204
    [line] = lines(out / RECEIPTS_FILE)
    assert list(line) == ["n", "recv_ns", "id", "stream", "seq", "status", "delivered_at"]
    assert before <= line.pop("recv_ns") <= after
    assert line == {"n": 0, **receipt(7)}
    assert get_json(collector.url, "/v1/stats") == (
        200,
        {"receipts": 1, "bad_signature": 0, "malformed": 0},
    )


def test_batch_gets_consecutive_numbers_in_array_order(collector: Service, out: Path) -> None:
    assert post(collector.url, orjson.dumps(receipt(0)))[0] == 204
    failed = {**receipt(99, "other", "failed"), "error": "gave up"}
    body = {"messages": [receipt(3), receipt(1), failed, receipt(2)]}
    assert post(collector.url, orjson.dumps(body))[0] == 204
    got = lines(out / RECEIPTS_FILE)
    assert [(r["n"], r["id"]) for r in got] == [
        (0, "m-0"),
        (1, "m-3"),
        (2, "m-1"),
        (3, "m-99"),
        (4, "m-2"),
    ]
    assert got[3]["status"] == "failed" and got[3]["stream"] == "other"
    assert len({r["recv_ns"] for r in got[1:]}) == 1  # one POST, one arrival time
    assert got[0]["recv_ns"] <= got[1]["recv_ns"]


def test_empty_batch_is_accepted_and_records_nothing(collector: Service, out: Path) -> None:
    assert post(collector.url, b'{"messages": []}')[0] == 204
    assert lines(out / RECEIPTS_FILE) == []


def test_health_and_stats(collector: Service) -> None:
    assert get_json(collector.url, "/healthz") == (200, {"status": "ok"})


# --- refused POSTs ---------------------------------------------------------------------

BODY = orjson.dumps(batch(range(3)))


def _sig_at(offset_s: int, key: bytes = KEY) -> str:
    return signing.sign(key, BODY, int(time.time()) + offset_s)


def _flip_last(sig: str) -> str:
    return sig[:-1] + ("1" if sig.endswith("0") else "0")


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda: None, id="missing"),
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: "t=abc,v1=00", id="garbage"),
        pytest.param(lambda: _sig_at(0, b"wrong-secret"), id="wrong-secret"),
        pytest.param(lambda: _flip_last(_sig_at(0)), id="wrong-mac"),
        pytest.param(lambda: _sig_at(-301), id="stale"),
        pytest.param(lambda: _sig_at(301), id="future"),
    ],
)
def test_bad_signature_is_401_counted_and_not_recorded(
    collector: Service, out: Path, make_signature
) -> None:
    status, _ = post(collector.url, BODY, signature=make_signature())
    assert status == 401
    assert lines(out / RECEIPTS_FILE) == []
    [rejected] = lines(out / REJECTED_FILE)
    assert rejected["reason"] == "bad_signature" and isinstance(rejected["recv_ns"], int)
    assert get_json(collector.url, "/v1/stats")[1] == {
        "receipts": 0,
        "bad_signature": 1,
        "malformed": 0,
    }


def test_signature_over_a_different_body_is_refused(collector: Service, out: Path) -> None:
    tampered = BODY.replace(b"m-1", b"m-9")
    assert post(collector.url, tampered, signature=signing.sign(KEY, BODY))[0] == 401
    assert lines(out / RECEIPTS_FILE) == []


def test_signature_within_tolerance_is_accepted(collector: Service, out: Path) -> None:
    assert post(collector.url, BODY, signature=_sig_at(-295))[0] == 204
    assert post(collector.url, BODY, signature=_sig_at(295))[0] == 204
    assert len(lines(out / RECEIPTS_FILE)) == 6


MALFORMED = {
    "not-json": b"{not json",
    "top-level-array": b"[]",
    "number": b"17",
    "messages-not-array": b'{"messages": {"id": "x"}}',
    "missing-id": orjson.dumps({k: v for k, v in receipt(1).items() if k != "id"}),
    "id-not-str": orjson.dumps({**receipt(1), "id": 1}),
    "stream-missing": orjson.dumps({k: v for k, v in receipt(1).items() if k != "stream"}),
    "seq-bool": orjson.dumps({**receipt(1), "seq": True}),
    "seq-str": orjson.dumps({**receipt(1), "seq": "1"}),
    "seq-float": orjson.dumps({**receipt(1), "seq": 1.0}),
    "status-other": orjson.dumps({**receipt(1), "status": "ok"}),
    "status-list": orjson.dumps({**receipt(1), "status": ["delivered"]}),
    "no-delivered-at": orjson.dumps({k: v for k, v in receipt(1).items() if k != "delivered_at"}),
    "one-bad-in-batch": orjson.dumps({"messages": [receipt(1), {**receipt(2), "seq": None}]}),
    "item-not-object": orjson.dumps({"messages": [receipt(1), "m-2"]}),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_is_400_counted_and_not_recorded(
    collector: Service, out: Path, body: bytes
) -> None:
    status, answer = post(collector.url, body)
    assert status == 400
    assert orjson.loads(answer)["error"]
    assert lines(out / RECEIPTS_FILE) == []
    assert [r["reason"] for r in lines(out / REJECTED_FILE)] == ["malformed"]
    assert get_json(collector.url, "/v1/stats")[1] == {
        "receipts": 0,
        "bad_signature": 0,
        "malformed": 1,
    }


# --- concurrency and durability --------------------------------------------------------


async def _hammer(url: str, receipts_path: Path, tasks: int, posts: int) -> list[list[str]]:
    """``tasks`` clients each POST ``posts`` batches; after every 204 the ids must be on disk."""
    sent: list[list[str]] = []

    async def client(session: aiohttp.ClientSession, t: int) -> None:
        for p in range(posts):
            size = 1 + (t * 7 + p) % 9  # batches of 1..9 receipts
            items = [receipt(j, stream=f"s{t}") | {"id": f"t{t}-p{p}-{j}"} for j in range(size)]
            body = orjson.dumps(items[0] if size == 1 else {"messages": items})
            headers = {signing.HEADER: signing.sign(KEY, body)}
            async with session.post(url + RECEIPTS_PATH, data=body, headers=headers) as resp:
                assert resp.status == 204
            on_disk = receipts_path.read_bytes()  # read right after the 204, no await between
            ids = [r["id"] for r in items]
            for rid in ids:
                assert b'"id":"%s"' % rid.encode() in on_disk, f"204 before {rid} was on disk"
            sent.append(ids)

    connector = aiohttp.TCPConnector(limit=tasks)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session, t) for t in range(tasks)))
    return sent


def test_concurrent_posts_recorded_once_without_gaps(collector: Service, out: Path) -> None:
    sent = asyncio.run(_hammer(collector.url, out / RECEIPTS_FILE, tasks=40, posts=25))
    got = lines(out / RECEIPTS_FILE)
    total = sum(len(ids) for ids in sent)
    assert [r["n"] for r in got] == list(range(total))
    assert sorted(r["id"] for r in got) == sorted(rid for ids in sent for rid in ids)
    by_id = {r["id"]: r for r in got}
    for ids in sent:  # a batch is contiguous, in array order, with one arrival time
        ns = [by_id[rid]["n"] for rid in ids]
        assert ns == list(range(ns[0], ns[0] + len(ns)))
        assert len({by_id[rid]["recv_ns"] for rid in ids}) == 1
    assert get_json(collector.url, "/v1/stats")[1]["receipts"] == total


def test_restart_continues_numbering_and_cuts_a_torn_line(out: Path) -> None:
    with start(out_dir=out, env=ENV) as service:
        assert post(service.url, orjson.dumps(batch(range(3))))[0] == 204
    with (out / RECEIPTS_FILE).open("ab") as f:
        f.write(b'{"n":3,"recv_ns":1,"id":"torn')  # a crash mid-write, never acknowledged
    with start(out_dir=out, env=ENV) as service:
        assert post(service.url, orjson.dumps(receipt(9)))[0] == 204
    got = lines(out / RECEIPTS_FILE)
    assert [(r["n"], r["id"]) for r in got] == [(0, "m-0"), (1, "m-1"), (2, "m-2"), (3, "m-9")]


def columnar_rows(out: Path) -> list[tuple[int, int, str, str]] | None:
    """The sealed columnar copy's rows as (n, recv_ns, id, status); None if not sealed."""
    sealed = sealed_columns(out)
    if sealed is None:
        return None
    table = sealed.reader().read_all()
    assert sealed.complete
    status = ["delivered" if d else "failed" for d in table.column("delivered").to_pylist()]
    cols = [table[k].to_pylist() for k in ("n", "recv_ns", "id")]
    return list(zip(*cols, status, strict=True))


def test_clean_stop_seals_a_columnar_copy_of_the_receipts(out: Path) -> None:
    with start(out_dir=out, env=ENV) as service:
        mixed = batch(range(3))
        mixed["messages"][1]["status"] = "failed"
        assert post(service.url, orjson.dumps(mixed))[0] == 204
        assert post(service.url, orjson.dumps(receipt(7)))[0] == 204
        assert post(service.url, b"{}", signature=None)[0] == 401
        assert post(service.url, orjson.dumps({"messages": [{"id": 1}]}))[0] == 400
        assert sealed_columns(out) is None  # no seal while it runs
    want = [(r["n"], r["recv_ns"], r["id"], r["status"]) for r in lines(out / RECEIPTS_FILE)]
    assert [w[3] for w in want] == ["delivered", "failed", "delivered", "delivered"]
    assert columnar_rows(out) == want


def test_restarted_or_killed_collector_leaves_no_sealed_copy(out: Path) -> None:
    with start(out_dir=out, env=ENV) as service:
        assert post(service.url, orjson.dumps(batch(range(3))))[0] == 204
    assert columnar_rows(out) is not None
    with start(out_dir=out, env=ENV) as service:  # restarted: numbering goes on from 3
        assert post(service.url, orjson.dumps(receipt(9)))[0] == 204
    assert columnar_rows(out) is None
    assert not (out / COLUMNS_FILE).exists()
    fresh = out.parent / "fresh"
    service = start(out_dir=fresh, env=ENV)
    try:
        assert post(service.url, orjson.dumps(batch(range(3))))[0] == 204
        service.proc.send_signal(signal.SIGKILL)
        service.proc.wait(timeout=10)
    finally:
        service.stop()
    assert len(lines(fresh / RECEIPTS_FILE)) == 3
    assert not (fresh / SEAL_FILE).exists()
    assert columnar_rows(fresh) is None


def test_journal_write_failure_fails_every_waiter(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = Journal(tmp_path / RECEIPTS_FILE)
        read_only = os.open(journal.path, os.O_RDONLY)
        os.dup2(read_only, journal._fd)  # a real EBADF on the next write
        os.close(read_only)
        first = [journal.append(b"a\n", 1) for _ in range(3)]
        await asyncio.sleep(0)  # the first write is under way
        queued = journal.append(b"b\n", 1)
        results = await asyncio.wait_for(
            asyncio.gather(*first, queued, return_exceptions=True), timeout=5
        )
        assert all(isinstance(r, JournalError) for r in results), results
        assert not journal.healthy
        with pytest.raises(JournalError):
            await journal.append(b"c\n", 1)
        journal.close()

    asyncio.run(scenario())
    assert (tmp_path / RECEIPTS_FILE).read_bytes() == b""


# --- ReceiptTail -----------------------------------------------------------------------


def test_tail_holds_back_partial_lines(tmp_path: Path) -> None:
    path = tmp_path / RECEIPTS_FILE
    tail = ReceiptTail(path)
    assert tail.read_new() == []  # no file yet
    one, two, three = (orjson.dumps({"n": i, "id": f"id-{i}"}) + b"\n" for i in range(3))
    with path.open("ab", buffering=0) as f:
        f.write(one + two[:5])
        assert tail.read_new() == ["id-0"]
        assert tail.read_new() == []
        f.write(two[5:-1])  # everything but the newline
        assert tail.read_new() == []
        f.write(b"\n")
        assert tail.read_new() == ["id-1"]
        f.write(three[:1])
        assert tail.read_new() == []
        f.write(three[1:] + one)
        assert tail.read_new() == ["id-2", "id-0"]
    assert tail.read_new() == []
    assert tail.lines == 4


def test_tail_forgets_a_torn_line_cut_by_a_restart(tmp_path: Path) -> None:
    path = tmp_path / RECEIPTS_FILE
    path.write_bytes(b'{"id":"a"}\n{"id":"tor')
    tail = ReceiptTail(path)
    assert tail.read_new() == ["a"]
    with path.open("r+b") as f:
        f.truncate(len(b'{"id":"a"}\n'))
    with path.open("ab") as f:
        f.write(b'{"id":"b"}\n')
    assert tail.read_new() == ["b"]
    path.write_bytes(b"")  # replaced: lines already read are gone
    with pytest.raises(ValueError):
        tail.read_new()


def test_tail_follows_the_collector(collector: Service, out: Path) -> None:
    tail = ReceiptTail(out / RECEIPTS_FILE)
    assert tail.read_new() == []
    post(collector.url, orjson.dumps(batch(range(4))))
    assert tail.read_new() == ["m-0", "m-1", "m-2", "m-3"]
    post(collector.url, orjson.dumps(receipt(5)))
    post(collector.url, b"{bad")  # refused, never shows up
    assert tail.read_new() == ["m-5"]


# --- process behaviour -----------------------------------------------------------------


def _run(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deliverydags.collector", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("secret", [None, ""], ids=["unset", "empty"])
def test_missing_secret_exits_2_with_one_line(out: Path, secret: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    if secret is not None:
        env[SECRET_ENV] = secret
    proc = _run(["--out", str(out)], env)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert stdout == b""
    assert len(stderr.decode().splitlines()) == 1 and SECRET_ENV in stderr.decode()


def test_bad_listen_address_exits_2(out: Path) -> None:
    proc = _run(["--out", str(out), "--listen", "nonsense"], ENV)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 2 and len(stderr.splitlines()) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_0_and_stdout_is_only_ready(out: Path, sig: signal.Signals) -> None:
    proc = _run(["--out", str(out)], ENV)
    assert proc.stdout is not None
    ready = proc.stdout.readline().decode()
    assert ready.startswith("READY http://127.0.0.1:")
    assert post(ready.split()[1], orjson.dumps(receipt(1)))[0] == 204
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert rest == b""  # nothing on stdout but the READY line


def test_sigterm_under_load_keeps_every_acknowledged_receipt(out: Path) -> None:
    service = start(out_dir=out, env=ENV)
    acked: list[str] = []

    async def load() -> None:
        async def client(session: aiohttp.ClientSession, t: int) -> None:
            for p in range(10_000):
                items = [receipt(0) | {"id": f"{t}-{p}-{j}"} for j in range(20)]
                body = orjson.dumps({"messages": items})
                headers = {signing.HEADER: signing.sign(KEY, body)}
                try:
                    async with session.post(
                        service.url + RECEIPTS_PATH, data=body, headers=headers
                    ) as resp:
                        if resp.status != 204:
                            return
                except aiohttp.ClientError:
                    return  # the collector went away
                acked.extend(r["id"] for r in items)

        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(client(session, t)) for t in range(8)]
            await asyncio.sleep(0.5)
            service.proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*tasks)

    asyncio.run(load())
    assert service.proc.wait(timeout=20) == 0
    service.stop()
    recorded = [r["id"] for r in lines(out / RECEIPTS_FILE)]
    assert len(acked) > 0
    assert set(acked) <= set(recorded)
    assert [r["n"] for r in lines(out / RECEIPTS_FILE)] == list(range(len(recorded)))
    copy = columnar_rows(out)  # sealed at the clean stop, with every recorded receipt
    assert copy is not None
    assert [(n, rid) for n, _t, rid, _s in copy] == list(enumerate(recorded))


def test_secret_never_appears_in_the_log(out: Path) -> None:
    with start(out_dir=out, env=ENV) as service:
        post(service.url, BODY, signature=None)
        post(service.url, BODY, signature=signing.sign(b"wrong", BODY))
        post(service.url, b"{bad")
        post(service.url, BODY)
    log = (out / "collector.log").read_text()
    assert "listening on" in log and "stopped" in log  # the log was written
    assert SECRET not in log


def test_discard_answers_204_and_records_nothing(out: Path) -> None:
    with start(out_dir=out, env=ENV, discard=True) as service:
        assert post(service.url, b"anything", signature=None)[0] == 204
        assert post(service.url, BODY)[0] == 204
        assert get_json(service.url, "/healthz")[0] == 200
    assert not (out / RECEIPTS_FILE).exists()
    assert not (out / REJECTED_FILE).exists()


# --- contract v1.1: digests and tenants' callbacks ----------------------------------------


def test_digest_and_tenant_callback_are_recorded(collector: Service, out: Path) -> None:
    digest = "0f" * 32
    assert post(collector.url, orjson.dumps({**receipt(0), "digest": digest}))[0] == 204
    body = orjson.dumps(batch(range(1, 3)))
    assert post(collector.url, body, path=f"{RECEIPTS_PATH}/t%C3%BC-1")[0] == 204
    got = lines(out / RECEIPTS_FILE)
    assert [(r["id"], r.get("digest"), r.get("tenant")) for r in got] == [
        ("m-0", digest, None),
        ("m-1", None, "tü-1"),
        ("m-2", None, "tü-1"),
    ]
    assert "tenant" not in got[0] and "digest" not in got[1]
    # a tenant over 64 bytes has no callback; a digest that is no string is malformed
    assert post(collector.url, body, path=f"{RECEIPTS_PATH}/{'t' * 65}")[0] == 404
    assert post(collector.url, orjson.dumps({**receipt(3), "digest": 7}))[0] == 400
    assert len(lines(out / RECEIPTS_FILE)) == 3
