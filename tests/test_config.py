"""deliverydags.config: an empty variable counts as unset, in the CLI and the wiring alike."""

from __future__ import annotations

import pytest

from deliverydags import config


def test_empty_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.DATA_DIR, "")
    assert config.env(config.DATA_DIR) is None and not config.is_set(config.DATA_DIR)
    assert str(config.data_dir()) == config.DEFAULT_DATA_DIR
    monkeypatch.delenv(config.DATA_DIR)
    assert config.env(config.DATA_DIR) is None
    monkeypatch.setenv(config.DATA_DIR, "/tmp/dd")
    assert config.env(config.DATA_DIR) == "/tmp/dd" and config.is_set(config.DATA_DIR)


def test_the_configured_critical_rate_reaches_the_paging_rule() -> None:
    from deliverydags.notify.messages import pages

    result = {"delivery_rate": 0.97, "counts": {"lost": 3}}
    assert pages("2026-01-01", "message_soak", result, []) == []  # default 95 %
    (page,) = pages("2026-01-01", "message_soak", result, [], critical_rate=0.98)
    assert page.channel == "pagerduty" and "below 98%" in page.text


def test_the_phase_gates_critical_rate_is_the_paging_rule() -> None:
    # One rule: the rate phase_gate was configured with (and rolled back on) pages too,
    # with no second setting to keep equal.
    from deliverydags.notify.messages import pages

    result = {"delivery_rate": 0.97, "counts": {"lost": 3}}
    gate = {"decision": "hold", "critical_delivery_rate": 0.98}
    (page,) = pages("2026-01-01", "message_soak", result, [gate])
    assert "below 98%" in page.text
    assert (
        pages("2026-01-01", "message_soak", result, [{**gate, "critical_delivery_rate": 0.9}]) == []
    )
