"""The one error type of the Prometheus package."""


class PrometheusError(RuntimeError):
    """Prometheus is missing, down, or refused a query; the message is one line."""
