"""Gates on the service's own metrics: PromQL a user lists in a scenario's config, each
evaluated over the run's window against the run's Prometheus.

One gate is one line, ``NAME: QUERY OP LIMIT``, e.g. ``cache_hit_ratio:
sum(rate(cache_hits_total{target}[{window}])) / sum(rate(cache_lookups_total{target}[{window}]))
> 0.8``.
``{target}`` becomes the target's series selector (``{job="dd_target"}``), ``{window}``
the run's window as a PromQL duration; the query's value (summed over series) at the
window's end is compared with LIMIT by OP (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from deliverydags.run.checks import Check

_LINE = re.compile(
    r"^\s*(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<query>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<limit>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
PREFIX = "service:"  # a gate's check name in the result: service:<name>
SUMMARY = "service_gates"  # the one asset check over all of them


@dataclass(frozen=True)
class ServiceGate:
    name: str
    query: str
    op: str
    limit: float

    @classmethod
    def parse(cls, line: str) -> ServiceGate:
        m = _LINE.match(line)
        if m is None:
            raise ValueError(
                f"service gate {line!r} is not 'NAME: QUERY OP LIMIT', e.g. "
                "'dlq_empty: max(max_over_time(dlq_depth{target}[{window}])) == 0'"
            )
        return cls(m["name"], m["query"], m["op"], float(m["limit"]))

    def promql(self, selector: str, window: str) -> str:
        return self.query.replace("{target}", "{" + selector + "}").replace("{window}", window)

    def check(self, value: float | None) -> Check:
        """The gate as a check: no value (no series) fails, it is not a pass."""
        passed = value is not None and _OPS[self.op](value, self.limit)
        return Check(PREFIX + self.name, passed, value, f"{self.op} {self.limit:g}")


def summary(checks: list[Check]) -> Check:
    """All the service gates as one check (the asset's ``service_gates``)."""
    return Check(
        SUMMARY,
        bool(checks) and all(c.passed for c in checks),
        {c.name.removeprefix(PREFIX): c.observed for c in checks},
        {c.name.removeprefix(PREFIX): c.limit for c in checks},
    )
