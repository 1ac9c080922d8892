"""Tenant isolation (contract v1.1 tenants): several tenants send at once, each with its
own token and its own callback (the collector's ``/v1/receipts/<tenant>``), and a share
of messages goes out with another tenant's token on purpose. Checks: zero leaked receipts
(a tenant's receipt at another tenant's callback) and every cross-tenant send answered
403, none of the others. Tenants and tokens come from ``DELIVERYDAGS_TENANT_TOKENS``
(``tenant:token,...``); with no target URL the reference target is started with the same
pairs (``tenants`` fresh ones when the variable is unset). The reference target's
``--fault-leak F`` sends receipts to another tenant's callback."""

from __future__ import annotations

from contextlib import ExitStack

from pydantic import Field

from deliverydags.formats.send_records import read_sends
from deliverydags.run.checks import Check
from deliverydags.run.result import RunResult
from deliverydags.run.scenario import CheckSpec, Environment, LoadConfig, Scenario
from deliverydags.run.settings import ConfigError, Gates

CHECKS = (
    CheckSpec("zero_loss", "No accepted message lost."),
    CheckSpec("zero_leaked", "No receipt of one tenant's message at another tenant's callback."),
    CheckSpec("cross_tenant_403", "Every send with another tenant's token answered 403."),
)


class TenantConfig(LoadConfig):
    tenants: int = Field(3, description="Tenants the reference target gets when none are set.")
    cross_tenant_share: float = Field(0.02, description="Sends with another tenant's token.")


def _setup(config: TenantConfig, env: Environment, stack: ExitStack):
    if config.tenants < 2 or not 0 < config.cross_tenant_share < 1:
        raise ConfigError(
            "tenant_isolation needs at least 2 tenants and a cross_tenant_share in (0, 1), "
            f"not {config.tenants} and {config.cross_tenant_share:g}"
        )
    settings = config.settings(
        env,
        gates=Gates(max_error_rate=0.99),  # the 403s are the point; loss is still a gate
        tenants=config.tenants,
        k6_env=(("DD_CROSS_TENANT_SHARE", f"{config.cross_tenant_share:g}"),),
    )
    return settings, []


def _finish(result: RunResult, config: TenantConfig, env: Environment) -> RunResult:
    sends = list(read_sends(env.run_dir))
    cross = [s for s in sends if s.cross_tenant]
    refused = sum(s.status == 403 for s in cross)
    stray = sum(s.status == 403 for s in sends if not s.cross_tenant)
    leaked = result.counts.get("leaked")  # None: the run had no tenants to measure
    return result.with_sections(
        tenants={
            "tenants": sorted({s.tenant for s in sends if s.tenant}),
            "cross_tenant_sends": len(cross),
            "cross_tenant_403": refused,
            "own_tenant_403": stray,
        }
    ).with_checks(
        Check("zero_leaked", leaked == 0, leaked, 0),
        Check(
            "cross_tenant_403",
            bool(cross) and refused == len(cross) and stray == 0,
            {"cross": len(cross), "answered_403": refused, "own_answered_403": stray},
            "every cross-tenant send 403, no other",
        ),
    )


SCENARIO = Scenario(
    name="tenant_isolation",
    description="Several tenants at once: zero leaked receipts, every cross-tenant send 403.",
    config=TenantConfig,
    checks=CHECKS,
    setup=_setup,
    finish=_finish,
    figures=("tenants",),
)
