"""The send-record reader follows the ledger's rules: this format version only, chatter
and torn lines skipped, a send id's first line wins."""

import orjson

from deliverydags.formats import SENDS_FILE
from deliverydags.formats.send_records import read_sends


def _line(**rec) -> bytes:
    base = {"dd": 1, "stream": "s0", "seq": 0, "sent_ms": 1.5, "status": 202, "variant": ""}
    return orjson.dumps({**base, **rec}) + b"\n"


def test_reader_keeps_first_line_per_id_and_skips_noise(tmp_path) -> None:
    (tmp_path / SENDS_FILE).write_bytes(
        b"k6 says hello\n"
        + _line(id="a", **{"class": "accepted"})
        + _line(id="a", **{"class": "rejected", "status": 500})  # a repeat: ignored
        + _line(id="b", dd=2, **{"class": "accepted"})  # another format version
        + _line(id="c", seq=3, **{"class": "indeterminate", "status": 0})
        + b'{"dd":1,"id":"torn'
    )
    recs = list(read_sends(tmp_path))
    assert [(r.id, r.send_class, r.status, r.seq) for r in recs] == [
        ("a", "accepted", 202, 0),
        ("c", "indeterminate", 0, 3),
    ]
    assert recs[0].accepted and not recs[1].accepted


def test_a_missing_file_reads_as_no_sends(tmp_path) -> None:
    assert list(read_sends(tmp_path)) == []


def test_reader_keeps_v1_1_fields_and_skips_resends(tmp_path) -> None:
    (tmp_path / SENDS_FILE).write_bytes(
        _line(id="a", intended_ms=0.5, digest="ab", tenant="t1", **{"class": "accepted"})
        + _line(id="a", resend="same", **{"class": "accepted"})  # a repeat: no message
        + _line(id="b", resend="changed", **{"class": "rejected", "status": 409})
        + _line(id="b", **{"class": "accepted"})
        + _line(id="c", intended_ms="soon", **{"class": "accepted"})  # no time, a message
    )
    a, b, c = read_sends(tmp_path)
    assert (c.id, c.intended_ms) == ("c", None)
    assert (a.id, a.intended_ms, a.digest, a.tenant) == ("a", 0.5, "ab", "t1")
    assert (b.id, b.intended_ms, b.digest, b.tenant, b.accepted) == ("b", None, None, None, True)
