"""Phase gate decisions on scripted histories."""

from __future__ import annotations

from datetime import date, timedelta

from deliverydags.stats.phase_gate import (
    DELIVERY_ROLLOUT,
    SMS_ROLLOUT,
    decide,
)

START = date(2025, 3, 1)


def night(i: int) -> str:
    return (START + timedelta(days=i)).isoformat()


def rates(*values: float | None) -> dict[str, dict[str, float | None]]:
    return {night(i): {"delivery_rate": v} for i, v in enumerate(values) if v is not None}


def test_seven_good_nights_promote() -> None:
    d = decide(DELIVERY_ROLLOUT, night(6), rates(*[0.97] * 7))
    assert (d.decision, d.phase_before, d.phase_after) == ("promote", "95%", "98%")
    assert d.nights_counted == tuple(night(i) for i in range(6, -1, -1))
    assert d.reasons[-1] == "Promote from 95% to 98%."
    assert d.record() == {"night": night(6), "phase": "98%", "decision": "promote"}


def test_six_good_nights_hold() -> None:
    d = decide(DELIVERY_ROLLOUT, night(5), rates(*[0.97] * 6))
    assert d.decision == "hold" and len(d.nights_counted) == 6
    assert "6 of 7 nights in a row meet the gates of 95%." in d.reasons


def test_a_bad_night_resets_the_count() -> None:
    values = [0.97] * 4 + [0.94] + [0.97] * 6
    d = decide(DELIVERY_ROLLOUT, night(10), rates(*values))
    assert d.decision == "hold"
    assert d.nights_counted == tuple(night(i) for i in range(10, 4, -1))
    d = decide(DELIVERY_ROLLOUT, night(11), rates(*values, 0.97))
    assert d.decision == "promote"


def test_missing_night_resets_the_count() -> None:
    values = [0.97] * 3 + [None] + [0.97] * 7
    assert decide(DELIVERY_ROLLOUT, night(9), rates(*values)).decision == "hold"
    assert decide(DELIVERY_ROLLOUT, night(10), rates(*values)).decision == "promote"
    d = decide(DELIVERY_ROLLOUT, night(11), rates(*values))
    assert d.decision == "hold" and d.nights_counted == ()
    assert f"No result for {night(11)}: the count of good nights starts again." in d.reasons


def test_nights_before_the_phase_began_do_not_count() -> None:
    history = [{"night": night(6), "phase": "98%", "decision": "promote"}]
    values = rates(*[0.999] * 14)
    d = decide(DELIVERY_ROLLOUT, night(12), values, history)
    assert d.decision == "hold" and len(d.nights_counted) == 6
    d = decide(DELIVERY_ROLLOUT, night(13), values, history)
    assert (d.decision, d.phase_before, d.phase_after) == ("promote", "98%", "99%")


def test_collapse_rolls_back() -> None:
    history = [{"night": night(0), "phase": "99%", "decision": "promote"}]
    d = decide(DELIVERY_ROLLOUT, night(3), rates(0.995, 0.995, 0.995, 0.97), history)
    assert (d.decision, d.phase_before, d.phase_after) == ("rollback", "99%", "98%")
    assert d.reasons[0] == (
        f"{night(3)}: delivery_rate 0.97 is below 0.98, the previous phase's gate (98%)."
    )
    # Below the current threshold but above the previous one: hold, not rollback.
    d = decide(DELIVERY_ROLLOUT, night(3), rates(0.995, 0.995, 0.995, 0.985), history)
    assert d.decision == "hold"


def test_critical_alert_rolls_back_even_from_the_first_phase() -> None:
    d = decide(
        DELIVERY_ROLLOUT,
        night(6),
        rates(*[0.99] * 7),
        critical_alerts=["page: 14.4x burn over 1 h and 5 min"],
    )
    assert (d.decision, d.phase_after) == ("rollback", "95%")
    assert d.reasons[0] == "Critical alert: page: 14.4x burn over 1 h and 5 min."
    assert "Already at the first phase (95%): stop and investigate." in d.reasons


def test_open_regression_blocks_promotion() -> None:
    regression = {
        "metric": "latency_ms.p95",
        "detector": "change_point",
        "magnitude": 0.12,
        "night": night(2),
    }
    d = decide(DELIVERY_ROLLOUT, night(6), rates(*[0.97] * 7), open_regressions=[regression])
    assert d.decision == "hold" and len(d.nights_counted) == 7
    assert (
        f"Open regression: latency_ms.p95 (change_point, 12.0% worse, since {night(2)}); "
        "promotion waits."
    ) in d.reasons


def test_last_phase_holds() -> None:
    history = [{"night": night(0), "phase": "99.5%", "decision": "promote"}]
    d = decide(DELIVERY_ROLLOUT, night(8), rates(*[0.999] * 9), history)
    assert (d.decision, d.phase_after) == ("hold", "99.5%")
    assert d.reasons[-1] == "All gates held for 7 nights; 99.5% is the last phase."


def test_sms_rollout_gates_on_delivery_and_opt_out() -> None:
    names = [p.name for p in SMS_ROLLOUT.phases]
    assert names == ["internal", "beta", "10%", "25%", "50%", "100%"]
    assert SMS_ROLLOUT.phases[1].audience == "50 beta users"
    good = {night(i): {"delivery_rate": 0.97, "opt_out_rate": 0.01} for i in range(7)}
    assert decide(SMS_ROLLOUT, night(6), good).phase_after == "beta"
    opted = {**good, night(6): {"delivery_rate": 0.97, "opt_out_rate": 0.05}}
    d = decide(SMS_ROLLOUT, night(6), opted)
    assert d.decision == "hold" and f"{night(6)}: opt_out_rate 0.05 is not below 0.05." in d.reasons
    history = [{"night": night(0), "phase": "25%", "decision": "promote"}]
    d = decide(SMS_ROLLOUT, night(6), opted, history)
    assert (d.decision, d.phase_after) == ("rollback", "10%")
    missing = {night(6): {"delivery_rate": 0.97}}  # no opt-out value: not evidence of good
    assert decide(SMS_ROLLOUT, night(6), missing, history).decision == "rollback"
