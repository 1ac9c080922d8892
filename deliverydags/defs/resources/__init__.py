from deliverydags.defs.resources.k6 import K6Resource
from deliverydags.defs.resources.notify import (
    ActionWebhookResource,
    PagerDutyResource,
    SlackResource,
)
from deliverydags.defs.resources.prometheus import PrometheusResource
from deliverydags.defs.resources.results import ResultsStoreResource
from deliverydags.defs.resources.target import DeliveryTargetResource

__all__ = [
    "ActionWebhookResource",
    "DeliveryTargetResource",
    "K6Resource",
    "PagerDutyResource",
    "PrometheusResource",
    "ResultsStoreResource",
    "SlackResource",
]
