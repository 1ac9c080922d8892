"""Receipt bodies in, receipts.ndjson lines out (pure; no I/O, no aiohttp).

The collector's hot path: one ``orjson.loads`` per POST, one pass over its receipts that
checks types and builds the output (one ``orjson.dumps`` each), one joined buffer per POST.
"""

from __future__ import annotations

from typing import Any

import orjson

_NEWLINE = orjson.OPT_APPEND_NEWLINE


class Malformed(ValueError):
    """A correctly signed body that is not a receipt or a batch of receipts."""


def encode(
    body: bytes,
    first_n: int,
    recv_ns: int,
    columns: tuple[list[str], list[bool]] | None = None,
) -> tuple[bytes, int]:
    """receipts.ndjson lines for one POST (one receipt or ``{"messages": [...]}``).

    Receipts are numbered from ``first_n`` in array order; returns the lines (each ending
    in a newline) and their count. Raises ``Malformed`` if anything is wrong, so a batch is
    recorded whole or not at all. ``columns``: two empty lists that receive each receipt's
    id and whether it is "delivered" (for the columnar copy; left as they are on error).
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
        ):
            raise Malformed(f"receipt {n - first_n}: {_problem(item)}")
        record = {
            "n": n,
            "recv_ns": recv_ns,
            "id": rid,
            "stream": stream,
            "seq": seq,
            "status": status,
            "delivered_at": at,
        }
        lines.append(dumps(record, option=_NEWLINE))
        ids.append(rid)
        delivered.append(status == "delivered")
        n += 1
    if columns is not None:
        columns[0].extend(ids)
        columns[1].extend(delivered)
    return b"".join(lines), n - first_n


def _problem(r: Any) -> str:
    """Say what is wrong with a receipt (slow path, only for the 400 answer)."""
    if not isinstance(r, dict):
        return "not an object"
    for key, kind in (("id", str), ("stream", str), ("seq", int), ("delivered_at", str)):
        if type(r.get(key)) is not kind:
            return f"'{key}' missing or not {kind.__name__}"
    return "'status' is not 'delivered' or 'failed'"


def render_rejected(recv_ns: int, reason: str) -> bytes:
    """One rejected.ndjson line."""
    return orjson.dumps({"recv_ns": recv_ns, "reason": reason}, option=_NEWLINE)
