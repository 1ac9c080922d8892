"""PagerDuty Events API v2: trigger an alert with a dedup key (PagerDuty folds repeats
of one key into one incident; deliverydags also never sends a key twice), and resolve it
with the same key."""

from __future__ import annotations

from typing import Any

import dagster as dg
import orjson

from deliverydags.notify.http import NotificationError, post_json, where

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutyResource(dg.ConfigurableResource):
    """No ``routing_key``: PagerDuty is not configured and nothing is sent."""

    routing_key: str | None = None
    url: str = EVENTS_URL
    source: str = "deliverydags"
    max_retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.routing_key)

    def trigger(
        self, dedup_key: str, summary: str, details: dict[str, Any], severity: str = "critical"
    ) -> dict[str, Any]:
        event = {
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": summary[:1024],  # PagerDuty's limit
                "source": self.source,
                "severity": severity,
                "component": "delivery",
                "custom_details": details,
            },
        }
        return self._send(event)

    def resolve(self, dedup_key: str) -> dict[str, Any]:
        """Resolve the incident a trigger with ``dedup_key`` opened."""
        event = {"routing_key": self.routing_key, "event_action": "resolve", "dedup_key": dedup_key}
        return self._send(event)

    def _send(self, event: dict[str, Any]) -> dict[str, Any]:
        reply = post_json(
            self.url,
            orjson.dumps(event),
            retries=self.max_retries,
            backoff_s=self.backoff_s,
            timeout_s=self.timeout_s,
            what="PagerDuty event",
        )
        try:
            return orjson.loads(reply.body) if reply.body else {}
        except orjson.JSONDecodeError:
            raise NotificationError(f"PagerDuty at {where(self.url)} answered non-JSON") from None
