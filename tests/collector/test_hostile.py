"""The collector against hostile clients: bad signature headers, receipts outside the
contract's limits, bodies over the cap or compressed, a flood of them during a run, and
the fsyncs that keep the first receipts. The real collector process over 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import os
import random
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import numpy as np
import orjson
import psutil
import pyarrow as pa
import pytest

from deliverydags.collector import RECEIPTS_PATH, start
from deliverydags.collector.journal import Journal
from deliverydags.collector.server import MAX_BODY_BYTES, Collector
from deliverydags.formats import RECEIPTS_FILE, REJECTED_FILE, signing
from deliverydags.ledger.receipts import read_receipts, read_rejected
from deliverydags.procs import Service
from deliverydags.target.delivery import bodies
from tests.support.collector import ENV, KEY, get_json, lines, post, receipt

pytestmark = pytest.mark.integration  # starts the collector

MiB = 1024 * 1024


def stats(service: Service) -> dict:
    return get_json(service.url, "/v1/stats")[1]


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory (bytes), so far."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


def reasons(out: Path) -> list[str]:
    return [r["reason"] for r in lines(out / REJECTED_FILE)]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def collector(out: Path):
    with start(out_dir=out, env=ENV) as service:
        yield service


# --- the signature header ----------------------------------------------------------------

BODY = orjson.dumps(receipt(1))
T = int(time.time())
GOOD = signing.sign(KEY, BODY, T)
MAC = GOOD.split("v1=")[1]

HOSTILE_HEADERS = {
    "non-hex-v1": f"t={T},v1={'g' * 64}",
    "non-ascii-v1": f"t={T},v1={'é' * 64}",
    "non-ascii-digits-t": f"t={chr(0x661) * 10},v1={MAC}",  # Arabic-Indic digits
    "400-digit-t": f"t={'9' * 400},v1={MAC}",
    "empty-fields": "t=,v1",
    "empty-t": f"t=,v1={MAC}",
    "short-v1": f"t={T},v1={MAC[:-1]}",
    "long-v1": f"t={T},v1={MAC}0",
    "two-v1": f"{GOOD},v1={MAC}",
    "two-t": f"t={T},{GOOD}",
    "v1-first": f"v1={MAC},t={T}",
    "spaces": f"t={T}, v1={MAC}",
    "leading-space-t": f"t= {T},v1={MAC}",
    "trailing-comma": f"{GOOD},",
    "negative-t": f"t=-{T},v1={MAC}",
    "empty": "",
    # 8 kB; from 8,191 bytes aiohttp answers 400 before any handler runs (its field limit,
    # kept: a larger one lets every unauthenticated connection buffer more headers).
    "huge": (GOOD + "," + "x" * 8000)[:8000],
}


@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=HOSTILE_HEADERS.keys())
def test_verify_refuses_every_other_form_without_raising(header: str) -> None:
    assert signing.verify(KEY, header, BODY, now=T) is False


def test_verify_accepts_the_exact_form_in_either_case() -> None:
    assert signing.verify(KEY, GOOD, BODY, now=T)
    assert signing.verify(KEY, GOOD.upper().replace("T=", "t=").replace("V1=", "v1="), BODY, T)


@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=HOSTILE_HEADERS.keys())
def test_hostile_signature_header_is_401_and_counted(
    collector: Service, out: Path, header: str
) -> None:
    # http.client refuses to send non-Latin-1 header text; send the UTF-8 bytes.
    sig = header.encode().decode("latin-1")
    assert post(collector.url, BODY, signature=sig)[0] == 401
    assert stats(collector) == {"receipts": 0, "bad_signature": 1, "malformed": 0}
    assert reasons(out) == ["bad_signature"]
    assert lines(out / RECEIPTS_FILE) == []
    # what the run's counts.bad_signature is made of
    assert read_rejected(duckdb.connect(), out, None) == {"bad_signature": 1}


# --- receipts outside the contract's limits ------------------------------------------------

BAD_RECEIPTS = {
    "empty-id": {"id": ""},
    "129-byte-id": {"id": "x" * 129},
    "100-KB-id": {"id": "x" * 100_000},
    "33-char-130-byte-id": {"id": "é" * 65},  # 65 chars, 130 bytes
    "empty-stream": {"stream": ""},
    "long-stream": {"stream": "s" * 129},
    "seq-negative": {"seq": -5},
    "seq-2**63": {"seq": 2**63},
    "seq-2**64-1": {"seq": 2**64 - 1},
    "delivered_at-garbage": {"delivered_at": "garbage"},
    "delivered_at-date-only": {"delivered_at": "2025-01-01"},
    "delivered_at-no-offset": {"delivered_at": "2025-01-01T00:00:00"},
    "delivered_at-month-13": {"delivered_at": "2025-13-01T00:00:00Z"},
    "delivered_at-space": {"delivered_at": "2025-01-01 00:00:00Z"},
    "delivered_at-basic-offset": {"delivered_at": "2025-01-01T00:00:00+0100"},
    "status-other": {"status": "lost"},
}


@pytest.mark.parametrize("change", BAD_RECEIPTS.values(), ids=BAD_RECEIPTS.keys())
def test_receipt_outside_the_limits_is_400_and_nothing_of_its_batch_is_recorded(
    collector: Service, out: Path, change: dict
) -> None:
    bad = {**receipt(2), **change}
    for n, body in enumerate([bad, {"messages": [receipt(1), bad, receipt(3)]}], 1):
        status, answer = post(collector.url, orjson.dumps(body))
        assert status == 400 and orjson.loads(answer)["error"]
        assert stats(collector) == {"receipts": 0, "bad_signature": 0, "malformed": n}
    assert reasons(out) == ["malformed", "malformed"]
    assert lines(out / RECEIPTS_FILE) == []


EDGE_RECEIPTS = {
    "128-byte-id": {"id": "x" * 128},
    "128-byte-utf8-id": {"id": "é" * 64},
    "one-char-id-stream": {"id": "a", "stream": "b"},
    "quote-backslash-newline-id": {"id": 'q"\\\n\t'},
    "emoji-id": {"id": "🙂" * 32},
    "seq-0": {"seq": 0},
    "seq-2**63-1": {"seq": 2**63 - 1},
    "nanoseconds": {"delivered_at": "2025-01-01T00:00:00.123456789Z"},
    "offset": {"delivered_at": "2025-01-01T01:00:00+01:00"},
    "lowercase": {"delivered_at": "2025-01-01t00:00:00z"},
    "leap-second": {"delivered_at": "2016-12-31T23:59:60Z"},
    "failed-with-error": {"status": "failed", "error": "gave up"},
}


def test_receipts_at_the_limits_are_recorded_and_the_ledger_reads_them_all(out: Path) -> None:
    """What the collector admits, the ledger reads: every edge receipt is one valid row,
    from the NDJSON and from the sealed columnar copy."""
    sent = [{**receipt(i), **change} for i, change in enumerate(EDGE_RECEIPTS.values())]
    with start(out_dir=out, env=ENV) as service:
        assert post(service.url, orjson.dumps({"messages": sent}))[0] == 204
        assert post(service.url, orjson.dumps(sent[0]))[0] == 204
    ids = [r["id"] for r in sent] + [sent[0]["id"]]
    assert [r["id"] for r in lines(out / RECEIPTS_FILE)] == ids
    con = duckdb.connect()
    no_sends = pa.chunked_array([pa.array([], pa.string())])
    for use_columns in (True, False):
        got = read_receipts(con, out, no_sends, "", np.empty(0, np.int32), None, False, use_columns)
        assert got.invalid_lines == 0
        assert got.unexpected_ids.to_pylist() == ids  # never sent: all unexpected, in order


# --- bodies: compressed, over the cap, slow ----------------------------------------------


def forged_signature() -> str:
    """The exact form with a fresh t: passes every check a client without the secret can."""
    return f"t={int(time.time())},v1={'0' * 64}"


def raw_post(url: str, headers: dict[str, str], body: bytes) -> int:
    """Send the headers as given and ``body`` (which may be shorter than declared)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("POST", RECEIPTS_PATH)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        return conn.getresponse().status
    finally:
        conn.close()


def test_content_length_over_the_cap_is_413_without_the_body(collector: Service, out: Path):
    headers = {signing.HEADER: forged_signature(), "Content-Length": str(200 * MiB)}
    assert raw_post(collector.url, headers, b'{"id": ') == 413
    assert stats(collector)["malformed"] == 1 and reasons(out) == ["malformed"]


def test_chunked_body_over_the_cap_stops_at_the_cap(collector: Service, out: Path) -> None:
    async def send() -> int:
        host, port = collector.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST {RECEIPTS_PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"{signing.HEADER}: {forged_signature()}\r\n\r\n".encode()
        )
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
        sent = 0
        with_answer = asyncio.ensure_future(reader.readline())
        while not with_answer.done() and sent < 200 * MiB:
            writer.write(chunk)
            await writer.drain()
            sent += 64 * 1024
        status = int((await asyncio.wait_for(with_answer, 10)).split()[1])
        writer.close()
        assert sent < 200 * MiB  # answered long before the end
        return status

    assert asyncio.run(send()) == 413
    assert stats(collector)["malformed"] == 1 and reasons(out) == ["malformed"]


def gzip_bomb(inflated: int = 256 * MiB) -> bytes:
    """~250 KB of gzip that inflates to ``inflated`` bytes, made without holding them."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    return b"".join(z.compress(zeros) for _ in range(inflated // MiB)) + z.flush()


@pytest.mark.parametrize(
    "signature, status, reason",
    [
        pytest.param(None, 401, "bad_signature", id="unsigned"),
        pytest.param("forged", 415, "malformed", id="forged"),
        pytest.param("sign", 415, "malformed", id="signed-over-the-gzip"),
    ],
)
def test_compressed_body_is_refused_never_inflated(
    collector: Service, out: Path, signature: str | None, status: int, reason: str
) -> None:
    bomb = gzip_bomb()
    headers = {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
    if signature is not None:
        sig = forged_signature() if signature == "forged" else signing.sign(KEY, bomb)
        headers[signing.HEADER] = sig
    assert raw_post(collector.url, headers, bomb) == status
    assert stats(collector)[reason] == 1 and reasons(out) == [reason]
    assert peak_rss(collector.pid) < 256 * MiB


def test_the_target_never_sends_a_body_over_the_cap() -> None:
    batch = [{**receipt(i), "id": f"{i:0128d}"} for i in range(20_000)]  # ~4 MiB
    out = bodies(batch)
    assert len(out) > 1 and max(map(len, out)) <= MAX_BODY_BYTES
    again = [r for b in out for r in orjson.loads(b)["messages"]]
    assert again == batch  # every receipt once, in order


def _escaped_receipt(rng: random.Random, i: int) -> dict:
    """Ids and streams of up to 128 bytes, some of characters JSON writes as 6 bytes."""
    alphabet = ["a", "\x01", '"', "é", "🙂"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 32)))
    status = rng.choice(["delivered", "failed"])
    return {**receipt(i, stream=text[::-1], status=status), "id": text + str(i)}


@pytest.mark.parametrize("limit", [2_000, 10_000, signing.MAX_BODY_BYTES])
def test_receipt_bodies_are_as_full_as_the_limit_allows_and_no_fuller(limit: int) -> None:
    rng = random.Random(limit)
    batch = [_escaped_receipt(rng, i) for i in range(3 * signing.MAX_BODY_BYTES // 200)]
    out = bodies(batch, limit)
    assert max(map(len, out)) <= limit
    groups = [[d] if "id" in d else d["messages"] for d in map(orjson.loads, out)]
    assert [r for g in groups for r in g] == batch
    for group, following in itertools.pairwise(groups):
        # the next body's first receipt would not have fitted in this one
        fuller = orjson.dumps({"messages": [*group, following[0]]})
        assert len(fuller) > limit


# --- a flood of hostile POSTs during a run -----------------------------------------------


async def _hostile(url: str, headers: dict[str, str], chunked: bool, total: int) -> None:
    """Stream ``total`` bytes of body from a generator until the collector hangs up."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST {RECEIPTS_PATH} HTTP/1.1\r\nHost: x\r\n{framing}\r\n{head}\r\n".encode())
    block = b" " * (256 * 1024)
    piece = b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
    answered = asyncio.ensure_future(reader.read(1))
    try:
        for _ in range(total // len(block)):
            if answered.done():
                break
            writer.write(piece)
            await writer.drain()
        await asyncio.wait_for(answered, 10)  # the rest is never sent: no answer, no end
    except (ConnectionError, OSError, TimeoutError):
        pass  # the collector closed on us (it would not read the rest), or never answered
    finally:
        answered.cancel()
        writer.close()


async def _flood(url: str, valid_posts: int) -> tuple[list[int], dict[str, int]]:
    """20 hostile 200 MiB bodies and 3 gzip bombs beside ``valid_posts`` signed batches."""
    big = 200 * MiB
    bomb = gzip_bomb()
    unsigned: dict[str, str] = {}
    hostile = [
        *[_hostile(url, unsigned, chunked, big) for chunked in [False] * 6 + [True] * 4],
        *[
            _hostile(url, {signing.HEADER: forged_signature()}, chunked, big)
            for chunked in [False] * 5 + [True] * 5
        ],
    ]
    expected = {"bad_signature": 10, "malformed": 10}
    for sig, reason in [(None, "bad_signature"), ("forged", "malformed"), ("sign", "malformed")]:
        headers = {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
        if sig:
            forged = sig == "forged"
            headers[signing.HEADER] = forged_signature() if forged else signing.sign(KEY, bomb)
        hostile.append(_post_bytes(url, headers, bomb))
        expected[reason] += 1

    async def valid(i: int) -> int:
        await asyncio.sleep(i * 0.01)  # spread over the flood
        body = orjson.dumps({"messages": [receipt(i * 10 + k) for k in range(10)]})
        return await asyncio.to_thread(lambda: post(url, body)[0])

    *_, statuses = await asyncio.gather(
        asyncio.gather(*hostile), asyncio.gather(*(valid(i) for i in range(valid_posts)))
    )
    return list(statuses), expected


async def _post_bytes(url: str, headers: dict[str, str], body: bytes) -> None:
    status = await asyncio.to_thread(raw_post, url, headers, body)
    assert status in (401, 415)


RSS_LIMIT = 256 * MiB


def test_flood_of_unsigned_large_bodies_keeps_memory_and_books(out: Path) -> None:
    valid_posts = 200
    with start(out_dir=out, env=ENV) as service:
        proc = psutil.Process(service.pid)
        peak = [proc.memory_info().rss]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.01):
                peak.append(proc.memory_info().rss)
                if peak[-1] >= RSS_LIMIT:  # a collector that reads the bodies: stop it
                    proc.kill()  # before it takes the shared machine's memory
                    return

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            statuses, expected = asyncio.run(_flood(service.url, valid_posts))
        except OSError:  # killed above: the assertion below says why
            statuses, expected = [], {}
        finally:
            done.set()
            sampler.join()
        high = max(peak) if max(peak) >= RSS_LIMIT else peak_rss(service.pid)
        assert high < RSS_LIMIT, f"collector RSS reached {high / MiB:.0f} MiB"
        assert statuses == [204] * valid_posts
        assert stats(service) == {"receipts": valid_posts * 10, **expected}
    recorded = [r["id"] for r in lines(out / RECEIPTS_FILE)]
    assert sorted(recorded) == sorted(f"m-{i}" for i in range(valid_posts * 10))
    assert sorted(reasons(out)) == sorted([r for r, n in expected.items() for _ in range(n)])


# --- durability of the names ----------------------------------------------------------------


def test_collector_fsyncs_its_files_and_directories_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names too: a crash after the first 204 must not take receipts.ndjson or the run
    directory with it. The Collector is built (and these done) before it listens."""
    out = tmp_path / "parent" / "run"
    out.mkdir(parents=True)
    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    collector = Collector(out, KEY)
    try:
        for path in (out / RECEIPTS_FILE, out / REJECTED_FILE, out, out.parent):
            assert str(path) in synced, f"{path} was not fsynced"
    finally:
        asyncio.run(collector.close())


def test_journal_open_fsyncs_the_file_before_any_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))
    )
    journal = Journal(tmp_path / "j.ndjson")
    assert synced[:3] == [str(tmp_path / "j.ndjson"), str(tmp_path), str(tmp_path.parent)]
    journal.close()
