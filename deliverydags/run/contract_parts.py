"""Before a run that needs a contract v1.1 part: does a user's service have it? One line
naming the missing part, at setup, instead of a run that fails for the wrong reason."""

from __future__ import annotations

import urllib.error
import urllib.request

from deliverydags.run.settings import ConfigError


def require_batch_send(target_url: str, token: str | None, timeout_s: float = 5.0) -> None:
    """POST /v1/messages:batch with no messages must be refused as a bad batch (400), not
    as an unknown endpoint (404, 405)."""
    url = target_url.rstrip("/") + "/v1/messages:batch"
    request = urllib.request.Request(
        url,
        data=b'{"messages": []}',
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token or ''}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 405):
            raise ConfigError(
                f"the target at {target_url} has no POST /v1/messages:batch (contract v1.1 "
                f"batch send; it answered {exc.code}): run with batch 1"
            ) from None
    except (urllib.error.URLError, OSError):
        return  # unreachable: the run's own health check says so, in its words
