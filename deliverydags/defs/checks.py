"""Checks (``deliverydags.run.checks.Check``) as Dagster asset check results: the one
place a check's figures become metadata."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

from deliverydags.run.checks import Check


def metadata_value(value: object) -> object:
    """A figure as metadata: numbers and text stay as they are, lists and dicts JSON,
    nothing (None) a null metadata value."""
    if value is None:
        return dg.MetadataValue.null()
    if isinstance(value, list | dict):
        return dg.MetadataValue.json(value)
    return value


def check_result(check: Check | dict, check_name: str | None = None) -> dg.AssetCheckResult:
    """``check`` (or its result-JSON "gates" entry) as the asset check ``check_name``
    (the check's own name by default)."""
    if isinstance(check, dict):
        check = Check.from_json(check)
    return dg.AssetCheckResult(
        check_name=check_name or check.name,
        passed=check.passed,
        metadata={"observed": metadata_value(check.observed), "limit": metadata_value(check.limit)},
    )


def check_results(
    checks: Sequence[Check], names: Iterable[str], *, missing: str, missing_limit: str = "n/a"
) -> list[dg.AssetCheckResult]:
    """One asset check result per name, from the run's check of that name (a hook's
    wins a name clash: it comes later); a check the run did not produce fails, ``missing``
    saying why."""
    by_name = {c.name: c for c in checks}
    return [
        check_result(by_name.get(name) or Check(name, False, missing, missing_limit), name)
        for name in names
    ]
