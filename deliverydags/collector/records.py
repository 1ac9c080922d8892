"""Receipt bodies in, receipts.ndjson lines out (pure; no I/O, no aiohttp).

The collector's hot path: one ``orjson.loads`` per POST, one pass over its receipts that
checks types and builds the output (one ``orjson.dumps`` each), one joined buffer per POST.

A receipt is admitted only within the contract's limits: ``id`` and ``stream`` strings of
1 to 128 bytes (UTF-8), ``seq`` an integer 0 <= seq < 2**63 (a BIGINT, the type the
ledger reads every seq as: a larger one can match no message sent), ``status``
``delivered`` or ``failed``, ``delivered_at`` an RFC 3339 date-time with an offset.
Contract v1.1: a ``digest``, if there is one, must be a string of at most 128 bytes; it is
kept as given (the ledger compares it). The tenant of the callback a POST came to is kept
on each of its lines.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

_NEWLINE = orjson.OPT_APPEND_NEWLINE
MAX_ID_BYTES = 128  # contract v1; the same bound for ``stream``
MAX_SEQ = 2**63 - 1
MAX_DIGEST_BYTES = 128  # a SHA-256 in hex is 64; more is no digest
MAX_TENANT_BYTES = 64  # contract v1.1
# RFC 3339 section 5.6 date-time; fromisoformat then checks the ranges (month 13, ...).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class Malformed(ValueError):
    """A correctly signed body that is not a receipt or a batch of receipts."""


def encode(
    body: bytes,
    first_n: int,
    recv_ns: int,
    columns: tuple[list[str], list[bool]] | None = None,
    tenant: str | None = None,
) -> tuple[bytes, int]:
    """receipts.ndjson lines for one POST (one receipt or ``{"messages": [...]}``).

    Receipts are numbered from ``first_n`` in array order; returns the lines (each ending
    in a newline) and their count. Raises ``Malformed`` if anything is wrong, so a batch is
    recorded whole or not at all. ``columns``: two empty lists that receive each receipt's
    id and whether it is "delivered" (for the columnar copy; left as they are on error).
    ``tenant``: the tenant whose callback the POST came to (None: the plain one).
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not JSON: {exc}") from None
    if type(doc) is dict and "messages" in doc:
        items = doc["messages"]
        if type(items) is not list:
            raise Malformed("'messages' is not an array")
    else:
        items = [doc]
    # One pass that checks and builds; `type(x) is` is faster than isinstance and keeps a
    # bool out of `seq`. A non-dict item fails the subscript with TypeError.
    dumps = orjson.dumps
    lines = []
    ids: list[str] = []
    delivered: list[bool] = []
    n = first_n
    good_at = None  # a batch's receipts usually share delivered_at: check it once
    for item in items:
        try:
            rid = item["id"]
            stream = item["stream"]
            seq = item["seq"]
            status = item["status"]
            at = item["delivered_at"]
        except (KeyError, TypeError):
            raise Malformed(f"receipt {n - first_n}: {_problem(item)}") from None
        if (
            type(rid) is not str
            or type(stream) is not str
            or type(seq) is not int
            or type(at) is not str
            or (status != "delivered" and status != "failed")
            or not 0 <= seq <= MAX_SEQ
            or not _short(rid)
            or not _short(stream)
            or (at != good_at and not _is_rfc3339(at))
        ):
            raise Malformed(f"receipt {n - first_n}: {_problem(item)}")
        good_at = at
        record = {
            "n": n,
            "recv_ns": recv_ns,
            "id": rid,
            "stream": stream,
            "seq": seq,
            "status": status,
            "delivered_at": at,
        }
        digest = item.get("digest")
        if digest is not None:
            if type(digest) is not str or len(digest.encode()) > MAX_DIGEST_BYTES:
                raise Malformed(
                    f"receipt {n - first_n}: 'digest' is not a string of at most "
                    f"{MAX_DIGEST_BYTES} bytes"
                )
            record["digest"] = digest
        if tenant is not None:
            record["tenant"] = tenant
        lines.append(dumps(record, option=_NEWLINE))
        ids.append(rid)
        delivered.append(status == "delivered")
        n += 1
    if columns is not None:
        columns[0].extend(ids)
        columns[1].extend(delivered)
    return b"".join(lines), n - first_n


def valid_tenant(text: str) -> bool:
    """1 to MAX_TENANT_BYTES bytes of UTF-8."""
    return 0 < len(text.encode()) <= MAX_TENANT_BYTES


def _short(text: str) -> bool:
    """1 to MAX_ID_BYTES bytes of UTF-8 (32 characters are at most 128 bytes)."""
    return 0 < len(text) <= 32 or 0 < len(text.encode()) <= MAX_ID_BYTES


def _is_rfc3339(text: str) -> bool:
    if _RFC3339.fullmatch(text) is None:
        return False
    if text[17:19] == "60":  # a leap second is RFC 3339; datetime has none
        text = text[:17] + "59" + text[19:]
    try:
        datetime.fromisoformat(text.upper())  # 3.11 reads "Z"; not a lowercase "t"
    except ValueError:
        return False
    return True


def _problem(r: Any) -> str:
    """Say what is wrong with a receipt (slow path, only for the 400 answer)."""
    if not isinstance(r, dict):
        return "not an object"
    for key, kind in (("id", str), ("stream", str), ("seq", int), ("delivered_at", str)):
        if type(r.get(key)) is not kind:
            return f"'{key}' missing or not {kind.__name__}"
    if r["status"] != "delivered" and r["status"] != "failed":
        return "'status' is not 'delivered' or 'failed'"
    if not 0 <= r["seq"] <= MAX_SEQ:
        return "'seq' is not an integer from 0 to 2**63 - 1"
    for key in ("id", "stream"):
        if not _short(r[key]):
            return f"'{key}' is not 1 to {MAX_ID_BYTES} bytes"
    return "'delivered_at' is not an RFC 3339 date-time"


def render_rejected(recv_ns: int, reason: str) -> bytes:
    """One rejected.ndjson line."""
    return orjson.dumps({"recv_ns": recv_ns, "reason": reason}, option=_NEWLINE)
