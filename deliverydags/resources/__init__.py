from deliverydags.resources.k6 import K6Resource
from deliverydags.resources.notify import (
    ActionWebhookResource,
    PagerDutyResource,
    SlackResource,
)
from deliverydags.resources.prometheus import PrometheusResource
from deliverydags.resources.results import ResultsStoreResource
from deliverydags.resources.target import DeliveryTargetResource

__all__ = [
    "ActionWebhookResource",
    "DeliveryTargetResource",
    "K6Resource",
    "PagerDutyResource",
    "PrometheusResource",
    "ResultsStoreResource",
    "SlackResource",
]
