"""Idempotent resend (contract v1.1): a share of accepted messages is sent again on
purpose, with the identical body (``resend_share``) and with a changed body
(``conflict_share``). An identical resend must be answered 202 and add no delivery (its
second receipt would be a duplicate); a changed body must be answered 409. The result
reports ``resent`` and ``conflicts`` in its counts. The reference target's knobs
``--fault-redeliver-resend F`` and ``--fault-accept-changed F`` break each promise, the
proof the checks can fail."""

from __future__ import annotations

from contextlib import ExitStack

from pydantic import Field

from deliverydags.formats.send_records import read_resends
from deliverydags.run.checks import Check
from deliverydags.run.result import RunResult
from deliverydags.run.scenario import CheckSpec, Environment, LoadConfig, Scenario
from deliverydags.run.settings import ConfigError, Gates

CHECKS = (
    CheckSpec("zero_loss", "No accepted message lost."),
    CheckSpec("resends_sent", "The run resent messages (identical and changed) at all."),
    CheckSpec("resends_add_no_delivery", "No duplicate receipt: identical resends delivered once."),
    CheckSpec("changed_bodies_409", "Every resend with a changed body answered 409."),
)


class IdempotencyConfig(LoadConfig):
    resend_share: float = Field(0.05, description="Accepted messages resent, identical body.")
    conflict_share: float = Field(0.02, description="Accepted messages resent, changed body.")


def _setup(config: IdempotencyConfig, env: Environment, stack: ExitStack):
    shares = (config.resend_share, config.conflict_share)
    if any(not 0 <= s <= 1 for s in shares) or sum(shares) > 1 or sum(shares) == 0:
        raise ConfigError(
            "resend_share and conflict_share must be shares (0 to 1) adding up to (0, 1], "
            f"not {config.resend_share:g} and {config.conflict_share:g}"
        )
    settings = config.settings(
        env,
        gates=Gates(max_error_rate=0.99),  # 409s are the point; loss is still a gate
        k6_env=(
            ("DD_RESEND_SHARE", f"{config.resend_share:g}"),
            ("DD_CONFLICT_SHARE", f"{config.conflict_share:g}"),
        ),
    )
    return settings, []


def _finish(result: RunResult, config: IdempotencyConfig, env: Environment) -> RunResult:
    resends = list(read_resends(env.run_dir))
    changed = [r for r in resends if r.kind == "changed"]
    answered_409 = sum(r.status == 409 for r in changed)
    duplicates = result.counts["duplicates"]
    return result.with_sections(
        idempotency={
            "resent_same": len(resends) - len(changed),
            "resent_changed": len(changed),
            "changed_answered_409": answered_409,
        }
    ).with_checks(
        Check("resends_sent", bool(changed) and len(resends) > len(changed), len(resends), "> 0"),
        Check("resends_add_no_delivery", duplicates == 0, duplicates, 0),
        Check("changed_bodies_409", answered_409 == len(changed), answered_409, len(changed)),
    )


SCENARIO = Scenario(
    name="idempotency",
    description="Messages resent on purpose: identical resends add no delivery, changed "
    "bodies are answered 409.",
    config=IdempotencyConfig,
    checks=CHECKS,
    setup=_setup,
    finish=_finish,
    figures=("idempotency",),
)
