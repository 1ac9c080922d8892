"""Soak → chaos → Slack through the code location's own jobs and sensor: a real
``nightly_chaos`` run (a consumer SIGKILLed for real), ``notify_after_chaos`` evaluated
against the instance that holds it, then the job it requests posts the chaos figures."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from deliverydags.defs.assets.catalog import SCENARIO_ASSETS
from deliverydags.defs.assets.notifications import nightly_notifications
from deliverydags.defs.jobs.chaos import chaos_notifications_job, nightly_chaos_job
from deliverydags.defs.jobs.sensors import notify_after_chaos
from deliverydags.defs.resources import PrometheusResource
from tests.support.chaos import BASE, TARGET
from tests.support.history import night, resources, result_doc, seed
from tests.support.notify import fake, posts, slack  # noqa: F401 (fixture)

chaos_consumer_kill = SCENARIO_ASSETS["chaos_consumer_kill"]

pytestmark = pytest.mark.integration


def test_a_finished_chaos_run_sends_its_figures_to_slack_once(tmp_path: Path, fake) -> None:  # noqa: F811
    n = night(6)
    seed(tmp_path, [result_doc(night(i)) for i in range(7)])
    defs = dg.Definitions(
        assets=[chaos_consumer_kill, nightly_notifications],
        jobs=[nightly_chaos_job, chaos_notifications_job],
        sensors=[notify_after_chaos],
        resources=resources(tmp_path, slack=slack(fake.url), prometheus=PrometheusResource()),
    )
    with dg.instance_for_test() as instance:
        start = notify_after_chaos.evaluate_tick(
            dg.build_sensor_context(instance=instance, definitions=defs)
        )
        assert not start.run_requests and start.cursor  # the first tick only starts watching
        notify = defs.resolve_job_def("chaos_notifications")
        # As in nightly_soak: the night's summary goes out before its chaos job runs.
        assert notify.execute_in_process(instance=instance, partition_key=n).success
        chaos = defs.resolve_job_def("nightly_chaos").execute_in_process(
            instance=instance,
            partition_key=n,
            run_config={
                "ops": {"chaos_consumer_kill": {"config": {**BASE, "target_args": TARGET}}}
            },
        )
        assert chaos.success
        tick = notify_after_chaos.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=start.cursor, definitions=defs)
        )
        (request,) = tick.run_requests
        assert request.partition_key == n and request.run_key == f"notify:{chaos.run_id}"
        again = notify_after_chaos.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=tick.cursor, definitions=defs)
        )
        assert not again.run_requests  # each chaos run is notified once
        assert notify.execute_in_process(instance=instance, partition_key=n).success
        assert notify.execute_in_process(instance=instance, partition_key=n).success
    summary, post = posts(fake)  # the second notifications run had nothing new to send
    assert summary["text"].startswith(f"message_soak {n}: ") and "chaos" not in summary["text"]
    assert post["text"] == f"chaos {n}: 1/1 passed"
    assert "`chaos_consumer_kill` (consumer_kill): PASSED — detect" in str(post["blocks"])
