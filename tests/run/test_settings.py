"""Run settings resolve the bundled k6 scripts (package data) and refuse bad values."""

import pytest

from deliverydags.run.settings import ConfigError, RunSettings


def test_the_bundled_scenario_script_is_found() -> None:
    assert RunSettings(scenario="message_soak").validate().script_path().is_file()


def test_an_unknown_scenario_is_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown scenario 'nope'"):
        RunSettings(scenario="nope").validate()
