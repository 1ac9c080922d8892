"""The throughput ladder: a step is sustained only when every one of its criteria holds,
the knee is the highest sustained step, and each step keeps its own books."""

from __future__ import annotations

import orjson
import pytest

from deliverydags.run.settings import ConfigError
from deliverydags.scenarios.throughput_ladder import LadderConfig, StepLimits, _combined, judge_step

LIMITS = StepLimits(min_on_time=0.999, max_p99_ms=500.0, max_dropped=0.01, max_send_delay_ms=100)


def _doc(*, accepted: int = 1000, delivered: int = 1000, lost: int = 0, p99: float = 80.0,
         delay_p99: float | None = 5.0, dropped: int = 0) -> dict:  # fmt: skip
    return {
        "counts": {
            "attempted": accepted,
            "accepted": accepted,
            "delivered": delivered,
            "late": accepted - delivered - lost,
            "lost": lost,
        },
        "latency_ms": {"p50": 10.0, "p99": p99},
        "send_delay_ms": None if delay_p99 is None else {"p50": 1.0, "p99": delay_p99},
        "k6": {"dropped_iterations": dropped},
        "delivery_rate": (accepted - lost) / accepted,
        "rejected_by_status": {},
        "run_id": "r",
        "status": "passed",
        "target_url": "http://127.0.0.1:1",
        "started_at": "a",
        "finished_at": "b",
    }


def test_a_clean_step_is_sustained_and_its_achieved_rate_counts_messages() -> None:
    step = judge_step(_doc(), asked=100.0, duration_s=10.0, batch=10, limits=LIMITS)
    assert step["sustained"] and step["not_sustained_by"] == []
    assert step["achieved"] == 100.0  # 1000 messages in 10 s, whatever the batch
    assert step["on_time_rate"] == 1.0


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (_doc(delivered=998), "delivered on time"),  # 99.8% on time < 99.9%
        (_doc(p99=500.0), "p99 latency"),
        (_doc(dropped=2), "dropped by k6"),  # 2 requests x 10 messages > 1% of 1000
        (_doc(delay_p99=100.0), "send delay"),
        (_doc(delay_p99=None), "send delay"),  # not measured is not sustained
    ],
)
def test_each_criterion_alone_makes_a_step_not_sustained(doc: dict, reason: str) -> None:
    step = judge_step(doc, asked=100.0, duration_s=10.0, batch=10, limits=LIMITS)
    assert not step["sustained"] and step["not_sustained_by"] == [reason]


class _Env:
    run_id = "ladder-run"


def test_the_knee_is_the_highest_sustained_step_and_the_books_are_summed() -> None:
    config = LadderConfig(steps=[100.0, 200.0, 300.0], step_duration_s=10.0)
    docs = [_doc(), _doc(accepted=2000, delivered=2000), _doc(delivered=990, lost=3)]
    judged = [
        judge_step(d, rate, 10.0, 1, LIMITS) for d, rate in zip(docs, config.steps, strict=True)
    ]
    result = _combined(config, _Env(), docs, judged)  # type: ignore[arg-type]
    assert result["knee"] == 200.0
    assert [s["sustained"] for s in result["steps"]] == [True, True, False]
    assert result["counts"]["accepted"] == 4000 and result["counts"]["lost"] == 3
    gates = {g["name"]: g for g in result["gates"]}
    assert not gates["zero_loss"]["passed"] and gates["zero_loss"]["observed"] == 3
    assert gates["knee"]["passed"] and gates["knee"]["observed"] == 200.0
    assert gates["linear_scaling"]["observed"] == 1.0


def test_no_sustained_step_fails_the_knee() -> None:
    config = LadderConfig(steps=[100.0], step_duration_s=10.0)
    docs = [_doc(p99=900.0)]
    result = _combined(config, _Env(), docs, [judge_step(docs[0], 100.0, 10.0, 1, LIMITS)])  # type: ignore[arg-type]
    gates = {g["name"]: g for g in result["gates"]}
    assert result["knee"] is None and not gates["knee"]["passed"]
    assert not gates["linear_scaling"]["passed"]


def test_steps_must_rise() -> None:
    from deliverydags.scenarios.throughput_ladder import _runs

    with pytest.raises(ConfigError, match="steps must be rising"):
        _runs(LadderConfig(steps=[500.0, 100.0]), None, None, ())  # type: ignore[arg-type]


# End to end from a terminal, as the command line: two short steps against the
# reference target, with its delay fault off (sustained) and on (not).
LADDER = ["run", "throughput_ladder", "--steps", "20,50", "--step-duration", "3"]


@pytest.mark.integration
def test_the_ladder_from_a_terminal_names_its_knee(tmp_path) -> None:
    from tests.conftest import run_cli

    out = tmp_path / "ladder.json"
    proc = run_cli(*LADDER, "--batch", "5", "--work-dir", str(tmp_path), "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = orjson.loads(out.read_bytes())
    assert result["scenario"] == "throughput_ladder" and result["knee"] == 50.0
    assert [s["rate"] for s in result["steps"]] == [20.0, 50.0]
    for step in result["steps"]:
        assert set(step) >= {"rate", "achieved", "sustained", "delivery_rate", "latency_ms",
                             "send_delay_ms", "counts", "rejected_by_status"}  # fmt: skip
        assert step["sustained"] and step["counts"]["lost"] == 0
        assert step["send_delay_ms"]["p99"] is not None
        assert abs(step["achieved"] / step["rate"] - 1) < 0.2  # messages, batched by 5
    total = sum(s["counts"]["attempted"] for s in result["steps"])
    assert result["counts"]["attempted"] == total
    assert {g["name"]: g["passed"] for g in result["gates"]} == dict.fromkeys(
        ("zero_loss", "knee", "linear_scaling"), True
    )


@pytest.mark.integration
def test_a_step_that_delivers_late_is_not_sustained_and_fails_the_run(tmp_path) -> None:
    from tests.conftest import run_cli

    out = tmp_path / "ladder.json"
    late = [
        "--deadlines",
        "2,6",
        "--target-arg=--fault-delay=0.2",
        "--target-arg=--fault-delay-s=3",
    ]
    proc = run_cli(*LADDER, *late, "--work-dir", str(tmp_path), "--json", str(out))
    assert proc.returncode == 1, proc.stderr[-2000:]
    result = orjson.loads(out.read_bytes())
    (step,) = result["steps"]  # stops at the first step not sustained
    assert not step["sustained"] and "delivered on time" in step["not_sustained_by"]
    assert result["knee"] is None and result["status"] == "failed"


@pytest.mark.integration
def test_a_service_without_batch_send_is_one_line_at_setup(tmp_path) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from tests.conftest import run_cli

    class V1Only(BaseHTTPRequestHandler):  # a contract v1 service: no batch endpoint
        def do_POST(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), V1Only)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        env = {"DELIVERYDAGS_TARGET_TOKEN": "t", "DELIVERYDAGS_CALLBACK_SECRET": "s"}
        proc = run_cli(*LADDER, "--batch", "10", "--target-url", url, "--work-dir",
                       str(tmp_path), env=env)  # fmt: skip
    finally:
        server.shutdown()
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "has no POST /v1/messages:batch (contract v1.1 batch send" in line


@pytest.mark.integration
def test_the_ladder_asset_shows_its_knee_and_checks_in_the_ui(tmp_path) -> None:
    import dagster as dg

    from deliverydags.defs.assets.catalog import SCENARIO_ASSETS
    from tests.conftest import soak_resources

    config = {"steps": [20.0, 40.0], "step_duration_s": 3.0, "deadlines_s": [5.0, 10.0]}
    result = dg.materialize(
        [SCENARIO_ASSETS["throughput_ladder"]],
        partition_key="2026-12-01",
        run_config={"ops": {"throughput_ladder": {"config": config}}},
        resources=soak_resources(tmp_path),
        raise_on_error=False,
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("throughput_ladder")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["knee"] == 40.0 and [s["rate"] for s in meta["steps"]] == [20.0, 40.0]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"zero_loss": True, "knee": True, "linear_scaling": True}
