"""Hooks act alongside a run's load without the runner knowing what they do: a chaos
fault injected mid-load, a Prometheus that scrapes the target. Each may add k6 flags,
and its report (data plus gates) lands in the result under the hook's name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deliverydags.procs import Service
from deliverydags.run.settings import RunSettings


@dataclass
class RunContext:
    settings: RunSettings
    run_dir: Path
    target_url: str
    log: Callable[[str], None]
    target: Service | None = None  # the reference target, when this run started it
    load_started_ns: int | None = None
    load_ended_ns: int | None = None


@dataclass
class HookReport:
    data: dict = field(default_factory=dict)
    gates: list[dict] = field(default_factory=list)  # {name, passed, observed, limit}


class RunHook:
    """Base class: override what you need. ``before_load`` must not block (start a
    thread or timer); ``after_load`` runs while the target is still up; ``report`` runs
    after the ledger, with the result so far."""

    name = "hook"

    def k6_args(self) -> list[str]:
        return []

    def k6_env(self) -> dict[str, str]:
        return {}

    def before_load(self, ctx: RunContext) -> None:
        pass

    def after_load(self, ctx: RunContext) -> None:
        pass

    def report(self, ctx: RunContext, result: dict) -> HookReport:
        return HookReport()
