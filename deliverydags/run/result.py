"""A run's result as a typed record: the contract v1 fields the harness decides on, its
checks as :class:`Check`, and every other section (the ledger's extra figures, k6's, a
hook's such as ``prometheus`` or ``chaos``) kept as read. ``to_json`` is the contract's
document (``result.json``, ``--json``, the store), ``from_json`` reads one back."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from deliverydags.run.checks import Check

# The contract's own fields, typed below; every other top-level key is a section.
_TYPED = (
    "scenario",
    "target_url",
    "started_at",
    "finished_at",
    "rate",
    "duration_s",
    "deadlines_s",
    "counts",
    "latency_ms",
    "delivery_rate",
    "gates",
    "status",
    "run_id",
)


@dataclass(frozen=True)
class RunResult:
    scenario: str
    target_url: str
    started_at: str
    finished_at: str
    rate: float
    duration_s: float
    deadlines_s: tuple[float, ...]
    counts: dict[str, int]  # the contract's counts by name (v1.1 adds more)
    latency_ms: dict[str, float | None]
    delivery_rate: float | None
    checks: tuple[Check, ...]  # the result's "gates"
    status: str  # "passed", "failed" or "aborted"
    run_id: str
    sections: dict[str, Any] = field(default_factory=dict)  # everything else, in order

    @classmethod
    def from_json(cls, doc: dict) -> RunResult:
        return cls(
            scenario=doc["scenario"],
            target_url=doc["target_url"],
            started_at=doc["started_at"],
            finished_at=doc["finished_at"],
            rate=doc["rate"],
            duration_s=doc["duration_s"],
            deadlines_s=tuple(doc["deadlines_s"]),
            counts=dict(doc["counts"]),
            latency_ms=dict(doc.get("latency_ms") or {}),
            delivery_rate=doc.get("delivery_rate"),
            checks=tuple(Check.from_json(g) for g in doc["gates"]),
            status=doc["status"],
            run_id=doc["run_id"],
            sections={k: v for k, v in doc.items() if k not in _TYPED},
        )

    def to_json(self) -> dict[str, Any]:
        typed = {f.name: getattr(self, f.name) for f in fields(self) if f.name in _TYPED}
        return {
            **typed,
            "deadlines_s": list(self.deadlines_s),
            "gates": [c.to_json() for c in self.checks],
            **self.sections,
        }

    def section(self, name: str) -> dict:
        """A hook's (or k6's) section; empty when the run has none."""
        return self.sections.get(name) or {}

    def with_sections(self, **more: Any) -> RunResult:
        return replace(self, sections={**self.sections, **more})

    def with_checks(self, *more: Check) -> RunResult:
        return replace(self, checks=(*self.checks, *more))

    def check(self, name: str) -> Check | None:
        """The check of that name; a hook's comes later and wins a clash."""
        found = [c for c in self.checks if c.name == name]
        return found[-1] if found else None
