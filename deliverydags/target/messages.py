"""Contract v1 messages: validating a POST body, and the receipt a message earns."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from .idempotency import fingerprint

MAX_ID_BYTES = 128
MAX_SEQ = 2**63 - 1  # a BIGINT, as the ledger reads every seq
MAX_TENANT_BYTES = 64


class BadMessage(Exception):
    """The body breaks the contract; ``status`` is 400 or 413, the text goes to the sender."""

    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.status = status


@dataclass(slots=True)
class Message:
    id: str
    stream: str
    seq: int
    callback_url: str
    accepted_ns: int  # wall clock, so consumer processes can measure latency
    body: bytes  # the request as received, kept for the dead-letter queue
    tenant: str | None = None  # contract v1.1; also in body
    fingerprint: str = ""  # of the body as sent (idempotency.fingerprint); API side only


def parse(body: bytes, payload_limit: int) -> Message:
    """The message in ``body``, or BadMessage."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadMessage("body is not valid JSON") from None
    return from_doc(doc, payload_limit, body)


def from_doc(doc: object, payload_limit: int, body: bytes | None = None) -> Message:
    """The message ``doc`` (decoded JSON, e.g. one of a batch), or BadMessage; ``body`` is
    its encoding as received (default: orjson's)."""
    if not isinstance(doc, dict):
        raise BadMessage("body must be a JSON object")
    try:
        msg_id, stream, seq, payload, url = (
            doc["id"],
            doc["stream"],
            doc["seq"],
            doc["payload"],
            doc["callback_url"],
        )
    except KeyError as missing:
        raise BadMessage(f"missing field {missing.args[0]}") from None
    if not isinstance(msg_id, str) or not 1 <= len(msg_id.encode()) <= MAX_ID_BYTES:
        raise BadMessage(f"id must be a string of 1 to {MAX_ID_BYTES} bytes")
    # The collector records receipts within these bounds only: a message outside them
    # could be accepted here and then never be counted delivered.
    if not isinstance(stream, str) or not 1 <= len(stream.encode()) <= MAX_ID_BYTES:
        raise BadMessage(f"stream must be a string of 1 to {MAX_ID_BYTES} bytes")
    # bool is an int subclass; a float such as 1.0 is not an integer seq either.
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise BadMessage("seq must be an integer from 0 to 2**63 - 1")
    if not isinstance(url, str):
        raise BadMessage("callback_url must be a string")
    tenant = doc.get("tenant")
    if "tenant" in doc and (
        not isinstance(tenant, str) or not 1 <= len(tenant.encode()) <= MAX_TENANT_BYTES
    ):
        raise BadMessage(f"tenant must be a string of 1 to {MAX_TENANT_BYTES} bytes")
    if len(orjson.dumps(payload)) > payload_limit:
        raise BadMessage(f"payload is over {payload_limit} bytes", status=413)
    if body is None:
        body = orjson.dumps(doc)
    return Message(msg_id, stream, seq, url, time.time_ns(), body, tenant, fingerprint(doc))


def rfc3339(ns: int | None = None) -> str:
    """UTC time with milliseconds, ``Z`` suffix."""
    ns = time.time_ns() if ns is None else ns
    stamp = datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def content(msg: Message) -> dict[str, Any]:
    """The message as sent (its body decoded); empty when the body is not a JSON object."""
    try:
        doc = orjson.loads(msg.body)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def receipt(
    msg: Message, status: str, at: str, error: str | None = None, digest: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": msg.id,
        "stream": msg.stream,
        "seq": msg.seq,
        "status": status,
        "delivered_at": at,
    }
    if error is not None:
        out["error"] = error
    if digest is not None:
        out["digest"] = digest
    return out
