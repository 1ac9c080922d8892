import dagster as dg

from deliverydags.config import DEFAULT_COLLECTOR_ADDR
from deliverydags.run.runner import Secrets


class DeliveryTargetResource(dg.ConfigurableResource):
    """The service under test. With no ``url`` each run starts the bundled reference
    target (on ``redis_url`` if set, else its embedded queue) with fresh secrets.
    Secrets come from the environment through EnvVar (see definitions.py)."""

    url: str | None = None
    token: str | None = None
    callback_secret: str | None = None
    tenant_tokens: str | None = None  # "tenant:token,...", for tenant_isolation
    collector_addr: str = DEFAULT_COLLECTOR_ADDR
    collector_url: str | None = None
    redis_url: str | None = None

    def secrets(self) -> Secrets:
        return Secrets(self.token, self.callback_secret, self.tenant_tokens)
