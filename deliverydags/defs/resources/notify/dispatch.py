"""Send what a night plans to send, each dedup key at most once, and say what happened.

A channel that fails stops being tried for the rest of the night's messages (its
outage is the news, not 5 retries per message); what was not sent stays unsent and
goes out on the next run. Keys are recorded only after a success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deliverydags.defs.resources.notify.pagerduty import PagerDutyResource
from deliverydags.defs.resources.notify.slack import SlackResource
from deliverydags.history.store import ResultsStore
from deliverydags.notify.http import NotificationError
from deliverydags.notify.messages import Outgoing

LABEL = {"slack": "Slack", "pagerduty": "PagerDuty"}


@dataclass
class Dispatched:
    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    not_configured: dict[str, int] = field(default_factory=dict)  # channel -> messages
    unsent: dict[str, int] = field(default_factory=dict)  # channel -> messages not sent
    errors: dict[str, str] = field(default_factory=dict)  # channel -> one line

    def failure_line(self) -> str | None:
        """One line when something could not be sent, else None."""
        if not self.errors:
            return None
        parts = [
            f"{LABEL[ch]} failed ({self.unsent[ch]} message(s) not sent): {err}"
            for ch, err in self.errors.items()
        ]
        return (
            "; ".join(parts) + ". Measurements and decisions are stored; only these "
            "notifications are missing and will be retried on the next run."
        )

    def status_lines(self) -> list[str]:
        lines = [
            f"{LABEL[ch]} not configured: {n} message(s) skipped."
            for ch, n in self.not_configured.items()
        ]
        lines.append(f"{len(self.sent)} sent, {len(self.already_sent)} already sent before.")
        return lines


def dispatch(
    outgoing: Sequence[Outgoing],
    store: ResultsStore,
    slack: SlackResource,
    pagerduty: PagerDutyResource,
) -> Dispatched:
    out = Dispatched()
    configured = {"slack": slack.configured, "pagerduty": pagerduty.configured}
    client = slack.client() if slack.configured else None
    for msg in outgoing:
        ch = msg.channel
        if store.notified(msg.key):
            out.already_sent.append(msg.key)
            continue
        if not configured[ch]:
            out.not_configured[ch] = out.not_configured.get(ch, 0) + 1
            continue
        if ch in out.errors:
            out.unsent[ch] += 1
            continue
        try:
            if ch == "slack":
                ref = slack.post(msg.text, msg.blocks, client)
            elif msg.action == "resolve":
                ref = str(pagerduty.resolve(msg.details["dedup_key"]).get("dedup_key", ""))
            else:
                ref = str(pagerduty.trigger(msg.key, msg.text, msg.details).get("dedup_key", ""))
        except NotificationError as exc:
            out.errors[ch] = str(exc)
            out.unsent[ch] = 1
            continue
        store.mark_notified(msg.key, ch, {"ref": ref, "text": msg.text})
        out.sent.append(msg.key)
    return out
