"""The scenario catalog: one module per scenario, each declaring ``SCENARIO``
(a :class:`deliverydags.run.scenario.Scenario`); its docstring is its entry in
docs/scenarios.md. A module added here is found by name, with no edit anywhere else:
its asset, its ``deliverydags run NAME`` and its place in the nightly job follow."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from deliverydags.run.scenario import Scenario
from deliverydags.run.settings import ConfigError


@cache
def catalog() -> dict[str, Scenario]:
    """Every scenario by name, in module-name order."""
    found: dict[str, Scenario] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module.startswith("_"):
            continue
        scenario = importlib.import_module(f"{__name__}.{module}").SCENARIO
        if scenario.name != module:
            raise RuntimeError(f"scenarios/{module}.py declares {scenario.name!r}: name it so")
        found[module] = scenario
    return found


def get(name: str) -> Scenario:
    try:
        return catalog()[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}; the catalog has {', '.join(catalog())}"
        ) from None


def doc(name: str) -> str:
    """The scenario module's docstring."""
    return (importlib.import_module(f"{__name__}.{name}").__doc__ or "").strip()
