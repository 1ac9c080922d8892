"""Slack through slack-sdk's WebClient: chat.postMessage with Block Kit, retries on
connection errors, broken answers (bad status line, truncated body), rate limits and
server errors (exponential backoff)."""

from __future__ import annotations

import http.client
import logging
import random
from typing import Any
from urllib.error import URLError

import dagster as dg
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter

from deliverydags.notify.http import NotificationError, where

_WHY = {
    "invalid_auth": "the token was refused",
    "not_authed": "no token was sent",
    "account_inactive": "the token's account is inactive",
    "token_revoked": "the token was revoked",
    "channel_not_found": "the channel does not exist or the app cannot see it",
    "not_in_channel": "the app is not in the channel",
}

# What slack-sdk retries by default, plus any broken HTTP answer (BadStatusLine ...).
_TRANSPORT_ERRORS = [URLError, ConnectionResetError, http.client.HTTPException]
# slack-sdk logs each retry with the request's full URL at INFO: keep only its warnings.
_SDK_LOG = logging.getLogger(__name__ + ".sdk")
_SDK_LOG.setLevel(logging.WARNING)


class _ProportionalJitter(Jitter):
    """Up to 100 % on top of the backoff (the SDK's default adds up to 1 s whatever the
    backoff, which would make a 0.1 s backoff a 1 s one)."""

    def recalculate(self, duration: float) -> float:
        return duration * (1.0 + random.random())


class SlackResource(dg.ConfigurableResource):
    """Posts to one channel. No ``token``: Slack is not configured and nothing is sent."""

    token: str | None = None
    channel: str = "#deliverydags"
    base_url: str = "https://slack.com/api/"
    max_retries: int = 3
    backoff_s: float = 1.0
    timeout_s: int = 10

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def client(self) -> WebClient:
        interval = BackoffRetryIntervalCalculator(self.backoff_s, _ProportionalJitter())
        return WebClient(
            token=self.token,
            base_url=self.base_url,
            timeout=self.timeout_s,
            logger=_SDK_LOG,
            retry_handlers=[
                ConnectionErrorRetryHandler(self.max_retries, interval, _TRANSPORT_ERRORS),
                RateLimitErrorRetryHandler(self.max_retries),
                ServerErrorRetryHandler(self.max_retries, interval),
            ],
        )

    def post(self, text: str, blocks: list[dict[str, Any]], client: WebClient | None = None) -> str:
        """Post one message; return its ``ts``. Raises NotificationError (one line)."""
        try:
            resp = (client or self.client()).chat_postMessage(
                channel=self.channel, text=text, blocks=blocks
            )
        except SlackApiError as exc:
            status = exc.response.status_code
            # Slack answers API errors (invalid_auth ...) with HTTP 200 and ok=false.
            data = exc.response.data if status == 200 else None
            error = data.get("error") if isinstance(data, dict) else None
            if not error:
                raise NotificationError(
                    f"Slack answered HTTP {status} to chat.postMessage at {where(self.base_url)}"
                ) from None
            why = _WHY.get(error, "")
            raise NotificationError(
                f"Slack refused chat.postMessage: {error}" + (f" ({why})" if why else "")
            ) from None
        except (SlackClientError, OSError) as exc:
            raise NotificationError(f"Slack unreachable at {where(self.base_url)}: {exc}") from None
        except http.client.HTTPException as exc:  # still broken after the retries
            raise NotificationError(
                f"Slack at {where(self.base_url)} sent a broken answer ({type(exc).__name__})"
            ) from None
        return str(resp.get("ts", ""))
