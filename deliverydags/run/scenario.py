"""A scenario, declared once: its knobs with their defaults, its checks, and how its run is
set up (k6 script, target, hooks and faults) and finished.

From one declaration (a module in ``deliverydags/scenarios/``) come its Dagster asset
(``defs/assets/scenario.py``), its ``deliverydags run NAME`` command (``cli/run.py``) and
its entry in ``docs/scenarios.md``. ``run_scenario`` is the one code path both use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from deliverydags.run.hooks import RunHook
from deliverydags.run.result import RunResult
from deliverydags.run.runner import Log, Secrets, run_check
from deliverydags.run.settings import ConfigError, RunSettings

DELIVERY, CHAOS = "delivery", "chaos"  # the groups: the nightly soak job, the chaos job


class ScenarioConfig(BaseModel):
    """A scenario's knobs. Plain pydantic: the wiring mirrors it as a ``dg.Config`` (the
    launchpad's fields) and the CLI as options (``--duration`` for ``duration_s``: a
    trailing ``_s`` is the unit; ``Field(json_schema_extra={"flag": "--x"})`` renames)."""

    model_config = ConfigDict(extra="forbid")


class LoadConfig(ScenarioConfig):
    """The knobs of one steady load; a scenario subclasses it to change defaults or add
    its own."""

    rate: float = Field(50.0, description="Messages per second.")
    duration_s: float = Field(30.0, description="Seconds of load.")
    deadlines_s: list[float] = Field(
        default_factory=lambda: [10.0, 30.0, 60.0],
        description="Receipt deadlines in seconds, increasing.",
    )
    payload_bytes: int = Field(256, description="Bytes of payload per message.")
    target_args: list[str] = Field(
        default_factory=list, description="Reference target only: extra flags."
    )

    def settings(self, env: Environment, **more: Any) -> RunSettings:
        """The run's settings for ``env``: these knobs, then ``more`` (which win)."""
        load = {
            "rate": self.rate,
            "duration_s": self.duration_s,
            "deadlines_s": tuple(self.deadlines_s),
            "payload_bytes": self.payload_bytes,
            "target_args": tuple(self.target_args),
        }
        return env.settings(**{**load, **more})


@dataclass(frozen=True)
class CheckSpec:
    """One of the scenario's checks: the gate of that name in its result."""

    name: str
    description: str
    blocking: bool = True  # a failed blocking check fails the run and stops what follows
    warning: bool = False  # shown as a warning; never blocking, never the run's verdict

    def __post_init__(self) -> None:
        if self.warning and self.blocking:
            raise ValueError(f"check {self.name}: a warning cannot be blocking")


PrometheusFactory = Callable[..., AbstractContextManager[RunHook]]


@dataclass(frozen=True)
class Environment:
    """What the caller (the asset or the CLI) gives a scenario's run."""

    run_dir: Path
    run_id: str
    target_url: str | None  # None: the bundled reference target
    collector_addr: str
    collector_url: str | None
    redis_url: str | None
    k6_binary: str | None
    log: Log
    # A hook reading the service's metrics for this run (``memory_check=`` optional);
    # None when the caller has no Prometheus to offer.
    prometheus: PrometheusFactory | None = None

    def settings(self, **knobs: Any) -> RunSettings:
        """RunSettings for this environment, with the scenario's ``knobs`` (which may
        override it: a chaos run brings its own Redis)."""
        where = {
            "target_url": self.target_url,
            "collector_addr": self.collector_addr,
            "collector_url": self.collector_url,
            "redis_url": self.redis_url,
            "k6_binary": self.k6_binary,
        }
        return RunSettings(**{**where, **knobs})


# Builds the run: its settings and its hooks, whose cleanup goes on the ExitStack (it
# unwinds after the run, however it ended).
Setup = Callable[[Any, Environment, ExitStack], tuple[RunSettings, Sequence[RunHook]]]
# A scenario of several runs (the throughput ladder's steps) runs them itself and returns
# one contract result document.
Runs = Callable[[Any, Environment, Secrets, tuple[type[BaseException], ...]], dict]


@dataclass(frozen=True)
class Scenario:
    name: str  # the asset, the CLI's NAME, result["scenario"]
    description: str  # one line: the asset's description, the CLI's help, the docs
    config: type[ScenarioConfig]
    checks: tuple[CheckSpec, ...]
    setup: Setup | None = None  # one run; or
    runs: Runs | None = None  # several, combined into one result
    group: str = DELIVERY
    kinds: frozenset[str] = frozenset({"k6"})
    # Faults go into the reference target's own processes: no run against a target URL.
    reference_target_only: bool = False
    # "optional": the service's metrics are read when the caller offers a Prometheus
    # (the asset always does; the CLI when DELIVERYDAGS_PROMETHEUS_URL is set).
    prometheus: Literal["unused", "optional", "required"] = "unused"
    cli_required: tuple[str, ...] = ()  # knobs the command line must be given
    figures: tuple[str, ...] = ()  # its own result sections the UI shows (the ladder's knee)
    # The scenario's own figures and checks from the run's result and files
    # (``with_sections``, ``with_checks``), e.g. chaos_memory's "chaos" section.
    finish: Callable[[RunResult, Any, Environment], RunResult] | None = None

    @property
    def check_names(self) -> list[str]:
        return [c.name for c in self.checks]

    def verdict(self, result: RunResult) -> str:
        """ "passed" when every check the run produced held and every blocking check was
        produced; the scenario's checks are its verdict, so a fault's cost in latency or
        errors fails only the checks that judge it."""
        if result.status == "aborted":
            return "aborted"
        judged = [c for c in self.checks if not c.warning]
        found = {c.name: result.check(c.name) for c in judged}
        produced = [check for check in found.values() if check is not None]
        complete = all(found[c.name] is not None for c in judged if c.blocking)
        held = bool(produced) and all(check.passed for check in produced)
        return "passed" if complete and held else "failed"


def missing_reason(result: RunResult) -> str:
    """Why a check's gate is not in the result: the first hook error, if any."""
    for hook in ("prometheus", "chaos"):
        error = result.section(hook).get("error")
        if error:
            return str(error)
    return "not evaluated"


def run_scenario(
    scenario: Scenario,
    config: ScenarioConfig,
    env: Environment,
    creds: Secrets,
    *,
    interrupts: tuple[type[BaseException], ...] = (KeyboardInterrupt,),
) -> RunResult:
    """Set up ``scenario`` with ``config``, run it (``run_check``), finish and judge its
    result, written to ``env.run_dir/result.json``. Raises as run_check does."""
    if scenario.reference_target_only and env.target_url:
        raise ConfigError(
            f"{scenario.name} injects faults into the reference target's own processes; "
            "it cannot run against a target URL (unset it for this scenario)"
        )
    if scenario.prometheus == "unused" or (
        scenario.prometheus == "optional" and env.prometheus is None
    ):
        env = replace(env, prometheus=None)
    elif env.prometheus is None:
        raise ConfigError(f"{scenario.name} reads the service's metrics: it needs a Prometheus")
    script = None
    if scenario.runs is not None:
        doc = scenario.runs(config, env, creds, interrupts)
    else:
        assert scenario.setup is not None, f"{scenario.name} declares neither setup nor runs"
        with ExitStack() as stack:
            settings, hooks = scenario.setup(config, env, stack)
            doc = run_check(
                settings, creds, env.run_dir, env.log, interrupts=interrupts, hooks=hooks
            )
        script = settings.scenario
    result = RunResult.from_json(doc)
    if result.status == "aborted":  # written as it is: never judged, never stored
        return result
    result = replace(result, scenario=scenario.name)
    if script is not None and script != scenario.name:  # the k6 script that carried the load
        result = result.with_sections(script=script)
    if scenario.finish:
        result = scenario.finish(result, config, env)
    result = replace(result, status=scenario.verdict(result))
    result_json = orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2)
    (env.run_dir / "result.json").write_bytes(result_json)
    return result
