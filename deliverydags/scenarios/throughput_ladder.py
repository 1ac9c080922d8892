"""The throughput suite: steps of rising arrival rate (100 to 10,000 msg/s by default),
each a run of its own with its own exact books. A step is *sustained* when at least
99.9% of accepted messages are delivered by the first deadline, p99 latency is under
500 ms, k6 dropped at most 1% of the planned messages and the p99 send delay (actual
minus intended send time) is under its limit. The result names the **knee**, the highest
sustained step, and per step the rate asked and achieved (messages, never requests),
delivery, latency, send delay and rejections by status. ``batch`` sends that many
messages per request (contract v1.1 batch send), so message rates can pass what one
machine's k6 does in requests. By default the ladder stops at the first step that is not
sustained."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from pydantic import Field

from deliverydags.run.checks import Check
from deliverydags.run.contract_parts import require_batch_send
from deliverydags.run.runner import Secrets, run_check
from deliverydags.run.scenario import CheckSpec, Environment, Scenario, ScenarioConfig
from deliverydags.run.settings import ConfigError, Gates

CHECKS = (
    CheckSpec("zero_loss", "No accepted message lost in any step."),
    CheckSpec("knee", "The highest sustained step is at least min_knee (msg/s)."),
    CheckSpec(
        "linear_scaling",
        "Achieved over asked rate, in every sustained step, at least the limit.",
        blocking=False,
    ),
)


class LadderConfig(ScenarioConfig):
    steps: list[float] = Field(
        default_factory=lambda: [100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0],
        description="Arrival rates, msg/s, rising.",
    )
    step_duration_s: float = Field(30.0, description="Seconds of load per step.")
    batch: int = Field(1, description="Messages per request (1: single sends; up to 500).")
    deadlines_s: list[float] = Field(
        default_factory=lambda: [10.0, 30.0], description="Receipt deadlines of each step."
    )
    payload_bytes: int = 256
    target_args: list[str] = Field(
        default_factory=list, description="Reference target only: extra flags."
    )
    stop_after_knee: bool = Field(True, description="Stop at the first step not sustained.")
    min_on_time: float = Field(0.999, description="Delivered by the first deadline / accepted.")
    max_p99_ms: float = Field(500.0, description="p99 latency of a sustained step.")
    max_dropped: float = Field(0.01, description="Share of planned messages k6 may drop.")
    max_send_delay_ms: float = Field(100.0, description="p99 send delay of a sustained step.")
    min_knee: float = Field(0.0, description="The knee check's limit (0: any sustained step).")
    min_scaling: float = Field(0.95, description="Achieved / asked of each sustained step.")


@dataclass(frozen=True)
class StepLimits:
    min_on_time: float
    max_p99_ms: float
    max_dropped: float
    max_send_delay_ms: float


def judge_step(doc: dict, asked: float, duration_s: float, batch: int, limits: StepLimits) -> dict:
    """One step's figures from its run's result, and whether it was sustained."""
    counts = doc["counts"]
    accepted = counts["accepted"]
    on_time = counts["delivered"] / accepted if accepted else None
    latency = doc.get("latency_ms") or {}
    delay = doc.get("send_delay_ms") or {}
    dropped = int((doc.get("k6") or {}).get("dropped_iterations", 0)) * batch
    planned = asked * duration_s
    p99, delay_p99 = latency.get("p99"), delay.get("p99")
    why_not = [
        reason
        for failed, reason in (
            (on_time is None or on_time < limits.min_on_time, "delivered on time"),
            (p99 is None or p99 >= limits.max_p99_ms, "p99 latency"),
            (dropped > limits.max_dropped * planned, "dropped by k6"),
            # Not measured (a script without intended send times) is not sustained either.
            (delay_p99 is None or delay_p99 >= limits.max_send_delay_ms, "send delay"),
        )
        if failed
    ]
    return {
        "rate": asked,
        "achieved": counts["attempted"] / duration_s,
        "sustained": not why_not,
        "not_sustained_by": why_not,
        "delivery_rate": doc.get("delivery_rate"),
        "on_time_rate": on_time,
        "latency_ms": latency,
        "send_delay_ms": delay or None,
        "dropped": dropped,
        "counts": counts,
        "rejected_by_status": doc.get("rejected_by_status") or {},
        "run_id": doc["run_id"],
    }


def _runs(
    config: LadderConfig,
    env: Environment,
    creds: Secrets,
    interrupts: tuple[type[BaseException], ...],
) -> dict:
    steps = config.steps
    if not steps or any(b <= a for a, b in pairwise(steps)):
        raise ConfigError(f"steps must be rising rates, e.g. 100,500,1000, not {steps}")
    if not 1 <= config.batch <= 500:
        raise ConfigError(f"batch must be 1 to 500 messages per request, not {config.batch}")
    if config.batch > 1 and env.target_url:
        require_batch_send(env.target_url, creds.target_token)
    limits = StepLimits(
        config.min_on_time, config.max_p99_ms, config.max_dropped, config.max_send_delay_ms
    )
    docs, judged = [], []
    for i, rate in enumerate(steps):
        env.log(
            f"ladder step {i + 1}/{len(steps)}: {rate:g} msg/s for {config.step_duration_s:g} s"
        )
        settings = env.settings(
            rate=rate,
            duration_s=config.step_duration_s,
            deadlines_s=tuple(config.deadlines_s),
            payload_bytes=config.payload_bytes,
            target_args=tuple(config.target_args),
            # Its own verdicts are the ladder's; a step's run only has to be measured.
            gates=Gates(max_failed=10**9, p95_latency_ms=1e9, max_error_rate=0.99),
            k6_env=(("DD_BATCH", str(config.batch)),),
        )
        doc = run_check(
            settings, creds, env.run_dir / f"step-{i + 1:02d}-{rate:g}", env.log,
            interrupts=interrupts,
        )  # fmt: skip
        docs.append(doc)
        if doc["status"] == "aborted":
            break
        judged.append(judge_step(doc, rate, config.step_duration_s, config.batch, limits))
        state = "sustained" if judged[-1]["sustained"] else "not sustained"
        env.log(f"ladder step {rate:g} msg/s: {state}")
        if config.stop_after_knee and not judged[-1]["sustained"]:
            break
    return _combined(config, env, docs, judged)


def _combined(config: LadderConfig, env: Environment, docs: list, judged: list) -> dict:
    """One contract result: the steps' books summed, the ladder's own checks."""
    counts: Counter = Counter()
    rejected: Counter = Counter()
    late: Counter = Counter()
    for doc in docs:
        counts.update(doc["counts"])
        rejected.update(doc.get("rejected_by_status") or {})
        late.update(doc.get("late_by_deadline") or {})
    sustained = [s for s in judged if s["sustained"]]
    knee = max((s["rate"] for s in sustained), default=None)
    scaling = min((s["achieved"] / s["rate"] for s in sustained), default=None)
    accepted = counts["accepted"]
    checks = [
        Check("zero_loss", counts["lost"] == 0, counts["lost"], 0),
        Check("knee", knee is not None and knee >= config.min_knee, knee, config.min_knee),
        Check(
            "linear_scaling",
            scaling is not None and scaling >= config.min_scaling,
            scaling,
            config.min_scaling,
        ),
    ]
    aborted = any(doc["status"] == "aborted" for doc in docs)
    at_knee = next((s for s in judged if s["rate"] == knee), judged[0] if judged else None)
    return {
        "scenario": "throughput_ladder",
        "target_url": docs[0]["target_url"],
        "started_at": docs[0]["started_at"],
        "finished_at": docs[-1]["finished_at"],
        "rate": max(s["rate"] for s in judged) if judged else config.steps[0],
        "duration_s": config.step_duration_s * len(docs),
        "deadlines_s": list(config.deadlines_s),
        "counts": dict(counts),
        "rejected_by_status": dict(rejected),
        "late_by_deadline": dict(late),
        "latency_ms": at_knee["latency_ms"] if at_knee else {},  # at the knee
        "delivery_rate": (counts["delivered"] + counts["late"]) / accepted if accepted else None,
        "gates": [c.to_json() for c in checks],
        "status": "aborted" if aborted else "failed",  # judged by run_scenario
        "run_id": env.run_id,
        "knee": knee,
        "linear_scaling": scaling,
        "batch": config.batch,
        "steps": judged,
        "samples": _samples(docs),
    }


def _samples(docs: list[dict]) -> dict[str, Any]:
    out: dict[str, list] = {}
    for doc in docs:
        for kind, ids in (doc.get("samples") or {}).items():
            out.setdefault(kind, []).extend(ids)
    return out


SCENARIO = Scenario(
    name="throughput_ladder",
    description="Rising arrival rates, each step with its own books: the knee (highest "
    "sustained msg/s), achieved vs asked, latency and send delay per step.",
    config=LadderConfig,
    checks=CHECKS,
    runs=_runs,
    figures=("knee", "linear_scaling", "steps"),
)
