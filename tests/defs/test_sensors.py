"""The sensors, evaluated the way the daemon evaluates them (``evaluate_tick``) against a
real Dagster instance: soaks materialized for real (k6, reference target, ledger), and a
reference target really stopped and restarted with a new version."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from deliverydags import procs, target
from deliverydags.definitions import defs
from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.jobs.sensors import chaos_after_green_soak, deploy_change_sensor
from deliverydags.defs.resources import DeliveryTargetResource
from tests.conftest import soak_resources

pytestmark = pytest.mark.integration

NIGHT = "2026-11-21"
# A 3 s soak's p95 can meet the target's first slow second (241 ms seen in CI): the sensor,
# not latency, is under test here.
TINY = {"rate": 40.0, "duration_s": 3.0, "deadlines_s": [2.0, 4.0, 6.0], "p95_latency_ms": 1000.0}
CHECKS = sorted(key.name for key in message_soak.check_keys)  # the gates and any others
LOSSY = {**TINY, "target_args": ["--fault-drop", "0.2", "--fault-seed", "3"]}


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A persistent (SQLite) instance of the test's own. No compute-log capture: it swaps
    the process's stdout/stderr, which a run in a second thread should not do to pytest."""
    no_capture = {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
    with dg.instance_for_test(
        temp_dir=str(tmp_path), overrides={"compute_logs": no_capture}
    ) as inst:
        yield inst


def _tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None, **resources
):
    # The code location's definitions: partitioned run requests are checked against them.
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, definitions=defs
    )
    return sensor.evaluate_tick(context)


def _soak(instance: dg.DagsterInstance, tmp_path: Path, config: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [message_soak],
        partition_key=NIGHT,
        instance=instance,
        run_config={"ops": {"message_soak": {"config": config}}},
        resources=soak_resources(tmp_path),
        raise_on_error=False,
    )


def _assert_green(result: dg.ExecuteInProcessResult) -> None:
    """The soak itself passed every check but its warnings (else the test's premise, not
    the sensor, failed)."""
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    red = {
        name: {k: v.value for k, v in e.metadata.items()}
        for name, e in checks.items()
        if not e.passed and e.severity != dg.AssetCheckSeverity.WARN
    }
    assert sorted(checks) == CHECKS and not red, f"the soak was not green: {red}"


def _storage_id(instance: dg.DagsterInstance, run_id: str) -> int:
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=message_soak.key), limit=1
    ).records
    assert record.run_id == run_id
    return record.storage_id


def test_chaos_follows_each_green_soak_once(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    assert chaos_after_green_soak.job_name == "nightly_chaos"
    first = _tick(chaos_after_green_soak, instance, None)
    assert not first.run_requests and first.cursor == "0"  # starting point, nothing yet

    green = _soak(instance, tmp_path, TINY)
    _assert_green(green)
    tick = _tick(chaos_after_green_soak, instance, first.cursor)
    (request,) = tick.run_requests
    assert request.partition_key == NIGHT
    assert request.run_key == f"chaos:{NIGHT}:{green.run_id}"
    assert request.tags["deliverydags/soak_run"] == green.run_id
    assert tick.cursor == str(_storage_id(instance, green.run_id))

    # The same tick evaluated again (cursor not saved) asks for the same run key, which
    # the daemon launches once; with the saved cursor there is nothing new.
    again = _tick(chaos_after_green_soak, instance, first.cursor)
    assert [r.run_key for r in again.run_requests] == [request.run_key]
    idle = _tick(chaos_after_green_soak, instance, tick.cursor)
    assert not idle.run_requests and idle.cursor == tick.cursor
    assert "No new message_soak materialization" in idle.skip_message

    # A green re-run of the night is a new measurement: chaos again, under a new key.
    rerun = _soak(instance, tmp_path, TINY)
    _assert_green(rerun)
    (second,) = _tick(chaos_after_green_soak, instance, tick.cursor).run_requests
    assert second.run_key == f"chaos:{NIGHT}:{rerun.run_id}" != request.run_key


def test_no_chaos_after_a_failed_check(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    lossy = _soak(instance, tmp_path, LOSSY)  # the target really drops a fifth of them
    assert not lossy.success
    checks = {e.check_name: e for e in lossy.get_asset_check_evaluations()}
    assert checks["zero_loss"].passed is False
    lost = checks["zero_loss"].metadata["observed"].value
    assert lost > 0

    tick = _tick(chaos_after_green_soak, instance, "0")
    assert not tick.run_requests
    assert tick.cursor == str(_storage_id(instance, lossy.run_id))  # decided, not retried
    assert f"{NIGHT} (run {lossy.run_id})" in tick.skip_message
    assert f"zero_loss failed (observed {lost}, limit 0)" in tick.skip_message
    assert "messages_sent" not in tick.skip_message  # only what failed is named

    # A sensor turned on after this soak starts from it and launches nothing.
    fresh = _tick(chaos_after_green_soak, instance, None)
    assert not fresh.run_requests and fresh.cursor == tick.cursor


def test_a_materialization_without_check_results_launches_nothing(
    instance: dg.DagsterInstance,
) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization("message_soak", partition=NIGHT))
    tick = _tick(chaos_after_green_soak, instance, "0")
    assert not tick.run_requests and int(tick.cursor) > 0
    assert "zero_loss not evaluated" in tick.skip_message


def test_checks_still_being_written_are_waited_for(instance: dg.DagsterInstance) -> None:
    """The materialization lands before its checks; the sensor must not decide in between.
    A stand-in with the soak's key holds the run open between the two (the real asset's
    gap is milliseconds, too short to hit on purpose)."""
    release = threading.Event()

    @dg.asset(
        name="message_soak",
        partitions_def=message_soak.partitions_def,
        check_specs=[dg.AssetCheckSpec(name, asset="message_soak") for name in CHECKS],
    )
    def stand_in():
        yield dg.MaterializeResult()
        assert release.wait(60)
        for name in CHECKS:
            yield dg.AssetCheckResult(check_name=name, passed=True)

    results: list[dg.ExecuteInProcessResult | BaseException] = []

    def materialize() -> None:
        try:
            results.append(dg.materialize([stand_in], partition_key=NIGHT, instance=instance))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    run = threading.Thread(target=materialize)
    run.start()
    try:
        deadline = time.monotonic() + 60
        while not instance.fetch_materializations(message_soak.key, limit=1).records:
            assert time.monotonic() < deadline, "the stand-in never materialized"
            time.sleep(0.05)
        waiting = _tick(chaos_after_green_soak, instance, "0")
        assert not waiting.run_requests and waiting.cursor == "0"
        assert "waiting for its checks" in waiting.skip_message
    finally:
        release.set()
        run.join(120)
    assert not run.is_alive(), "the stand-in's run did not end within 120 s of its release"
    (result,) = results
    assert isinstance(result, dg.ExecuteInProcessResult), f"the run raised {result!r}"
    assert result.success
    (request,) = _tick(chaos_after_green_soak, instance, "0").run_requests
    assert request.run_key == f"chaos:{NIGHT}:{result.run_id}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _deploy(tmp_path: Path, port: int, version: str) -> procs.Service:
    """The reference target at a fixed address, reporting ``version`` on /healthz."""
    return target.start(
        out_dir=tmp_path / version,
        extra_args=["--listen", f"127.0.0.1:{port}", "--version-label", version],
        env={"DELIVERYDAGS_TARGET_TOKEN": "tok-sensor", "DELIVERYDAGS_CALLBACK_SECRET": "sec"},
    )


def test_deploy_sensor_launches_a_soak_when_the_version_changes(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    assert deploy_change_sensor.job_name == "nightly_soak"
    port = _free_port()
    res = {"target": DeliveryTargetResource(url=f"http://127.0.0.1:{port}")}
    with _deploy(tmp_path, port, "v1"):
        seen = _tick(deploy_change_sensor, instance, None, **res)
        assert not seen.run_requests and seen.cursor == "v1"  # first sight is not a deploy
        same = _tick(deploy_change_sensor, instance, seen.cursor, **res)
        assert not same.run_requests and same.cursor == "v1"

    # Between the two deploys nothing answers: one line, cursor unchanged.
    down = _tick(deploy_change_sensor, instance, "v1", **res)
    assert not down.run_requests and down.cursor == "v1"
    assert "unreachable" in down.skip_message and "\n" not in down.skip_message

    with _deploy(tmp_path, port, "v2"):
        changed = _tick(deploy_change_sensor, instance, "v1", **res)
        night = datetime.now(UTC).strftime("%Y-%m-%d")
        (request,) = changed.run_requests
        assert changed.cursor == "v2"
        assert request.partition_key == night
        assert request.run_key == f"deploy:{night}:v1->v2"
        assert request.tags["deliverydags/trigger"] == "deploy"
        assert request.tags["deliverydags/version"] == "v2"
        settled = _tick(deploy_change_sensor, instance, changed.cursor, **res)
        assert not settled.run_requests and settled.cursor == "v2"


def test_deploy_sensor_without_a_target_url_has_nothing_to_watch(
    instance: dg.DagsterInstance,
) -> None:
    tick = _tick(deploy_change_sensor, instance, None, target=DeliveryTargetResource())
    assert not tick.run_requests and tick.cursor is None
    assert "no deployment to watch" in tick.skip_message


def test_the_code_location_wires_the_target_url_into_the_deploy_sensor(tmp_path: Path) -> None:
    """`dagster sensor preview` on the real code location: DELIVERYDAGS_TARGET_URL reaches
    the sensor through the definitions' resource, as in `dagster dev`."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    dagster = Path(sys.executable).parent / "dagster"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DELIVERYDAGS_TARGET_URL": f"http://127.0.0.1:{port}",
    }

    def preview(*cursor: str) -> str:
        proc = subprocess.run(
            [str(dagster), "sensor", "preview", "deploy_change_sensor", "-m",
             "deliverydags.definitions", *cursor],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    with _deploy(tmp_path, port, "v7"):
        assert f"Watching http://127.0.0.1:{port}: version v7" in preview()
        assert "run requests for 1 run" in preview("--cursor", "v6")
