"""JSON POST with retries and exponential backoff, for PagerDuty and the action webhook.

Retried: no connection, timeouts, a broken answer (bad status line, truncated body), 429
and 5xx (honouring Retry-After up to the backoff cap). Not retried: other 4xx, the request
itself is wrong. Every failure is one line naming only the URL's scheme and host: a
webhook's path or query string may hold its token.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_SLEEP_S = 30.0


class NotificationError(RuntimeError):
    """A notification or action call failed; ``str()`` is one line for the run log."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def where(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what error lines may say about an endpoint."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or '?'}://{host}" + (f":{parts.port}" if parts.port else "")


def _retry_after(exc: urllib.error.HTTPError, default: float) -> float:
    try:
        return min(float(exc.headers.get("Retry-After", default)), MAX_SLEEP_S)
    except (TypeError, ValueError):
        return default


def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 10.0,
    what: str = "POST",
) -> Reply:
    """POST ``body`` (JSON) to ``url``; retry transient failures ``retries`` times."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    last = ""
    for attempt in range(retries + 1):
        pause = min(backoff_s * 2**attempt, MAX_SLEEP_S)
        request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:
                return Reply(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = exc.read(300).decode("utf-8", "replace").strip().replace("\n", " ")
            except (OSError, http.client.HTTPException):  # the error's body broke off
                detail = ""
            last = f"HTTP {exc.code}" + (f" ({detail})" if detail else "")
            if exc.code != 429 and exc.code < 500:
                raise NotificationError(f"{what} to {where(url)} refused: {last}") from None
            pause = _retry_after(exc, pause) if exc.code == 429 else pause
        except (urllib.error.URLError, OSError) as exc:
            last = f"unreachable ({getattr(exc, 'reason', exc)})"
        except http.client.HTTPException as exc:  # BadStatusLine, IncompleteRead ...
            last = f"broken answer ({type(exc).__name__})"
        if attempt < retries:
            time.sleep(pause)
    raise NotificationError(f"{what} to {where(url)} failed after {retries + 1} tries: {last}")
