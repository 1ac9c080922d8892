"""Contract v1.1 payload digest: what a ``delivered`` receipt's ``digest`` is, and the
change the corrupt fault makes to a payload."""

from __future__ import annotations

import hashlib


def digest(payload: object) -> str | None:
    """Lowercase hex SHA-256 of a string payload's UTF-8 bytes; None for any other payload."""
    if not isinstance(payload, str):
        return None
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def corrupted(payload: str) -> str:
    """``payload`` with one bit of its first character flipped (an empty one gains one)."""
    if not payload:
        return "\x00"
    return chr(ord(payload[0]) ^ 1) + payload[1:]
