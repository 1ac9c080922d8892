import dagster as dg

from deliverydags.prometheus import MemoryCheck, PrometheusHook
from deliverydags.prometheus.service_gates import ServiceGate


class PrometheusResource(dg.ConfigurableResource):
    """Where the service's own metrics are read. With no ``url`` each run starts a private
    Prometheus (the ``binary``, Debian's package by default) on a free loopback port,
    scraping the target every ``scrape_interval_s``; with ``url``, an existing Prometheus
    that scrapes the target itself, its series matched by ``selector``.
    ``remote_write``: k6 also pushes its own metrics there (experimental-prometheus-rw;
    an existing Prometheus needs --web.enable-remote-write-receiver)."""

    url: str | None = None
    selector: str | None = None
    metrics_url: str | None = None  # default: the target's URL + /metrics
    binary: str | None = None
    remote_write: bool = True
    scrape_interval_s: float = 1.0

    def hook(
        self,
        run_dir,
        run_id: str,
        memory_check: MemoryCheck | None = None,
        service_gates: tuple[ServiceGate, ...] = (),
    ) -> PrometheusHook:
        """A hook for one run; enter it (``with``) around run_check."""
        return PrometheusHook(
            run_dir / "prometheus",
            url=self.url,
            selector=self.selector,
            metrics_url=self.metrics_url,
            binary=self.binary,
            remote_write=self.remote_write,
            run_id=run_id,
            scrape_interval_s=self.scrape_interval_s,
            memory_check=memory_check,
            service_gates=service_gates,
        )
