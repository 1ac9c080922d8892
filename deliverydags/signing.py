"""Receipt signatures (contract v1): ``X-Signature: t=<unix seconds>,v1=<hex>``.

``hex = HMAC-SHA256(secret, "<t>." + raw body)``. The target signs, the collector verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Signature"
TOLERANCE_S = 300


def sign(secret: bytes, body: bytes, t: int | None = None) -> str:
    """Return the X-Signature header value for ``body``."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret, b"%d." % t + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: bytes, header: str | None, body: bytes, now: float | None = None) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within the tolerance."""
    if not header:
        return False
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - t) > TOLERANCE_S:
        return False
    expected = hmac.new(secret, b"%d." % t + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)
