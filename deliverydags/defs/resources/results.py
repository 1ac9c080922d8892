from pathlib import Path

import dagster as dg

from deliverydags.config import DEFAULT_DATA_DIR
from deliverydags.history.store import ResultsStore


class ResultsStoreResource(dg.ConfigurableResource):
    """Where nightly results (DuckDB) and each run's files are kept."""

    data_dir: str = DEFAULT_DATA_DIR

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(Path(self.data_dir) / "results.duckdb")

    def run_dir(self, night: str, run_id: str) -> Path:
        return Path(self.data_dir).resolve() / "runs" / night / run_id
