"""One reader of a run's send records (``sends.ndjson``) for code that needs a few of them
as Python objects; the ledger reads the same lines in bulk with DuckDB (``ndjson``).

The ledger's rules hold here too: only lines of this format version count (k6 console
chatter and a torn last line are skipped), a resend line is no message, and a send id's
first line wins."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from deliverydags.formats import SENDS_FILE, SENDS_FORMAT_VERSION

PREFIX = b'{"dd":'


@dataclass(frozen=True, slots=True)
class SendRecord:
    id: str
    stream: str
    seq: int
    sent_ms: float
    send_class: str  # "accepted" | "rejected" | "indeterminate"
    status: int  # HTTP status of the last try, 0 when there was no answer
    variant: str = ""
    intended_ms: float | None = None  # contract v1.1, None when the line has none
    digest: str | None = None
    tenant: str | None = None
    bytes: int | None = None  # the payload's encoded size, when the script records it
    cross_tenant: bool = False  # sent with another tenant's token on purpose (v1.1)
    answers_429: int = 0  # 429 answers it got, retried ones included
    no_retry_after: int = 0  # of those, answered without a Retry-After header

    @property
    def accepted(self) -> bool:
        return self.send_class == "accepted"


def _lines(run_dir: Path) -> Iterator[dict]:
    """The run's send lines of this format, parsed, in order (none if the file is
    missing; a line that is not JSON is skipped, as the ledger skips it)."""
    path = Path(run_dir) / SENDS_FILE
    if not path.exists():
        return
    with path.open("rb") as f:
        for line in f:
            if not line.startswith(PREFIX):
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("dd") == SENDS_FORMAT_VERSION:
                yield rec


def read_sends(run_dir: Path) -> Iterator[SendRecord]:
    """The run's send records in line order: one per message (its first line; a resend
    line is not a message)."""
    seen: set[str] = set()
    for rec in _lines(run_dir):
        if rec.get("resend") not in (None, "") or rec.get("id") in seen:
            continue
        try:
            out = SendRecord(
                id=rec["id"],
                stream=rec["stream"],
                seq=int(rec["seq"]),
                sent_ms=float(rec["sent_ms"]),
                send_class=rec["class"],
                status=int(rec.get("status") or 0),
                variant=rec.get("variant") or "",
                intended_ms=_time(rec.get("intended_ms")),
                digest=rec.get("digest"),
                tenant=rec.get("tenant"),
                bytes=rec.get("bytes"),
                cross_tenant=rec.get("cross_tenant") is True,
                answers_429=int(rec.get("answers_429") or 0),
                no_retry_after=int(rec.get("no_retry_after") or 0),
            )
        except (KeyError, TypeError, ValueError):
            continue
        seen.add(out.id)
        yield out


@dataclass(frozen=True)
class ResendRecord:
    """A repeat sent on purpose (contract v1.1): ``kind`` "same" (the identical body) or
    "changed" (another body), and the HTTP status it got."""

    id: str
    kind: str
    status: int


def read_resends(run_dir: Path) -> Iterator[ResendRecord]:
    """The run's resend lines, in line order (the repeats ``read_sends`` leaves out)."""
    for rec in _lines(run_dir):
        if rec.get("resend") in (None, ""):
            continue
        try:
            yield ResendRecord(rec["id"], str(rec["resend"]), int(rec.get("status") or 0))
        except (KeyError, TypeError, ValueError):
            continue


def _time(value: object) -> float | None:
    """A send time in ms, or None (like the ledger, a field it cannot read is no time)."""
    if type(value) not in (int, float):
        return None
    ms = float(value)  # type: ignore[arg-type]
    return ms if math.isfinite(ms) else None
