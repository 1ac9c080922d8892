"""Receipt signatures (contract v1): ``X-Signature: t=<unix seconds>,v1=<hex>``.

``hex = HMAC-SHA256(secret, "<t>." + raw body)``. The target signs, the collector verifies.
Only the exact form is accepted (``t`` 1 to 12 ASCII digits, ``v1`` 64 hex digits,
nothing else, no spaces): whatever else a client sends is a bad signature, never an
exception. ``parse`` needs no body, so the collector refuses a bad header before it
reads one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

HEADER = "X-Signature"
TOLERANCE_S = 300
# The collector answers 413 to a receipt POST whose body is over this; the reference
# target splits its batches to stay under it. 1 MiB is ~5,000 receipts with 128-byte ids.
MAX_BODY_BYTES = 1024 * 1024

# [0-9], not \d: \d also matches non-ASCII digits. 12 digits covers any real clock and
# keeps int() far from Python's digit limit.
_FORM = re.compile(r"t=([0-9]{1,12}),v1=([0-9a-fA-F]{64})")


def sign(secret: bytes, body: bytes, t: int | None = None) -> str:
    """Return the X-Signature header value for ``body``."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret, b"%d." % t + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def parse(header: str | None, now: float | None = None) -> tuple[int, str] | None:
    """``(t, hex)`` when ``header`` has the exact form and ``t`` is within the tolerance."""
    match = _FORM.fullmatch(header) if header else None
    if match is None:
        return None
    t = int(match[1])
    now = time.time() if now is None else now
    return (t, match[2].lower()) if abs(now - t) <= TOLERANCE_S else None


def matches(secret: bytes, signature: tuple[int, str], body: bytes) -> bool:
    """True when ``signature`` (from ``parse``) is the HMAC of ``body``."""
    t, given = signature
    expected = hmac.new(secret, b"%d." % t + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def verify(secret: bytes, header: str | None, body: bytes, now: float | None = None) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within the tolerance."""
    signature = parse(header, now)
    return signature is not None and matches(secret, signature, body)
