"""Notifications and actions: Slack, PagerDuty Events v2, the gate's signed webhook."""

from deliverydags.defs.resources.notify.pagerduty import PagerDutyResource
from deliverydags.defs.resources.notify.slack import SlackResource
from deliverydags.defs.resources.notify.webhook import ActionWebhookResource
from deliverydags.notify.http import NotificationError

__all__ = ["ActionWebhookResource", "NotificationError", "PagerDutyResource", "SlackResource"]
