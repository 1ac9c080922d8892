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


def check_result(
    check: Check | dict, check_name: str | None = None, warning: bool = False
) -> dg.AssetCheckResult:
    """``check`` (or its result-JSON "gates" entry) as the asset check ``check_name``
    (the check's own name by default), of severity WARN when it is a ``warning``."""
    if isinstance(check, dict):
        check = Check.from_json(check)
    return dg.AssetCheckResult(
        check_name=check_name or check.name,
        passed=check.passed,
        severity=dg.AssetCheckSeverity.WARN if warning else dg.AssetCheckSeverity.ERROR,
        metadata={"observed": metadata_value(check.observed), "limit": metadata_value(check.limit)},
    )


def check_results(
    checks: Sequence[Check],
    names: Iterable[str],
    *,
    missing: str,
    warnings: Iterable[str] = (),
) -> list[dg.AssetCheckResult]:
    """One asset check result per name, from the run's check of that name (a hook's
    wins a name clash: it comes later); a check the run did not produce fails, ``missing``
    saying why. Those named in ``warnings`` are of severity WARN."""
    by_name = {c.name: c for c in checks}
    warn = set(warnings)
    return [
        check_result(by_name.get(name) or Check(name, False, missing, "n/a"), name, name in warn)
        for name in names
    ]
