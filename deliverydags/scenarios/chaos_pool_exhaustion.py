"""Lock the target's Postgres table mid-load so its connection pool is exhausted, for
real: the circuit breaker answers fast 503s instead of hanging, admission recovers
within the limit of the release, nothing accepted is lost (``breaker=False`` runs the
broken variant, the proof the checks can fail). Needs Postgres. The fault is
:mod:`deliverydags.chaos.pool_exhaustion`."""

from __future__ import annotations

import os
import secrets

from deliverydags.chaos.pool_exhaustion import PoolExhaustion, PoolKnobs
from deliverydags.chaos.scenario import ChaosConfig, ChaosEnv, chaos_scenario

CHECKS = {
    "fast_503": (
        "While the pool was exhausted, past the detection grace, the target answered 503 "
        "fast (p95 of those answers below the limit, s) and no request went unanswered."
    ),
    "recovered_within_s": (
        "After the lock was released, messages accepted and delivered within the normal "
        "bound again within the limit (s)."
    ),
    "zero_loss_of_accepted": "No message the target accepted (202) was lost.",
}


class PoolExhaustionConfig(ChaosConfig):
    rate: float = 100.0
    duration_s: float = 60.0
    inject_after_s: float = 15.0
    hold_s: float = 20.0
    recover_within_s: float = 60.0
    fast_503_s: float = 1.0  # p95 of the 503 answers while exhausted must be below this
    detect_grace_s: float = 3.0  # the breaker may take this long to open (> acquire timeout)
    pool_size: int = 4
    breaker: bool = True  # False: the broken variant (--pg-breaker off)
    # Empty: DAGSTER_PG_HOST / _PORT / _USER / _DB, else 127.0.0.1:5432, postgres, test.
    # The password, if any, comes from PGPASSWORD (never from config).
    pg_host: str = ""
    pg_port: int = 0
    pg_user: str = ""
    pg_db: str = ""

    def postgres(self) -> dict:
        env = os.environ
        return {
            "host": self.pg_host or env.get("DAGSTER_PG_HOST", "127.0.0.1"),
            "port": self.pg_port or int(env.get("DAGSTER_PG_PORT", "5432")),
            "user": self.pg_user or env.get("DAGSTER_PG_USER", "postgres"),
            "dbname": self.pg_db or env.get("DAGSTER_PG_DB", "test"),
        }

    def fault_target_args(self) -> list[str]:
        pg = self.postgres()
        args = [
            "--postgres-dsn",
            f"postgresql://{pg['user']}@{pg['host']}:{pg['port']}/{pg['dbname']}",
            "--pg-pool-size",
            str(self.pool_size),
            "--pg-breaker",
            "on" if self.breaker else "off",
        ]
        if "--stream-prefix" not in " ".join(self.target_args):
            # Its own table (and Redis keys) per run: concurrent runs never meet.
            args += ["--stream-prefix", f"ddpool-{secrets.token_hex(4)}"]
        return args


def _fault(config: PoolExhaustionConfig, env: ChaosEnv) -> PoolExhaustion:
    assert env.redis is not None
    knobs = PoolKnobs(
        rate=config.rate,
        recover_within_s=config.recover_within_s,
        fast_503_s=config.fast_503_s,
        detect_grace_s=config.detect_grace_s,
        pool_size=config.pool_size,
        breaker=config.breaker,
    )
    return PoolExhaustion(config.timing(), knobs, config.postgres(), env.run_dir, env.redis.url)


SCENARIO = chaos_scenario(
    name="chaos_pool_exhaustion",
    description="Lock the target's Postgres table mid-load so its connection pool is "
    "exhausted: the circuit breaker answers fast 503s instead of hanging, admission "
    "recovers within 60 s of the release, nothing accepted is lost.",
    checks=CHECKS,
    fault=_fault,  # type: ignore[arg-type]
    config=PoolExhaustionConfig,
)
