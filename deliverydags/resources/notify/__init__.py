"""Notifications and actions: Slack, PagerDuty Events v2, the gate's signed webhook."""

from deliverydags.resources.notify.http import NotificationError
from deliverydags.resources.notify.pagerduty import PagerDutyResource
from deliverydags.resources.notify.slack import SlackResource
from deliverydags.resources.notify.webhook import ActionWebhookResource

__all__ = ["ActionWebhookResource", "NotificationError", "PagerDutyResource", "SlackResource"]
