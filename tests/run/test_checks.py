"""Check records and the run's gates, on hand-made ledgers (no k6, no target)."""

from __future__ import annotations

import dataclasses

import pytest

from deliverydags.run.checks import Check, evaluate_checks, evaluate_gates
from deliverydags.run.settings import Gates


def _ledger(attempted: int = 1000, *, lost: int = 0, failed: int = 0, rejected: int = 0,
            indeterminate: int = 0, p95: float | None = 40.0) -> dict:  # fmt: skip
    return {
        "counts": {
            "attempted": attempted,
            "lost": lost,
            "failed": failed,
            "rejected": rejected,
            "indeterminate": indeterminate,
        },
        "latency_ms": {"p50": 10.0, "p95": p95},
    }


def _verdicts(ledger: dict, thresholds: list[dict] | None = None, crossed: bool = False) -> dict:
    return {
        g["name"]: g["passed"] for g in evaluate_gates(ledger, Gates(), thresholds or [], crossed)
    }


def test_check_round_trips_through_the_result_json() -> None:
    for check in (
        Check("p95_latency_ms", True, 42.5, 100.0),
        Check("p95_latency_ms", False, None, 100.0),
        Check("k6_thresholds", False, ["http_req_failed rate<0.01"], "none crossed"),
    ):
        d = check.to_json()
        assert d == {"name": check.name, "passed": check.passed,
                     "observed": check.observed, "limit": check.limit}  # fmt: skip
        assert list(d) == ["name", "passed", "observed", "limit"]  # the contract's keys
        assert Check.from_json(d) == check


def test_check_is_frozen_and_passed_is_a_bool() -> None:
    check = Check("messages_sent", 1, 1, "> 0")  # type: ignore[arg-type]
    assert check.passed is True and check.to_json()["passed"] is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.passed = False  # type: ignore[misc]


def test_a_clean_run_passes_every_gate() -> None:
    verdicts = _verdicts(_ledger())
    assert list(verdicts) == ["messages_sent", "zero_loss", "zero_failed", "p95_latency_ms",
                              "error_rate", "k6_thresholds"]  # fmt: skip
    assert all(verdicts.values()), verdicts


def test_gates_are_the_checks_as_json() -> None:
    ledger = _ledger(lost=1)
    checks = evaluate_checks(ledger, Gates(), [], False)
    assert [c.to_json() for c in checks] == evaluate_gates(ledger, Gates(), [], False)


def test_zero_sends_fails_rather_than_passing_vacuously() -> None:
    verdicts = _verdicts(_ledger(0, p95=None))
    assert not verdicts["messages_sent"]
    assert not verdicts["error_rate"]  # no rate without attempts
    assert not verdicts["p95_latency_ms"]


def test_no_p95_fails_the_latency_gate() -> None:
    gates = {g["name"]: g for g in evaluate_gates(_ledger(p95=None), Gates(), [], False)}
    assert gates["p95_latency_ms"] == {
        "name": "p95_latency_ms", "passed": False, "observed": None, "limit": 100.0,
    }  # fmt: skip
    assert gates["messages_sent"]["passed"]


def test_each_limit_fails_its_own_gate() -> None:
    assert not _verdicts(_ledger(lost=1))["zero_loss"]
    assert not _verdicts(_ledger(failed=1))["zero_failed"]
    assert not _verdicts(_ledger(p95=100.0))["p95_latency_ms"]  # the limit itself fails
    assert not _verdicts(_ledger(rejected=1, indeterminate=1))["error_rate"]  # 0.2% > 0.1%
    assert _verdicts(_ledger(rejected=1))["error_rate"] is False  # 0.1% is not < 0.1%


def test_crossed_k6_thresholds_are_named() -> None:
    thresholds = [
        {"metric": "http_req_failed", "threshold": "rate<0.01", "passed": False},
        {"metric": "http_req_duration", "threshold": "p(95)<100", "passed": True},
    ]
    (k6,) = [g for g in evaluate_gates(_ledger(), Gates(), thresholds, True)
             if g["name"] == "k6_thresholds"]  # fmt: skip
    assert not k6["passed"] and k6["observed"] == ["http_req_failed rate<0.01"]
    assert not _verdicts(_ledger(), [], crossed=True)["k6_thresholds"]  # k6 said so alone


SOAK = Gates(max_out_of_order=0, max_duplicate_rate=0.001, p50_latency_ms=50.0,
             p99_latency_ms=500.0)  # fmt: skip


def _soak_ledger(out_of_order: int, duplicates: int, p50: float, p99: float) -> dict:
    ledger = _ledger()
    ledger["counts"].update(accepted=1000, out_of_order=out_of_order, duplicates=duplicates)
    ledger["latency_ms"] = {"p50": p50, "p95": 40.0, "p99": p99}
    return ledger


def test_the_soaks_full_set_only_when_its_limits_are_set() -> None:
    clean = _soak_ledger(0, 1, 20.0, 90.0)
    assert [c.name for c in evaluate_checks(clean, Gates(), [], False)][-1] == "k6_thresholds"
    soak = {c.name: c for c in evaluate_checks(clean, SOAK, [], False)}
    assert [n for n in soak][-4:] == [
        "zero_out_of_order", "duplicate_rate", "p50_latency_ms", "p99_latency_ms"
    ]  # fmt: skip
    assert all(c.passed for c in soak.values())
    assert soak["duplicate_rate"].observed == 1 / 1000  # duplicates over accepted


@pytest.mark.parametrize(
    ("ledger", "failing"),
    [
        (_soak_ledger(1, 0, 20.0, 90.0), "zero_out_of_order"),
        (_soak_ledger(0, 2, 20.0, 90.0), "duplicate_rate"),  # 0.2% > 0.1%
        (_soak_ledger(0, 0, 50.0, 90.0), "p50_latency_ms"),  # not below the limit
        (_soak_ledger(0, 0, 20.0, 501.0), "p99_latency_ms"),
    ],
)
def test_each_soak_limit_fails_alone(ledger: dict, failing: str) -> None:
    verdicts = {c.name: c.passed for c in evaluate_checks(ledger, SOAK, [], False)}
    assert [n for n, passed in verdicts.items() if not passed] == [failing]
