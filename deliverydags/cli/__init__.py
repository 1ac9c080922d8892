"""The ``deliverydags`` command (``main``), a plain-Python caller of the run pipeline and the
history; it reaches the Dagster wiring only lazily, for ``deliverydags demo``."""

from deliverydags.cli.main import main

__all__ = ["main"]
