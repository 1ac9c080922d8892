"""Every catalog scenario as its asset (see ``defs/assets/scenario.py``), by name."""

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.assets.scenario import scenario_asset
from deliverydags.scenarios import catalog

SCENARIO_ASSETS = {name: scenario_asset(scenario) for name, scenario in catalog().items()}
message_soak = SCENARIO_ASSETS[SOAK_SCENARIO]


def group_assets(group: str) -> list:
    """The assets of the scenarios in ``group`` (run_scenario's DELIVERY or CHAOS)."""
    return [SCENARIO_ASSETS[name] for name, s in catalog().items() if s.group == group]
