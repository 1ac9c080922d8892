"""A real single-run asset backfill of 365 past nights of `imported_results`: the backfill
daemon's own iteration on a temp instance launches it, from recorded files (no k6).

The timing budget (365 nights in <= 60 s) is measured by bench/bench_backfill.py, with the
production run launcher; this test launches runs in memory to stay fast.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import orjson
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
)
from dagster._core.test_utils import (
    InProcessTestWorkspaceLoadTarget,
    create_test_daemon_workspace_context,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.backfill import execute_backfill_iteration

from deliverydags.defs.assets.imports import imported_results
from deliverydags.defs.resources import ResultsStoreResource
from deliverydags.history.store import ResultsStore
from tests.conftest import ROOT
from tests.support.history import result_doc

pytestmark = pytest.mark.integration

FIRST = date(2025, 1, 1)
NIGHTS = [(FIRST + timedelta(days=i)).isoformat() for i in range(365)]

# The code location the backfill loads: the import asset on a store chosen by the env.
backfill_defs = dg.Definitions(
    assets=[imported_results],
    resources={"results": ResultsStoreResource(data_dir=dg.EnvVar("DELIVERYDAGS_DATA_DIR"))},
    executor=dg.in_process_executor,  # the step in the run's process: no second start-up
)


def recorded_files(folder: Path) -> None:
    """A year of recorded nights: result files, and k6 summaries for every 5th night."""
    folder.mkdir(parents=True)
    for i, n in enumerate(NIGHTS):
        if i % 5 == 4:
            summary = {"metrics": {"http_req_duration": {"med": 40.0, "p(95)": 120.0 + i % 7}}}
            (folder / f"k6-summary-{n}.json").write_bytes(orjson.dumps(summary))
        else:
            (folder / f"result-{n}.json").write_bytes(orjson.dumps(result_doc(n)))


def launch_and_finish(context, nights: list[str], timeout_s: float = 120) -> PartitionBackfill:
    """Request a backfill of ``imported_results`` over ``nights`` (as the UI does) and run
    the backfill daemon's iteration until it is done."""
    instance = context.instance
    backfill_id = uuid.uuid4().hex[:8]
    instance.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=context.create_request_context().asset_graph,
            partition_names=nights,
            asset_selection=[imported_results.key],
            backfill_timestamp=time.time(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title="import a year of recorded nights",
            description=None,
            run_config=None,
        )
    )
    logger = logging.getLogger("backfill-test")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        list(execute_backfill_iteration(context, logger))
        done = instance.get_backfill(backfill_id)
        if done.status != BulkActionStatus.REQUESTED:
            return done
    raise AssertionError(f"backfill {backfill_id} still running after {timeout_s} s")


@pytest.fixture
def daemon_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DELIVERYDAGS_DATA_DIR", str(tmp_path / "data"))
    overrides = {  # launch at once, in this process (no queue, no daemon process)
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "DefaultRunCoordinator",
        },
        "run_launcher": {
            "module": "dagster._core.launcher.sync_in_memory_run_launcher",
            "class": "SyncInMemoryRunLauncher",
        },
    }
    origin = LoadableTargetOrigin(
        python_file=__file__, attribute="backfill_defs", working_directory=str(ROOT)
    )
    target = InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    with (
        dg.instance_for_test(overrides=overrides) as instance,
        create_test_daemon_workspace_context(target, instance) as context,
    ):
        yield context


def test_a_year_of_nights_in_one_run_and_rerun_replaces(tmp_path: Path, daemon_context) -> None:
    recorded_files(tmp_path / "data" / "import")  # the asset's default folder
    instance = daemon_context.instance
    first = launch_and_finish(daemon_context, NIGHTS)
    assert first.status == BulkActionStatus.COMPLETED_SUCCESS
    runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: first.backfill_id}))
    assert len(runs) == 1  # single-run backfill policy: the whole range in one run
    (run,) = runs
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags[ASSET_PARTITION_RANGE_START_TAG] == NIGHTS[0]
    assert run.tags[ASSET_PARTITION_RANGE_END_TAG] == NIGHTS[-1]
    materialized = instance.get_materialized_partitions(imported_results.key)
    assert materialized == set(NIGHTS)

    store = ResultsStore(tmp_path / "data" / "results.duckdb")
    assert store.count() == 365
    stored = dict(store.nights())
    assert stored[NIGHTS[4]]["source"] == "k6_summary"  # dated by its file name
    assert stored[NIGHTS[0]]["run_id"] == f"run-{NIGHTS[0]}"

    # Re-running replaces the nights, never doubles them (the bench re-runs the whole
    # year; here a month of it, then only those nights are touched).
    before = {n: d.get("run_id") for n, d in store.nights()}
    (tmp_path / "data" / "import" / f"result-{NIGHTS[40]}.json").write_bytes(
        orjson.dumps(result_doc(NIGHTS[40], run_id="re-recorded"))
    )
    second = launch_and_finish(daemon_context, NIGHTS[30:60])
    assert second.status == BulkActionStatus.COMPLETED_SUCCESS
    after = {n: d.get("run_id") for n, d in store.nights()}
    assert store.count() == 365 and set(after) == set(NIGHTS)
    assert after[NIGHTS[40]] == "re-recorded"
    assert {n for n in NIGHTS if after[n] != before[n]} == {NIGHTS[40]}
    assert instance.get_materialized_partitions(imported_results.key) == set(NIGHTS)
