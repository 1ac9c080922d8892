"""The gate's action webhook: the decision POSTed as JSON, signed like receipts
(``X-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>." + body)>``, deliverydags.formats.signing)
so the receiver can tell it came from here; ``Idempotency-Key`` lets it drop repeats."""

from __future__ import annotations

from typing import Any

import dagster as dg
import orjson

from deliverydags import config
from deliverydags.formats.signing import HEADER, sign
from deliverydags.notify.http import NotificationError, Reply, post_json, where

SECRET_ENV = config.ACTION_SECRET


class ActionWebhookResource(dg.ConfigurableResource):
    """Signs action calls with ``secret`` (bound to EnvVar DELIVERYDAGS_ACTION_SECRET)."""

    secret: str | None = None
    max_retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    def call(self, url: str, payload: dict[str, Any], idempotency_key: str) -> Reply:
        if not self.secret:
            raise NotificationError(
                f"action webhook {where(url)} not called: set {SECRET_ENV} "
                "(calls are always signed)"
            )
        body = orjson.dumps(payload)
        headers = {HEADER: sign(self.secret.encode(), body), "Idempotency-Key": idempotency_key}
        return post_json(
            url,
            body,
            headers,
            retries=self.max_retries,
            backoff_s=self.backoff_s,
            timeout_s=self.timeout_s,
            what="action webhook",
        )
