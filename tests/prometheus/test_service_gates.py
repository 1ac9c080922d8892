"""PromQL gates a user lists: parsed from one line, placed over the run's window and the
target's series, compared; no series is a failure, never a pass."""

from __future__ import annotations

import pytest

from deliverydags.prometheus.service_gates import ServiceGate, summary

CACHE = (
    "cache_hit_ratio: sum(rate(hits_total{target}[{window}])) / "
    "sum(rate(lookups_total{target}[{window}])) > 0.8"
)


def test_a_gate_is_name_query_op_limit() -> None:
    gate = ServiceGate.parse(CACHE)
    assert (gate.name, gate.op, gate.limit) == ("cache_hit_ratio", ">", 0.8)
    assert gate.promql('job="dd_target"', "95000ms") == (
        'sum(rate(hits_total{job="dd_target"}[95000ms])) / '
        'sum(rate(lookups_total{job="dd_target"}[95000ms]))'
    )
    # The last comparison is the gate's: PromQL's own operators stay in the query.
    inner = ServiceGate.parse("busy: max(up{target} == 1) <= 1e3")
    assert (inner.query, inner.op, inner.limit) == ("max(up{target} == 1)", "<=", 1000.0)


@pytest.mark.parametrize("line", ["no colon here > 1", "x: rate(y[1m])", "x: y > fast", ": y > 1"])
def test_a_malformed_gate_is_one_line(line: str) -> None:
    with pytest.raises(ValueError, match="is not 'NAME: QUERY OP LIMIT'"):
        ServiceGate.parse(line)


@pytest.mark.parametrize(
    ("op", "value", "passed"),
    [("<", 0.5, True), ("<", 1.0, False), ("<=", 1.0, True), (">", 1.0, False),
     (">=", 1.0, True), ("==", 0.0, False), ("!=", 0.0, True), ("<", None, False)],
)  # fmt: skip
def test_the_check_compares_and_no_data_fails(op: str, value: float | None, passed: bool) -> None:
    check = ServiceGate.parse(f"g: q {op} 1").check(value)
    assert (check.name, check.passed, check.observed) == ("service:g", passed, value)


def test_the_summary_holds_only_when_every_gate_does() -> None:
    ok = ServiceGate.parse("a: q < 1").check(0.0)
    bad = ServiceGate.parse("b: q > 1").check(0.0)
    assert summary([ok]).passed and not summary([ok, bad]).passed and not summary([]).passed
    assert summary([ok, bad]).observed == {"a": 0.0, "b": 0.0}
