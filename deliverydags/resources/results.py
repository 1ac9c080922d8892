import os
from pathlib import Path

import dagster as dg

from deliverydags.store import ResultsStore


def default_data_dir() -> str:
    return os.environ.get("DELIVERYDAGS_DATA_DIR", "data")


class ResultsStoreResource(dg.ConfigurableResource):
    """Where nightly results (DuckDB) and each run's files are kept."""

    data_dir: str = "data"

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(Path(self.data_dir) / "results.duckdb")

    def run_dir(self, night: str, run_id: str) -> Path:
        return Path(self.data_dir).resolve() / "runs" / night / run_id
