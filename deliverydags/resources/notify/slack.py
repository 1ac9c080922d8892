"""Slack through slack-sdk's WebClient: chat.postMessage with Block Kit, retries on
connection errors, rate limits and server errors (exponential backoff)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

from deliverydags.resources.notify.http import NotificationError

_WHY = {
    "invalid_auth": "the token was refused",
    "not_authed": "no token was sent",
    "account_inactive": "the token's account is inactive",
    "token_revoked": "the token was revoked",
    "channel_not_found": "the channel does not exist or the app cannot see it",
    "not_in_channel": "the app is not in the channel",
}


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
        interval = BackoffRetryIntervalCalculator(backoff_factor=self.backoff_s)
        client = WebClient(token=self.token, base_url=self.base_url, timeout=self.timeout_s)
        client.retry_handlers = [
            ConnectionErrorRetryHandler(self.max_retries, interval),
            RateLimitErrorRetryHandler(self.max_retries),
            ServerErrorRetryHandler(self.max_retries, interval),
        ]
        return client

    def post(self, text: str, blocks: list[dict[str, Any]], client: WebClient | None = None) -> str:
        """Post one message; return its ``ts``. Raises NotificationError (one line)."""
        try:
            resp = (client or self.client()).chat_postMessage(
                channel=self.channel, text=text, blocks=blocks
            )
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            status = exc.response.status_code
            why = _WHY.get(error or "", "")
            said = error or f"HTTP {status}"
            raise NotificationError(
                f"Slack refused chat.postMessage: {said}" + (f" ({why})" if why else "")
            ) from None
        except (SlackClientError, OSError) as exc:
            raise NotificationError(f"Slack unreachable at {self.base_url}: {exc}") from None
        return str(resp.get("ts", ""))
