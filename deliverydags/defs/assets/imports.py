"""`imported_results`: recorded history (result files, k6 summaries) loaded into past
nights of the results store. Never runs k6: a past night's load cannot be re-run.

Backfill it over any range of nights: the single-run policy makes the whole range one
run that reads the folder once. Nights already stored are replaced, never doubled.
"""

from pathlib import Path

import dagster as dg

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import ResultsStoreResource
from deliverydags.history.imports import (
    HistoryImportError,
    expand,
    read_recorded,
    store_recorded,
    unique,
)
from deliverydags.review.tables import table

SHOWN = 50


class ImportConfig(dg.Config):
    folder: str = ""  # default: <data_dir>/import
    scenario: str = SOAK_SCENARIO  # the scenario k6 summaries are filed under


@dg.asset(
    partitions_def=nightly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="history",
    kinds={"duckdb"},
    description="Recorded results and k6 summaries imported into past nights (no k6 run).",
)
def imported_results(
    context: dg.AssetExecutionContext, config: ImportConfig, results: ResultsStoreResource
) -> dg.MaterializeResult:
    keys = list(context.partition_keys)
    first, last = keys[0], keys[-1]
    folder = Path(config.folder or Path(results.data_dir) / "import")
    try:
        records = [read_recorded(p, None, config.scenario) for p in expand([folder])]
        records = unique([r for r in records if first <= r.night <= last])
    except HistoryImportError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    store_recorded(results.store, records)
    found = {r.night for r in records}
    missing = [k for k in keys if k not in found]
    context.log.info(f"imported {len(records)} night(s) {first}..{last} from {folder}")
    rows = [(r.night, r.scenario, r.kind, r.night_from, r.path.name) for r in records[:SHOWN]]
    return dg.MaterializeResult(
        metadata={
            "imported": len(records),
            "nights_in_range": len(keys),
            "nights_without_file": len(missing),
            "range": f"{first} .. {last}",
            "folder": dg.MetadataValue.path(str(folder)),
            "missing_nights": ", ".join(missing[:SHOWN]) + (" …" if len(missing) > SHOWN else ""),
            "files": dg.MetadataValue.md(
                table(("night", "scenario", "kind", "dated by", "file"), rows)
                + (f"\n\n(first {SHOWN} of {len(records)})" if len(records) > SHOWN else "")
            ),
        }
    )
