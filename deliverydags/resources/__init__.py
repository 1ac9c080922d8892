from deliverydags.resources.k6 import K6Resource
from deliverydags.resources.results import ResultsStoreResource
from deliverydags.resources.target import DeliveryTargetResource

__all__ = ["DeliveryTargetResource", "K6Resource", "ResultsStoreResource"]
