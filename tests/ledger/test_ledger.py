"""The ledger against hand-worked runs and against an independent oracle (hypothesis)."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deliverydags.formats import send_columns
from deliverydags.formats.receipt_columns import COLUMNS_FILE, SCHEMA, SEAL_FILE, ColumnWriter
from deliverydags.formats.send_columns import SendColumnWriter, SendCopier, sealed_send_columns
from deliverydags.ledger import LedgerResult, delivery_timeline, reconcile
from deliverydags.ledger.timebase import ms_to_ns_exact, sent_ns
from tests.support.ledger_oracle import oracle

DEADLINES = [30, 300, 900]
BASE_MS = 1_700_000_000_000.0  # sends' clock, ms
S = 1_000_000_000  # ns


# --- building runs ---------------------------------------------------------------------


def send(
    i: int | str,
    cls: str = "accepted",
    stream: str = "s",
    seq: int | None = None,
    sent_ms: float | None = None,
    status: int | None = None,
    variant: str = "",
) -> dict:
    status = status if status is not None else {"accepted": 202, "rejected": 429}.get(cls, 0)
    return {
        "dd": 1,
        "id": f"m{i}",
        "stream": stream,
        "seq": seq if seq is not None else (i if isinstance(i, int) else 0),
        "sent_ms": sent_ms if sent_ms is not None else BASE_MS + (i if isinstance(i, int) else 0),
        "class": cls,
        "status": status,
        "variant": variant,
    }


def sent_at(s: dict) -> int:
    """Exact ns of a send line's sent_ms (what a deadline counts from)."""
    return int(Decimal(repr(float(s["sent_ms"]))) * 1_000_000)


def rcpt(s: dict | str, recv_ns: int, status: str = "delivered") -> dict:
    rid = s if isinstance(s, str) else s["id"]
    return {"id": rid, "recv_ns": recv_ns, "status": status}


def write_run(
    run_dir: Path,
    sends: list[dict | str] | None,
    receipts: list[dict | str] | None = None,
    refused: list[dict] | None = None,
    number: bool = True,
) -> Path:
    """Write the run files; receipts get n = their position unless ``number`` is False."""
    run_dir.mkdir(parents=True, exist_ok=True)

    def dump(name: str, rows: list[dict | str]) -> None:
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
        (run_dir / name).write_text(text)

    if sends is not None:
        dump("sends.ndjson", sends)
    if receipts is not None:
        rows: list[dict | str] = []
        for i, r in enumerate(receipts):
            if isinstance(r, dict) and number:
                r = {"n": i, **r, "stream": "x", "seq": 0, "delivered_at": "2024-01-01T00:00:00Z"}
            rows.append(r)
        dump("receipts.ndjson", rows)
    if refused is not None:
        dump("rejected.ndjson", refused)
    return run_dir


def write_columns(run_dir: Path, rows: list[dict] | None = None) -> bool:
    """The collector's sealed columnar copy of receipts.ndjson (or of ``rows``, to forge
    one that differs), written with its own ColumnWriter; False when the file holds a line
    the collector would never write (then there is no copy)."""
    text = (run_dir / "receipts.ndjson").read_text()
    if rows is None:
        try:
            rows = [json.loads(line) for line in text.splitlines()]
        except ValueError:
            return False
    if any(r.get("status") not in ("delivered", "failed") for r in rows):
        return False
    writer = ColumnWriter(run_dir)
    for start in range(0, len(rows), 2):  # several batches, as a collector writes them
        part = rows[start : start + 2]
        batch = {
            "n": [r["n"] for r in part],
            "recv_ns": [r["recv_ns"] for r in part],
            "id": [r["id"] for r in part],
            "delivered": [r["status"] == "delivered" for r in part],
        }
        writer.add_batch(pa.RecordBatch.from_pydict(batch, schema=SCHEMA))
    assert writer.seal(len(rows))
    return True


def write_send_columns(run_dir: Path, prefix: str = "", pieces: list[int] | None = None) -> None:
    """The runner's sealed columnar copy of sends.ndjson, written as its SendCopier does:
    pieces of whole lines (``pieces``: lines per piece, cycled; default one each) and the
    file's end as it is."""
    lines = re.findall(rb"[^\n]*\n|[^\n]+$", (run_dir / "sends.ndjson").read_bytes())
    writer = SendColumnWriter(run_dir, prefix)
    sizes = itertools.cycle(pieces or [1])
    while lines:
        size = next(sizes)
        writer.add(b"".join(lines[:size]))
        del lines[:size]
    writer.seal()


def books(
    run_dir: Path,
    deadlines: list[float] = DEADLINES,
    close_ns: int | None = None,
    measures: tuple[str, ...] = (),
) -> dict:
    result = reconcile(run_dir, deadlines, close_ns=close_ns, measures=measures)
    assert isinstance(result, LedgerResult)
    out = result.to_dict()
    check_invariants(out)
    return out


def check_invariants(out: dict) -> None:
    c = out["counts"]
    assert c["attempted"] == c["accepted"] + c["rejected"] + c["indeterminate"]
    assert c["accepted"] == c["delivered"] + c["late"] + c["failed"] + c["lost"]
    assert c["indeterminate"] == c["recovered"] + c["unseen"]
    assert sum(out["late_by_deadline"].values()) == c["late"]
    assert sum(out["rejected_by_status"].values()) == c["rejected"]
    for key in ("attempted", "accepted", "delivered", "late", "failed", "lost", "rejected"):
        assert sum(v[key] for v in out["by_variant"].values()) == c[key]
    for name, limit_key in (("lost", "lost"), ("out_of_order", "out_of_order")):
        assert len(out["samples"][name]) == min(c[limit_key], 1000)
    for sample in out["samples"].values():
        assert len(sample) == len(set(sample)) <= 1000
    v1 = list(out["counts"])[:14]
    assert v1[-1] == "bad_signature"  # the v1 counts first, v1.1 ones after them
    for name in ("corrupted", "leaked"):
        assert (name in out["samples"]) == (name in c)
        if name in c:
            assert len(out["samples"][name]) <= c[name]
    assert ("corrupted" in c) == ("undigested" in c)
    assert ("resent" in c) == ("conflicts" in c)
    if "resent" in c:
        assert c["conflicts"] <= c["resent"]


# --- fates and deadlines -------------------------------------------------------------


def test_each_fate(tmp_path: Path) -> None:
    s = [
        send(i, cls)
        for i, cls in enumerate(["accepted"] * 6 + ["rejected"] + ["indeterminate"] * 2)
    ]
    t = [sent_at(x) for x in s]
    receipts = [
        rcpt(s[0], t[0] + 10 * S),  # delivered
        rcpt(s[1], t[1] + 100 * S),  # late, 300 s bucket
        rcpt(s[2], t[2] + 600 * S),  # late, 900 s bucket
        rcpt(s[3], t[3] + 10 * S, "failed"),  # failed
        # s[4]: nothing -> lost
        rcpt(s[5], t[5] + 901 * S),  # delivered after the last deadline -> lost
        rcpt(s[6], t[6] + 1 * S),  # rejected stays rejected; not unexpected
        rcpt(s[7], t[7] + 2000 * S, "failed"),  # indeterminate + any receipt -> recovered
        # s[8]: indeterminate, nothing -> unseen
    ]
    out = books(write_run(tmp_path, s, receipts))
    assert out["counts"] == {
        "attempted": 9,
        "accepted": 6,
        "rejected": 1,
        "indeterminate": 2,
        "delivered": 1,
        "late": 2,
        "failed": 1,
        "lost": 2,
        "recovered": 1,
        "unseen": 1,
        "duplicates": 0,
        "unexpected": 0,
        "out_of_order": 0,  # delivered receipts came in seq order
        "bad_signature": 0,
    }
    assert out["late_by_deadline"] == {"300": 1, "900": 1}
    assert out["rejected_by_status"] == {"429": 1}
    assert out["delivery_rate"] == pytest.approx(3 / 6)
    assert out["samples"]["lost"] == ["m4", "m5"]
    # latency over delivered, late, recovered: 10 s, 100 s, 600 s, 2000 s
    assert out["latency_ms"]["max"] == 2_000_000.0
    assert out["latency_ms"]["p50"] == pytest.approx(350_000.0)  # linear between 100 and 600 s
    assert out["by_variant"] == {
        "": {
            "attempted": 9,
            "accepted": 6,
            "delivered": 1,
            "late": 2,
            "failed": 1,
            "lost": 2,
            "recovered": 1,
            "unseen": 1,
            "rejected": 1,
            "indeterminate": 2,
        }
    }


def test_receipt_exactly_at_a_deadline_is_within_it(tmp_path: Path) -> None:
    # A sent_ms with a sub-ms fraction whose double is not exact: 123.456 ms.
    s = [send(i, sent_ms=BASE_MS + 123.456 + i, stream=f"s{i}") for i in range(6)]
    t = [sent_at(x) for x in s]
    assert t[0] == 1_700_000_000_123_456_000
    receipts = [
        rcpt(s[0], t[0] + 30 * S),  # at the first deadline: delivered
        rcpt(s[1], t[1] + 30 * S + 1),  # 1 ns later: late (300)
        rcpt(s[2], t[2] + 300 * S),  # at the second: late (300)
        rcpt(s[3], t[3] + 300 * S + 1),  # late (900)
        rcpt(s[4], t[4] + 900 * S),  # at the last deadline: late (900)
        rcpt(s[5], t[5] + 900 * S + 1),  # 1 ns after the last: lost
    ]
    out = books(write_run(tmp_path, s, receipts))
    c = out["counts"]
    assert (c["delivered"], c["late"], c["lost"]) == (1, 4, 1)
    assert out["late_by_deadline"] == {"300": 2, "900": 2}
    assert out["samples"]["lost"] == ["m5"]
    assert out["counts"]["out_of_order"] == 0  # one message per stream


def test_failed_deadline_edges(tmp_path: Path) -> None:
    s = [send(i, stream=f"s{i}") for i in range(2)]
    receipts = [
        rcpt(s[0], sent_at(s[0]) + 900 * S, "failed"),  # at the last deadline: failed
        rcpt(s[1], sent_at(s[1]) + 900 * S + 1, "failed"),  # after it: lost
    ]
    out = books(write_run(tmp_path, s, receipts))
    assert (out["counts"]["failed"], out["counts"]["lost"]) == (1, 1)


def test_failed_then_delivered_is_delivered_and_a_duplicate(tmp_path: Path) -> None:
    s = [send(0), send(1)]
    receipts = [
        rcpt(s[0], sent_at(s[0]) + 1 * S, "failed"),
        rcpt(s[0], sent_at(s[0]) + 2 * S),  # delivered, by the first deadline
        rcpt(s[1], sent_at(s[1]) + 3 * S, "failed"),
        rcpt(s[1], sent_at(s[1]) + 200 * S),  # delivered late
    ]
    out = books(write_run(tmp_path, s, receipts))
    c = out["counts"]
    assert (c["delivered"], c["late"], c["failed"], c["duplicates"]) == (1, 1, 0, 2)
    assert out["samples"]["duplicates"] == ["m0", "m1"]
    # latency counts the first valid receipt of any status (the failed one)
    assert out["latency_ms"]["max"] == pytest.approx(3000.0)


def test_delivered_after_last_deadline_with_earlier_failed_is_failed(tmp_path: Path) -> None:
    s = [send(0, seq=0), send(1, seq=1)]
    receipts = [
        rcpt(s[0], sent_at(s[0]) + 1 * S, "failed"),
        rcpt(s[1], sent_at(s[1]) + 2 * S),
        rcpt(s[0], sent_at(s[0]) + 901 * S),  # delivered, too late: still failed
    ]
    out = books(write_run(tmp_path, s, receipts))
    c = out["counts"]
    assert (c["delivered"], c["failed"], c["lost"], c["duplicates"]) == (1, 1, 0, 1)
    # its first delivered receipt came after seq 1's: out of order, whatever its fate
    assert out["samples"]["out_of_order"] == ["m0"]


def test_close_ns_cuts_receipts_and_refused_posts(tmp_path: Path) -> None:
    s = [send(0), send(1)]
    close = sent_at(s[1]) + 5 * S
    receipts = [
        rcpt(s[0], sent_at(s[0]) + 1 * S),
        rcpt(s[0], close + 1),  # a duplicate after close: not counted
        rcpt(s[1], close),  # exactly at close: counted
        rcpt("ghost", close + 1),  # unexpected after close: not counted
    ]
    refused = [
        {"recv_ns": close, "reason": "bad_signature"},
        {"recv_ns": close + 1, "reason": "bad_signature"},
        {"recv_ns": close + 1, "reason": "malformed"},
    ]
    out = books(write_run(tmp_path, s, receipts, refused), close_ns=close)
    c = out["counts"]
    assert (c["delivered"], c["duplicates"], c["unexpected"], c["bad_signature"]) == (2, 0, 0, 1)
    assert out["malformed"] == 0
    everything = books(tmp_path)
    assert everything["counts"]["duplicates"] == 1
    assert everything["counts"]["unexpected"] == 1
    assert (everything["counts"]["bad_signature"], everything["malformed"]) == (2, 1)
    cut_early = books(tmp_path, close_ns=sent_at(s[0]))  # nothing arrived yet
    assert cut_early["counts"]["lost"] == 2


# --- out of order, duplicates, unexpected, samples ---------------------------------------


def test_out_of_order_per_stream(tmp_path: Path) -> None:
    a = [send(f"a{i}", stream="a", seq=i) for i in range(4)]
    b = [send(f"b{i}", stream="b", seq=i) for i in range(2)]
    t = sent_at(a[0])
    receipts = [
        rcpt(a[2], t + 1),  # a2 before a0 and a1: both out of order
        rcpt(b[1], t + 2),  # other stream: does not touch a
        rcpt(a[0], t + 3),
        rcpt(a[1], t + 4),
        rcpt(a[3], t + 5),
        rcpt(b[0], t + 6),  # after b1: out of order
        rcpt(a[0], t + 7),  # a duplicate of a lower seq: nothing new
    ]
    out = books(write_run(tmp_path, a + b, receipts))
    assert out["samples"]["out_of_order"] == ["ma0", "ma1", "mb0"]
    assert out["counts"]["out_of_order"] == 3
    assert out["counts"]["duplicates"] == 1


def test_out_of_order_via_a_duplicate_receipt(tmp_path: Path) -> None:
    s = [send(0, seq=0), send(1, seq=1)]
    t = sent_at(s[0])
    receipts = [
        rcpt(s[1], t + 1, "failed"),  # m1's first receipt
        rcpt(s[1], t + 2),  # m1 delivered: a duplicate receipt, but a delivered one
        rcpt(s[0], t + 3),  # m0's first delivered comes after it
    ]
    out = books(write_run(tmp_path, s, receipts))
    assert out["samples"]["out_of_order"] == ["m0"]
    assert out["samples"]["duplicates"] == ["m1"]
    assert out["counts"]["delivered"] == 2


def test_out_of_order_with_wide_seq_values(tmp_path: Path) -> None:
    # seq values whose spread overflows the narrow type they fit in (int16 here), and
    # one too wide to pack at all: the packed sort must widen, the fallback must agree.
    for seqs in ([-30_000, 30_000], [0, 2**62]):
        s = [send(k, seq=q) for k, q in enumerate(seqs)]
        t = sent_at(s[0])
        out = books(write_run(tmp_path / str(seqs[1]), s, [rcpt(s[1], t), rcpt(s[0], t + 1)]))
        assert out["samples"]["out_of_order"] == ["m0"]


def test_failed_receipts_do_not_order(tmp_path: Path) -> None:
    s = [send(0, seq=0), send(1, seq=1)]
    t = sent_at(s[0])
    out = books(write_run(tmp_path, s, [rcpt(s[1], t + 1, "failed"), rcpt(s[0], t + 2)]))
    assert out["counts"]["out_of_order"] == 0


def test_rejected_message_receipts_count_as_sent(tmp_path: Path) -> None:
    s = [send(0, seq=0), send(1, "rejected", seq=1, status=503)]
    t = sent_at(s[0])
    receipts = [rcpt(s[1], t + 1), rcpt(s[1], t + 2), rcpt(s[0], t + 3)]
    out = books(write_run(tmp_path, s, receipts))
    c = out["counts"]
    assert (c["rejected"], c["unexpected"], c["duplicates"], c["delivered"]) == (1, 0, 1, 1)
    assert out["samples"]["out_of_order"] == ["m0"]
    assert out["rejected_by_status"] == {"503": 1}


def test_long_ids_with_a_common_prefix(tmp_path: Path) -> None:
    # k6 ids: "<run id>-<vu>-<seq>". The ledger strips the shared run id for the join.
    for run_id in ("20250101T021000-a1b2c3", "rün-ünïcødé-λλλλλλλλλ"):
        s = [{**send(i), "id": f"{run_id}-1-{i}"} for i in range(3)]
        t = sent_at(s[0])
        receipts = [
            rcpt(s[0], t),
            rcpt(f"{run_id}-1-9", t),  # the prefix, another rest: unexpected
            rcpt("1-1", t),  # a rest without the prefix: unexpected
            rcpt(run_id, t),  # a piece of the prefix: unexpected
            rcpt(s[2], t + 1),
        ]
        out = books(write_run(tmp_path / run_id, s, receipts))
        assert out["counts"]["delivered"] == 2
        assert out["counts"]["unexpected"] == 3
        assert out["samples"]["lost"] == [f"{run_id}-1-1"]
        assert out["samples"]["unexpected"] == [f"{run_id}-1-9", "1-1", run_id]


def test_ids_outside_the_sampled_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The prefix is guessed from the first and the last ids; ids in between without it
    # must count the same.
    monkeypatch.setattr("deliverydags.ledger.sends.PREFIX_SAMPLE", 3)
    monkeypatch.setattr("deliverydags.ledger.sends.PREFIX_TAIL_BYTES", 200)  # the last line
    ids = ["run-1-0", "run-1-1", "run-1-2", "1-3", "other-4", "run-1-5"]
    s = [{**send(i), "id": rid} for i, rid in enumerate(ids)]
    t = sent_at(s[0])
    receipts = [rcpt(s[i], t + i) for i in (0, 3, 4)] + [rcpt("run-1-3", t + 9)]
    out = books(write_run(tmp_path, s, receipts))
    assert out["counts"]["delivered"] == 3
    assert out["counts"]["unexpected"] == 1  # "run-1-3" is not "1-3"
    assert out["samples"]["lost"] == ["run-1-1", "run-1-2", "run-1-5"]
    assert out["samples"]["unexpected"] == ["run-1-3"]


def test_unexpected_counts_receipts_samples_ids(tmp_path: Path) -> None:
    s = [send(0)]
    t = sent_at(s[0])
    receipts = [rcpt("ghost-b", t), rcpt("ghost-a", t), rcpt("ghost-b", t, "failed"), rcpt(s[0], t)]
    out = books(write_run(tmp_path, s, receipts))
    assert out["counts"]["unexpected"] == 3
    assert out["samples"]["unexpected"] == ["ghost-b", "ghost-a"]


def test_samples_follow_first_seen_order_and_stop_at_1000(tmp_path: Path) -> None:
    n = 1500
    s = [send(i, stream=f"s{i}") for i in range(n)]  # all lost but the duplicated ones
    t0 = sent_at(s[0])
    dups = [1400, 3, 700]  # duplicated in this arrival order of their 2nd receipt
    receipts: list[dict | str] = [rcpt(s[i], t0 + k) for k, i in enumerate([700, 3, 1400])]
    receipts += [rcpt(s[i], t0 + 10 + k) for k, i in enumerate(dups)]
    receipts += [rcpt(f"x{i}", t0 + 100 + i) for i in reversed(range(1200))]
    out = books(write_run(tmp_path, s, receipts))
    lost = [f"m{i}" for i in range(n) if i not in dups]
    assert out["samples"]["lost"] == lost[:1000]
    assert out["samples"]["duplicates"] == [f"m{i}" for i in dups]
    assert out["samples"]["unexpected"] == [f"x{i}" for i in reversed(range(200, 1200))]
    assert out["counts"]["unexpected"] == 1200


def test_arrival_is_n_not_line_order_and_ties_go_by_line(tmp_path: Path) -> None:
    s = [send(0, seq=0), send(1, seq=1)]
    t = sent_at(s[0])
    lines = [
        {"n": 5, **rcpt(s[0], t + 5)},  # first line, but arrived after m1
        {"n": 2, **rcpt(s[1], t + 2)},
    ]
    out = books(write_run(tmp_path, s, lines, number=False))
    assert out["samples"]["out_of_order"] == ["m0"]
    tied = [{"n": 7, **rcpt(s[1], t + 1)}, {"n": 7, **rcpt(s[0], t + 1)}]
    out = books(write_run(tmp_path, s, tied, number=False))
    assert out["samples"]["out_of_order"] == ["m0"]  # same n: the file's order decides


# --- input files ------------------------------------------------------------------------


def test_console_junk_repeats_and_invalid_send_lines(tmp_path: Path) -> None:
    sends: list[dict | str] = [
        "time=... level=info msg=starting",
        send(0),
        '{"level": "info", "msg": "tick"}',
        '{"dd": 2, "id": "m9", "stream": "s", "seq": 9, "sent_ms": 1, "class": "accepted"}',
        '{"dd": true, "id": "m8", "stream": "s", "seq": 8, "sent_ms": 1, "class": "accepted"}',
        '[1, 2, {"dd": 1}]',
        '"just a string"',
        '{"dd": 1, "id": "m7"',  # torn
        "",
        send(1, variant="B"),
        {**send(0, "rejected"), "variant": "ghost"},  # repeated id: the first line wins
        '{"dd": 1, "id": "m6", "stream": "s", "seq": 6}',  # no sent_ms/class: invalid
        {**send(5), "class": "maybe"},  # unknown class: invalid
    ]
    s0 = send(0)
    out = books(write_run(tmp_path, sends, [rcpt(s0, sent_at(s0) + 1)]))
    assert out["counts"]["attempted"] == 2
    assert (out["counts"]["accepted"], out["counts"]["delivered"]) == (2, 1)
    assert out["repeated_send_ids"] == 1
    assert out["invalid_lines"]["sends"] == 2
    assert set(out["by_variant"]) == {"", "B"}  # "ghost" was only on the repeated line
    write_send_columns(tmp_path, pieces=[1, 3, 2])
    assert sealed_send_columns(tmp_path) is not None
    assert books(tmp_path) == out


def test_send_copy_in_pieces_reads_like_the_whole_file(tmp_path: Path) -> None:
    # Lines that a piece boundary might read differently from the whole file's parse.
    good = [json.dumps(send(i)).encode() for i in range(6)]
    raw = b"".join(
        [
            b"\xef\xbb\xbf" + good[0] + b"\n",  # byte-order mark on the file's first line
            good[1] + b"\r\n",
            b"\xef\xbb\xbf" + good[2] + b"\n",  # ... and on a line in the middle
            b'{"dd": 1, "id": "m\xff", "stream": "s", "seq": 1}\n',  # not UTF-8
            b"\n   \n",
            good[3] + b" " + good[4] + b"\n",  # two objects on one line
            b'{"dd": 1,\n"id": "m9"}\n',  # one object on two lines
            good[5][:-1],  # torn last line, no newline
        ]
    )
    (tmp_path / "sends.ndjson").write_bytes(raw)
    s0 = send(0)
    write_run(tmp_path, None, [rcpt(s0, sent_at(s0)), rcpt(send(2), sent_at(s0))])
    whole = books(tmp_path)
    # good[0] (DuckDB skips a byte-order mark at the file's start) and good[1] survive
    assert whole["counts"]["attempted"] == 2
    for pieces in ([1], [2, 1], [100]):
        write_send_columns(tmp_path, pieces=pieces)
        assert books(tmp_path) == whole, pieces


def test_reads_the_sealed_send_copy_only_while_it_matches(tmp_path: Path) -> None:
    s = [{**send(i), "id": f"run-1-{i}"} for i in range(3)]
    t = sent_at(s[0])
    run = write_run(tmp_path, s, [rcpt(s[0], t), rcpt(s[1], t)])
    plain = books(run)
    assert plain["counts"]["delivered"] == 2
    write_send_columns(run, prefix="run-")
    assert books(run) == plain

    def forge(prefix: str = "run-") -> None:
        """A copy of other sends (m0 rejected), sealed over sends.ndjson as it is."""
        path = run / "sends.ndjson"
        real = path.read_bytes()
        forged = real.replace(b'"accepted", "status": 202', b'"rejected", "status": 429', 1)
        path.write_bytes(forged)
        write_send_columns(run, prefix)
        mtime = path.stat().st_mtime_ns
        path.write_bytes(real)
        os.utime(path, ns=(mtime, mtime))

    forge()  # what the ledger reads while the seal matches...
    assert books(run)["counts"]["rejected"] == 1
    # ...and not when the copy is torn or holds fewer rows than sealed, when an id lacks
    # its prefix, or once sends.ndjson changed.
    size = (run / send_columns.COLUMNS_FILE).stat().st_size
    with (run / send_columns.COLUMNS_FILE).open("r+b") as f:
        f.truncate(size - 40)
    assert books(run) == plain
    forge()
    seal_path = run / send_columns.SEAL_FILE
    seal = json.loads(seal_path.read_text())
    seal_path.write_text(json.dumps({**seal, "records": seal["records"] + 1}))
    assert books(run) == plain
    forge("run-1-1")  # run-1-0 and run-1-2 lack it
    assert books(run) == plain
    forge()
    with (run / "sends.ndjson").open("a") as f:
        f.write("\n")
    assert books(run) == plain


def test_send_copier_follows_the_file_k6_writes(tmp_path: Path) -> None:
    sends = [json.dumps({**send(i), "id": f"r1-{i % 3}-{i}"}) + "\n" for i in range(300)]
    data = "".join(sends).encode() + b'{"dd": 1, "id": "r1-torn'
    copier = SendCopier(tmp_path, "r1-", every_s=0.005)

    def k6() -> None:  # writes in fragments that cut lines anywhere
        with (tmp_path / "sends.ndjson").open("wb") as f:
            for start in range(0, len(data), 997):
                f.write(data[start : start + 997])
                f.flush()
                time.sleep(0.002)

    writer = threading.Thread(target=k6)
    writer.start()
    writer.join()
    assert copier.finish(), copier.error
    found = sealed_send_columns(tmp_path)
    assert found is not None and found[0].records == 300
    s0 = send(0)
    write_run(tmp_path, None, [rcpt("r1-0-0", sent_at(s0)), rcpt("r1-1-7", sent_at(s0))])
    with_copy = books(tmp_path)
    assert with_copy["counts"]["delivered"] == 2
    assert with_copy["invalid_lines"]["sends"] == 0  # the torn line is junk, as whole
    (tmp_path / send_columns.SEAL_FILE).unlink()
    assert books(tmp_path) == with_copy


def test_send_copier_leaves_no_copy_it_cannot_vouch_for(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    copier = SendCopier(run, "r-", every_s=0.005)
    assert not copier.finish()  # k6 never wrote sends.ndjson
    assert "sends.ndjson" in (copier.error or "")
    assert sorted(p.name for p in run.iterdir()) == []
    (run / "sends.ndjson").write_text(json.dumps(send(0)) + "\n")
    copier = SendCopier(run, "r-", every_s=0.005)
    copier.close()  # stopped before k6 exited (an interrupted run)
    assert sorted(p.name for p in run.iterdir()) == ["sends.ndjson"]


def test_missing_files(tmp_path: Path) -> None:
    out = books(write_run(tmp_path / "empty", None))
    assert out["counts"] == dict.fromkeys(out["counts"], 0)
    assert out["delivery_rate"] is None
    assert out["latency_ms"] == {"p50": None, "p95": None, "p99": None, "max": None}
    assert out["late_by_deadline"] == {"300": 0, "900": 0}
    out = books(write_run(tmp_path / "sends-only", [send(0), send(1, "indeterminate")]))
    assert (out["counts"]["lost"], out["counts"]["unseen"]) == (1, 1)
    assert out["samples"]["lost"] == ["m0"]


def test_leaves_no_scratch_files(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, [send(0)], [rcpt(send(0), sent_at(send(0)))])
    books(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == ["receipts.ndjson", "sends.ndjson"]


def test_delivery_rate_none_when_nothing_accepted(tmp_path: Path) -> None:
    out = books(write_run(tmp_path, [send(0, "rejected"), send(1, "indeterminate")], []))
    assert out["delivery_rate"] is None
    assert out["counts"]["rejected"] == 1


def test_reads_the_sealed_columnar_copy_only_while_it_matches(tmp_path: Path) -> None:
    s = [send(i) for i in range(3)]
    t = sent_at(s[0])
    run = write_run(tmp_path / "run", s, [rcpt(s[0], t), rcpt(s[1], t), rcpt("ghost", t)])
    plain = books(run)
    assert plain["counts"]["delivered"] == 2
    assert write_columns(run)
    assert books(run) == plain
    # A copy that says otherwise (forged here: the collector writes the same rows) is
    # what the ledger reads while its seal matches receipts.ndjson...
    rows = [json.loads(line) for line in (run / "receipts.ndjson").read_text().splitlines()]
    assert write_columns(run, [rows[0], {**rows[1], "status": "failed"}])
    forged = books(run)
    assert forged["counts"]["delivered"] == 1
    assert forged["counts"]["unexpected"] == 0
    # ...and not once receipts.ndjson changed after the seal, nor when the copy is torn
    # or holds fewer rows than sealed.
    with (run / "receipts.ndjson").open("a") as f:
        f.write(json.dumps({**rows[0], "n": 3, "id": "m2"}) + "\n")
    assert books(run)["counts"]["delivered"] == 3
    assert write_columns(run, [{**r, "status": "failed"} for r in rows])
    size = (run / COLUMNS_FILE).stat().st_size
    with (run / COLUMNS_FILE).open("r+b") as f:
        f.truncate(size - 40)
    assert books(run)["counts"]["delivered"] == 3
    assert write_columns(run, [{**r, "status": "failed"} for r in rows])
    seal = json.loads((run / SEAL_FILE).read_text())
    (run / SEAL_FILE).write_text(json.dumps({**seal, "records": seal["records"] + 1}))
    assert books(run)["counts"]["delivered"] == 3
    assert write_columns(run, [{**r, "status": "failed"} for r in rows])
    assert books(run)["counts"]["delivered"] == 0  # sanity: the forged copy is read


def test_torn_receipt_line_is_counted_as_invalid(tmp_path: Path) -> None:
    s = [send(0)]
    receipts: list[dict | str] = [rcpt(s[0], sent_at(s[0]) + 1), '{"n": 1, "recv_ns": 17']
    out = books(write_run(tmp_path, s, receipts))
    assert out["counts"]["delivered"] == 1
    assert out["invalid_lines"]["receipts"] == 1


def test_deadlines_are_checked(tmp_path: Path) -> None:
    write_run(tmp_path, [send(0)])
    for bad in ([], [30, 30], [300, 30], [-1], [30.2, 30.7], [math.inf]):
        with pytest.raises(ValueError):
            reconcile(tmp_path, bad)
    one = books(tmp_path, deadlines=[5])
    assert one["late_by_deadline"] == {}


def test_delivery_timeline(tmp_path: Path) -> None:
    s = [send(0), send(1), send(2, "rejected"), send(3)]
    receipts = [rcpt(s[1], sent_at(s[1]) + 100 * S), rcpt(s[0], sent_at(s[0]) + 5 * S)]
    table = delivery_timeline(write_run(tmp_path, s, receipts), None, DEADLINES)
    assert table.column("sent_ms").to_pylist() == [
        s[0]["sent_ms"],
        s[1]["sent_ms"],
        s[3]["sent_ms"],
    ]
    assert table.column("delivered_recv_ns").to_pylist() == [
        sent_at(s[0]) + 5 * S,
        sent_at(s[1]) + 100 * S,
        None,
    ]
    assert table.column("fate").to_pylist() == ["delivered", "late", "lost"]


@given(st.lists(st.floats(min_value=0, max_value=5e12, allow_nan=False), max_size=50))
@settings(max_examples=200, deadline=None)
def test_sent_ns_is_exact(values: list[float]) -> None:
    got = sent_ns(np.array(values, dtype=np.float64))
    assert got.tolist() == [ms_to_ns_exact(v) for v in values]


def test_sent_ns_epoch_binade() -> None:
    rng = np.random.default_rng(7)
    scale = 10.0 ** rng.integers(0, 7, 20_000)
    x = BASE_MS + np.rint(rng.random(20_000) * 1e9 * scale) / scale
    x = np.concatenate([x, BASE_MS + rng.random(20_000) * 1e9, [2.0**40, 2.0**41 - 2**-12]])
    assert sent_ns(x).tolist() == [ms_to_ns_exact(v) for v in x]


# --- contract v1.1: send delay, resend, integrity, tenants ---------------------------------

V1_COUNTS = [
    *("attempted", "accepted", "rejected", "indeterminate", "delivered", "late", "failed"),
    *("lost", "recovered", "unseen", "duplicates", "unexpected", "out_of_order"),
    "bad_signature",
]


def same_from_send_copy(run_dir: Path, out: dict, measures: tuple[str, ...] = ()) -> None:
    """The runner's columnar copy of the sends (v1.1 columns included) gives the same books."""
    write_send_columns(run_dir, pieces=[2, 1])
    assert sealed_send_columns(run_dir) is not None
    assert books(run_dir, measures=measures) == out


def test_a_v1_run_reports_v1_counts_only(tmp_path: Path) -> None:
    s = [send(0), send(1)]
    out = books(write_run(tmp_path, s, [rcpt(s[0], sent_at(s[0]) + 1)]))
    assert list(out["counts"]) == V1_COUNTS
    assert out["send_delay_ms"] is None
    assert set(out["samples"]) == {"lost", "duplicates", "out_of_order", "unexpected"}
    same_from_send_copy(tmp_path, out)
    with pytest.raises(ValueError):
        reconcile(tmp_path, DEADLINES, measures=("integrity", "colour"))
    with pytest.raises(ValueError):
        reconcile(tmp_path, DEADLINES, measures="integrity")


def test_send_delay(tmp_path: Path) -> None:
    # actual - intended per message with an intended time, whatever its class or fate
    delays = {0: 0.5, 1: 2.0, 2: 0.25, 3: 40.0, 4: 1.0}
    s: list[dict | str] = []
    for i in range(7):
        line = send(i, ["accepted", "rejected", "indeterminate"][i % 3])
        if i in delays:
            line["intended_ms"] = line["sent_ms"] - delays[i]
        s.append(line)
    # m5, m6 carry none (an old record); a bad one is no time; a repeated line no message
    s[5] = {**s[5], "intended_ms": "soon"}
    s.append({**send(0), "intended_ms": 0.0})
    out = books(write_run(tmp_path, s))
    assert list(out["counts"]) == V1_COUNTS  # send delay is no count
    assert out["counts"]["attempted"] == 7
    want = sorted(delays.values())  # 0.25, 0.5, 1, 2, 40
    assert out["send_delay_ms"] == {
        "p50": 1.0,
        "p99": pytest.approx(want[3] + 0.96 * (want[4] - want[3])),
        "max": 40.0,
    }
    same_from_send_copy(tmp_path, out)
    # asked for by a run whose records have none: reported as unknown
    plain = write_run(tmp_path / "v1", [send(0)])
    assert books(plain, measures=("send_delay",))["send_delay_ms"] == {
        "p50": None,
        "p99": None,
        "max": None,
    }


def test_resends_count_apart_and_their_receipts_are_duplicates(tmp_path: Path) -> None:
    s = [send(i) for i in range(3)]
    resends = [
        {**send(0), "resend": "same", "sent_ms": BASE_MS + 10},  # 202: a repeat
        {**send(1), "resend": "changed", "class": "rejected", "status": 409},  # a conflict
        {**send(1), "resend": "same", "class": "rejected", "status": 409},  # wrong, still 409
        {**send(9), "resend": "same", "class": "indeterminate", "status": 0},  # no answer
        {"dd": 1, "id": "m2", "resend": "same"},  # no class etc.: invalid, no resend
    ]
    t = sent_at(s[0])
    receipts = [rcpt(s[0], t + 1), rcpt(s[1], t + 2), rcpt(s[0], t + 3)]  # m0 twice
    out = books(write_run(tmp_path, [s[0], resends[0], s[1], *resends[1:], s[2]], receipts))
    c = out["counts"]
    assert list(c) == [*V1_COUNTS, "resent", "conflicts"]
    assert (c["resent"], c["conflicts"]) == (4, 2)
    # the repeats are no messages: m9 is not attempted, m0 not rejected nor repeated
    assert (c["attempted"], c["accepted"], c["delivered"], c["lost"]) == (3, 3, 2, 1)
    assert (c["duplicates"], c["unexpected"]) == (1, 0)
    assert out["samples"]["duplicates"] == ["m0"]
    assert out["repeated_send_ids"] == 0
    assert out["invalid_lines"]["sends"] == 1
    same_from_send_copy(tmp_path, out)
    plain = write_run(tmp_path / "v1", [send(0)])
    assert books(plain, measures=("resend",))["counts"]["resent"] == 0


def test_integrity_corrupted_and_undigested(tmp_path: Path) -> None:
    good, bad = "ab" * 32, "cd" * 32
    s = [{**send(i, stream=f"s{i}"), "digest": good} for i in range(8)]
    s[6] = {**s[6], "class": "rejected", "status": 400}
    del s[7]["digest"]  # a message sent without one: nothing to compare
    t = [sent_at(x) for x in s]
    receipts = [
        {**rcpt(s[0], t[0] + S), "digest": good},  # intact
        {**rcpt(s[1], t[1] + S), "digest": bad},  # corrupted, delivered
        {**rcpt(s[2], t[2] + 100 * S), "digest": bad},  # corrupted, late
        {**rcpt(s[3], t[3] + S), "digest": good.upper()},  # the same hex digest
        {**rcpt(s[3], t[3] + 2 * S), "digest": bad},  # a later duplicate: not judged
        {**rcpt(s[4], t[4] + S, "failed"), "digest": bad},  # failed: not judged...
        {**rcpt(s[4], t[4] + 2 * S)},  # ...its first delivered has none: undigested
        {**rcpt(s[5], t[5] + 2000 * S), "digest": bad},  # after the last deadline: lost,
        # but corrupted all the same (independent of the fate)
        {**rcpt(s[6], t[6] + S), "digest": bad},  # rejected: not an accepted message
        {**rcpt(s[7], t[7] + S), "digest": bad},  # nothing sent to compare with
        {**rcpt("ghost", t[0]), "digest": bad},  # unexpected: neither
        rcpt("ghost", t[0]),
    ]
    out = books(write_run(tmp_path, s, receipts))
    c = out["counts"]
    assert list(c) == [*V1_COUNTS, "corrupted", "undigested"]
    assert (c["corrupted"], c["undigested"]) == (3, 1)
    assert out["samples"]["corrupted"] == ["m1", "m2", "m5"]
    assert (c["delivered"], c["late"], c["lost"], c["unexpected"]) == (5, 1, 1, 2)
    same_from_send_copy(tmp_path, out)
    # A run that checks integrity but whose sends carry no digest (told by the runner):
    # every delivered receipt of a sent id without one is undigested, none corrupted.
    plain = write_run(tmp_path / "v1", [send(0), send(1)], [rcpt(send(0), t[0] + 1)])
    asked = books(plain, measures=("integrity",))
    assert (asked["counts"]["corrupted"], asked["counts"]["undigested"]) == (0, 1)
    assert asked["samples"]["corrupted"] == []
    assert "corrupted" not in books(plain)["counts"]


def test_tenants_leaked_receipts_count_in_leaked_alone(tmp_path: Path) -> None:
    s = [{**send(i, stream=f"s{i}"), "tenant": "a" if i < 3 else "b"} for i in range(5)]
    s.append(send(5, stream="s5"))  # no tenant: its receipts belong at the plain callback
    t = [sent_at(x) for x in s]
    receipts = [
        {**rcpt(s[0], t[0] + S), "tenant": "a"},  # delivered
        {**rcpt(s[0], t[0] + 2 * S), "tenant": "b"},  # leaked (not a duplicate)
        {**rcpt(s[1], t[1] + S), "tenant": "b"},  # leaked: m1 stays lost
        {**rcpt(s[1], t[1] + 3 * S), "tenant": "b"},  # leaked again: per receipt
        {**rcpt(s[2], t[2] + S)},  # at the plain callback: leaked; m2 lost
        {**rcpt(s[3], t[3] + S), "tenant": "b"},  # delivered
        {**rcpt(s[4], t[4] + S), "tenant": "a"},  # leaked...
        {**rcpt(s[4], t[4] + 2 * S), "tenant": "b"},  # ...then delivered: no duplicate
        rcpt(s[5], t[5] + S),  # delivered
        {**rcpt(s[5], t[5] + S), "tenant": "a"},  # leaked
        {**rcpt("ghost", t[0]), "tenant": "a"},  # never sent: unexpected, not leaked
    ]
    out = books(write_run(tmp_path, s, receipts))
    c = out["counts"]
    assert list(c) == [*V1_COUNTS, "leaked"]
    assert c["leaked"] == 6
    assert out["samples"]["leaked"] == ["m0", "m1", "m2", "m4", "m5"]
    assert (c["delivered"], c["lost"], c["duplicates"], c["unexpected"]) == (4, 2, 0, 1)
    assert out["samples"]["lost"] == ["m1", "m2"]
    same_from_send_copy(tmp_path, out)


def test_all_v1_1_measures_together(tmp_path: Path) -> None:
    s = [
        {**send(0), "intended_ms": BASE_MS - 1, "digest": "aa", "tenant": "a"},
        {**send(0), "resend": "same", "digest": "aa", "tenant": "a"},
    ]
    t = sent_at(s[0])
    receipts = [
        {**rcpt(s[0], t + 1), "digest": "bb", "tenant": "b"},  # leaked: not judged
        {**rcpt(s[0], t + 2), "digest": "aa", "tenant": "a"},
        {**rcpt(s[0], t + 3), "tenant": "a"},  # the resend's: a duplicate, undigested
    ]
    out = books(write_run(tmp_path, s, receipts))
    c = out["counts"]
    assert list(c)[14:] == ["corrupted", "undigested", "resent", "conflicts", "leaked"]
    assert [c[k] for k in list(c)[14:]] == [0, 1, 1, 0, 1]
    assert (c["delivered"], c["duplicates"]) == (1, 1)
    assert out["send_delay_ms"] == {"p50": 1.0, "p99": 1.0, "max": 1.0}
    same_from_send_copy(tmp_path, out)


# --- against the oracle -------------------------------------------------------------------


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    """A small random run: sends with junk and repeats, receipts near the deadlines."""
    base = draw(st.sampled_from([BASE_MS, 1000.0, 0.0, 1_700_000_000_123.4567]))
    deadlines = draw(st.sampled_from([[1, 5, 10], [2], [1, 3], [0.5, 2, 7], [1.25, 4]]))
    n_streams = draw(st.integers(1, 3))
    prefix = draw(st.sampled_from(["", "20250101T021000-a1b2c3-", "ünïcødé-λ-run-2025-"]))
    # v1.1 fields, each in some runs only (and then on some lines only)
    v11 = {k: draw(st.booleans()) for k in ("intended", "digest", "tenant", "resend")}
    measures = tuple(draw(st.lists(st.sampled_from(MEASURES), max_size=2, unique=True)))
    msgs = []
    for k in range(draw(st.integers(0, 12))):
        stream = f"s{draw(st.integers(0, n_streams - 1))}"
        seq = sum(1 for m in msgs if m["stream"] == stream) + draw(st.sampled_from([0, 0, 1]))
        frac = draw(st.integers(0, 20_000)) / 10 ** draw(st.integers(0, 7))
        msgs.append(
            {
                "dd": 1,
                "id": f"{prefix}id{k}",
                "stream": stream,
                "seq": seq,
                "sent_ms": base + frac,
                "class": draw(st.sampled_from(CLASS_WEIGHTS)),
                "status": draw(st.sampled_from([202, 429, 503, 0, 400])),
                "variant": draw(st.sampled_from(["", "A", "B"])),
            }
        )
        m = msgs[-1]
        if v11["intended"] and draw(st.integers(0, 3)):
            m["intended_ms"] = m["sent_ms"] - draw(st.integers(-5, 5000)) / 10 ** draw(
                st.integers(0, 3)
            )
        if v11["digest"] and draw(st.integers(0, 3)):
            m["digest"] = draw(st.sampled_from(DIGESTS))
        if v11["tenant"] and draw(st.integers(0, 3)):
            m["tenant"] = draw(st.sampled_from(TENANTS))
    receipts = []
    deadline_ns = [int(Decimal(repr(float(d))) * S) for d in deadlines]
    for m in msgs:
        t = int(Decimal(repr(m["sent_ms"])) * 1_000_000)
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3]))):
            d = draw(st.sampled_from(deadline_ns))
            delay = draw(
                st.one_of(
                    st.sampled_from([d, d + 1, d - 1, 0]),
                    st.integers(-S, deadline_ns[-1] + 2 * S),
                )
            )
            status = draw(st.sampled_from(["delivered", "delivered", "failed"]))
            r = {"id": m["id"], "recv_ns": t + delay, "status": status}
            if v11["digest"] and draw(st.integers(0, 4)):
                r["digest"] = draw(st.sampled_from([m.get("digest") or "aa", *DIGESTS]))
            if v11["tenant"] and draw(st.integers(0, 4)):
                r["tenant"] = draw(st.sampled_from([m.get("tenant") or "a", *TENANTS]))
            receipts.append(r)
    for _ in range(draw(st.integers(0, 3))):
        receipts.append(
            {
                "id": f"ghost{draw(st.integers(0, 1))}",
                "recv_ns": int(base * 1e6),
                "status": "delivered",
            }
        )
    order = draw(st.permutations(range(len(receipts))))
    numbering = draw(st.sampled_from(["dense", "sparse", "ties"]))
    rows: list[dict | str] = []
    for n, i in enumerate(order):
        number = {"dense": n, "sparse": 3 * n + 5, "ties": n // 2}[numbering]
        rows.append({"n": number, **receipts[i], "stream": "echo", "seq": 0, "delivered_at": "x"})
    if rows and draw(st.booleans()):  # lines out of n order in the file
        rows = list(draw(st.permutations(rows)))
    if draw(st.booleans()):
        rows.append('{"n": 99, "recv_')  # a torn last line
    sends: list[dict | str] = list(draw(st.permutations(msgs)))
    for junk in draw(st.lists(st.sampled_from(JUNK), max_size=4)):
        sends.insert(draw(st.integers(0, len(sends))), junk)
    if msgs and draw(st.booleans()):  # a repeated id, with another class
        sends.append({**draw(st.sampled_from(msgs)), "class": "rejected", "variant": "R"})
    if msgs and v11["resend"]:  # repeats on purpose, answered anyhow
        for _ in range(draw(st.integers(1, 3))):
            status = draw(st.sampled_from([202, 409, 409, 0, 503]))
            cls = {202: "accepted", 0: "indeterminate"}.get(status, "rejected")
            kind = draw(st.sampled_from(["same", "changed", "other"]))
            resend = {**draw(st.sampled_from(msgs)), "resend": kind, "status": status}
            sends.append({**resend, "class": cls})
    recvs = [r["recv_ns"] for r in receipts]
    close = None
    if recvs and draw(st.booleans()):
        close = draw(st.integers(min(recvs) - 1, max(recvs) + 1))
    refused = [
        {"recv_ns": draw(st.sampled_from(recvs or [0])), "reason": draw(st.sampled_from(REASONS))}
        for _ in range(draw(st.integers(0, 3)))
    ]
    return {
        "sends": sends,
        "receipts": rows,
        "refused": refused,
        "deadlines": deadlines,
        "close": close,
        # the runner's copy of the sends: its prefix (a wrong one: not read) and pieces
        "copy_prefix": draw(st.sampled_from([prefix, "", "id"])),
        "pieces": draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)),
        "measures": measures,
    }


CLASS_WEIGHTS = ["accepted"] * 4 + ["rejected", "indeterminate"]
MEASURES = ["send_delay", "integrity", "resend", "tenants"]
DIGESTS = ["aa", "AA", "bb"]
TENANTS = ["a", "b", ""]
REASONS = ["bad_signature", "malformed"]
JUNK = [
    "plain console text",
    '{"level": "warn", "msg": "slow"}',
    '{"dd": 2, "id": "id0", "stream": "s0", "seq": 0, "sent_ms": 1, "class": "accepted"}',
    '{"dd": true, "id": "zz", "stream": "s0", "seq": 0, "sent_ms": 1, "class": "accepted"}',
    '{"dd": 1.5, "id": "zz", "stream": "s0", "seq": 0, "sent_ms": 1, "class": "accepted"}',
    '{"dd": 1, "id": "bad"}',
    "[1, 2, 3]",
    "{broken",
]


@pytest.mark.integration  # 200 generated runs, ~50 s: the deep tier
@given(runs())
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_matches_oracle(tmp_path: Path, run: dict[str, Any]) -> None:
    run_dir = write_run(
        tmp_path / "run", run["sends"], run["receipts"], run["refused"], number=False
    )
    args = (run_dir, run["deadlines"], run["close"], run["measures"])
    want = oracle(*args)
    got = books(*args)
    if write_columns(run_dir):  # the same books from the collector's columnar copy
        assert books(*args) == got
    write_send_columns(run_dir, run["copy_prefix"], run["pieces"])  # and the runner's
    assert books(*args) == got
    assert set(got) == set(want)
    for key in want:
        if key in ("latency_ms", "send_delay_ms") and want[key] is None:
            assert got[key] is None, key
        elif key in ("latency_ms", "send_delay_ms"):
            for p, v in want[key].items():
                assert (got[key][p] is None) == (v is None), p
                if v is not None:  # send delay: a difference of two floors to the ns
                    assert got[key][p] == pytest.approx(v, rel=1e-12, abs=2e-6), p
        elif key == "delivery_rate":
            assert got[key] == pytest.approx(want[key])
        else:
            assert got[key] == want[key], key
