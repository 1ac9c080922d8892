"""Command-line and environment settings of the reference target."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from deliverydags import config

TOKEN_ENV = config.TARGET_TOKEN
TENANT_TOKENS_ENV = config.TENANT_TOKENS
SECRET_ENV = config.CALLBACK_SECRET
REDIS_URL_ENV = config.REDIS_URL
# One draw per message picks at most one kind (so the --fault-* fractions add up to <= 1).
# corrupt, undigest: a delivered receipt's digest is of a changed payload / missing (string
# payloads only); leak: the receipt goes to another tenant's callback instead.
CONSUMER_FAULT_KINDS = (
    *("drop", "duplicate", "delay", "reorder", "fail"),
    *("corrupt", "undigest", "leak"),
)
# Done by the API to a resend of an accepted id (logged by the API process): an identical
# resend queued again (broken idempotency), a changed body accepted as new instead of 409.
RESEND_FAULT_KINDS = ("redeliver-resend", "accept-changed")
FAULT_KINDS = (*CONSUMER_FAULT_KINDS, *RESEND_FAULT_KINDS)
FAULT_HELP = {
    "corrupt": "share of messages (string payloads) delivered changed: the receipt's digest "
    "is not the sent payload's",
    "undigest": "share of delivered receipts (string payloads) without a digest",
    "leak": "share of receipts of a tenant's message sent to another tenant's callback_url "
    "(one seen in that tenant's messages) instead of its own",
    "redeliver-resend": "share of ids whose identical resends are delivered again "
    "(answered 202 with the first accepted_at, as they should be)",
    "accept-changed": "share of ids whose resends with a changed body are answered 202 "
    "and delivered as new instead of 409",
}
DESCRIPTION = f"""The reference target: a messaging service implementing contract v1 and the
v1.1 parts (batch send, payload digest, tenants, idempotent resend).
The bearer token comes from {TOKEN_ENV} and the receipt signing secret from
{SECRET_ENV} (never from flags); tenants' tokens, as tenant:token,tenant2:token2, from
{TENANT_TOKENS_ENV}: a message's "tenant" must be its token's (else 403), and the
target's own token sends messages without one. Prints READY <url> once it serves.

It POSTs receipts only to callback addresses it is told to trust: with no
--allow-callback (or --callback-allow) every message is answered 400, since a
message's callback_url is chosen by whoever holds the token. deliverydags run passes
its collector's address."""


class SetupError(Exception):
    """Bad configuration; the message is the one line printed before exiting 2."""


@dataclass(frozen=True)
class FaultSettings:
    """Fraction of messages per fault kind; ``rates`` keeps ``FAULT_KINDS`` order."""

    rates: tuple[float, ...] = (0.0,) * len(FAULT_KINDS)
    delay_s: float = 5.0
    seed: int = 0
    log_path: str | None = None
    leak_bytes: int = 0  # retained per accepted message by the API process (a real leak)

    @property
    def enabled(self) -> bool:
        return any(self.rates)

    def rate(self, kind: str) -> float:
        return self.rates[FAULT_KINDS.index(kind)]


@dataclass(frozen=True)
class PostgresSettings:
    """The optional Postgres dependency: one row per admitted message (see database.py)."""

    dsn: str = field(repr=False)  # may name a user; the password comes from PGPASSWORD
    pool_size: int = 4
    acquire_timeout_s: float = 2.0
    query_timeout_s: float = 2.0
    breaker: bool = True
    breaker_failures: int = 5
    breaker_cooldown_s: float = 5.0


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 0
    redis_url: str | None = None
    stream_prefix: str = "dd"
    consumers: int = 2
    shards: int = 2
    max_backlog: int = 10_000
    retry_after_s: int = 1  # the Retry-After of a 429 past max_backlog
    max_attempts: int = 8
    retry_base_s: float = 0.1
    retry_max_s: float = 5.0
    batch_size: int = 100
    batch_wait_ms: float = 5.0
    # HOST:PORT endpoints, or (opted into) CIDRs / IPs / host names on any port. Empty:
    # nothing may be called; an open loopback would let a token holder make the target
    # POST to Dagster or Prometheus on the same host.
    callback_allow: tuple[str, ...] = ()
    payload_limit: int = 65_536
    batch_body_limit: int = 16 << 20
    idempotency_ttl_s: int = 3600  # how long an accepted id's first send is remembered
    version_label: str | None = None
    claim_idle_s: float = 5.0
    reclaim: bool = True  # --no-reclaim: a dead consumer's pending entries stay pending
    faults: FaultSettings = FaultSettings()
    postgres: PostgresSettings | None = None  # None: no database on the request path
    argv: tuple[str, ...] = ()
    token: bytes = field(default=b"", repr=False)
    tenant_tokens: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)
    secret: bytes = field(default=b"", repr=False)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: the launcher reports the last line of the log.
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def _positive(kind: type) -> object:
    def convert(text: str) -> object:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be > 0")
        return value

    convert.__name__ = kind.__name__
    return convert


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _endpoint(text: str) -> str:
    from .allowlist import parse_endpoint  # here: allowlist imports SetupError from us

    if parse_endpoint(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m deliverydags.target", description=DESCRIPTION)
    a = p.add_argument
    pos_int, pos_float = _positive(int), _positive(float)
    a("--listen", type=_listen, default=("127.0.0.1", 0), help="HOST:PORT (port 0: any free)")
    a(
        "--redis-url",
        help=f"Redis Streams broker (default: {REDIS_URL_ENV}, which keeps a password out of "
        "argv); without either an in-process queue is used",
    )
    a("--stream-prefix", default="dd", help="prefix of every Redis key this target uses")
    a("--consumers", type=pos_int, default=2, help="consumer processes (tasks when embedded)")
    a("--shards", type=pos_int, help="broker shards (default: one per consumer)")
    a(
        "--max-backlog",
        type=pos_int,
        default=10_000,
        help="accepted, unacknowledged cap: past it a send is answered 429 with Retry-After "
        "(a batch: 429 for all of it when full on arrival, else per message)",
    )
    a(
        "--retry-after-s",
        type=pos_int,
        default=1,
        metavar="S",
        help="the Retry-After header (whole seconds) of a 429 past --max-backlog",
    )
    a("--max-attempts", type=pos_int, default=8)
    a("--retry-base-s", type=pos_float, default=0.1)
    a("--retry-max-s", type=pos_float, default=5.0)
    a("--batch-size", type=pos_int, default=100)
    a("--batch-wait-ms", type=_non_negative_float, default=5.0)
    a(
        "--allow-callback",
        action="append",
        type=_endpoint,
        default=[],
        metavar="HOST:PORT",
        help="a callback address receipts may be POSTed to (repeatable; deliverydags run "
        "passes its collector's). Without any, every message is answered 400",
    )
    a(
        "--callback-allow",
        default="",
        metavar="LIST",
        help="comma-separated CIDRs, IPs or host names allowed on every port (default: none)",
    )
    a("--payload-limit", type=pos_int, default=65_536, help="bytes of the encoded payload")
    a(
        "--batch-body-limit",
        type=pos_int,
        default=16 << 20,
        metavar="BYTES",
        help="body size of POST /v1/messages:batch above which the whole request is 413",
    )
    a(
        "--idempotency-ttl-s",
        type=pos_int,
        default=3600,
        metavar="S",
        help="how long an accepted id is remembered: a resend within it is answered 202 with "
        "the first accepted_at and not delivered again (409 with a different body)",
    )
    a("--version-label", help="version reported by /healthz")
    a("--claim-idle-s", type=pos_float, default=5.0, help="idle time before reclaiming")
    a(
        "--no-reclaim",
        dest="reclaim",
        action="store_false",
        help="never take over pending entries: no XAUTOCLAIM, and a restarted consumer does "
        "not re-read its pending list (breaks recovery; for chaos tests)",
    )
    for kind in FAULT_KINDS:
        a(f"--fault-{kind}", type=_fraction, default=0.0, metavar="F", help=FAULT_HELP.get(kind))
    a("--fault-delay-s", type=_non_negative_float, default=5.0)
    a("--fault-seed", type=int, default=0)
    a("--fault-log", help="append one NDJSON line per faulted message")
    a(
        "--fault-leak-bytes",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="keep N bytes per accepted message in memory, never freed (memory leak)",
    )
    a(
        "--postgres-dsn",
        help="postgresql://USER@HOST:PORT/DB: record each admitted message "
        "there (password from PGPASSWORD or ~/.pgpass); without it no database is used",
    )
    a("--pg-pool-size", type=pos_int, default=4, help="connections in the fixed-size pool")
    a("--pg-acquire-timeout-s", type=pos_float, default=2.0, help="wait for a free connection")
    a("--pg-query-timeout-s", type=pos_float, default=2.0)
    a("--pg-breaker", choices=("on", "off"), default="on", help="circuit breaker on the DB")
    a("--pg-breaker-failures", type=pos_int, default=5, help="consecutive failures to open")
    a("--pg-breaker-cooldown-s", type=pos_float, default=5.0, help="open until a trial call")
    return p


def _postgres(ns: argparse.Namespace) -> PostgresSettings | None:
    if not ns.postgres_dsn:
        return None
    if not ns.postgres_dsn.startswith(("postgresql://", "postgres://")):
        # The DSN itself is not echoed: it may carry a password.
        raise SetupError("--postgres-dsn must be a postgresql:// URL")
    return PostgresSettings(
        dsn=ns.postgres_dsn,
        pool_size=ns.pg_pool_size,
        acquire_timeout_s=ns.pg_acquire_timeout_s,
        query_timeout_s=ns.pg_query_timeout_s,
        breaker=ns.pg_breaker == "on",
        breaker_failures=ns.pg_breaker_failures,
        breaker_cooldown_s=ns.pg_breaker_cooldown_s,
    )


def parse(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    """Settings from ``argv``, the secrets (and the Redis URL unless given) from ``env``;
    exits 2 on bad flags."""
    ns = _parser().parse_args(list(argv))
    rates = tuple(getattr(ns, f"fault_{kind.replace('-', '_')}") for kind in FAULT_KINDS)
    if sum(rates) > 1.0 + 1e-9:
        raise SetupError("the --fault-* fractions add up to more than 1")
    token, secret = env.get(TOKEN_ENV, ""), env.get(SECRET_ENV, "")
    if not token:
        raise SetupError(f"{TOKEN_ENV} is not set")
    if not secret:
        raise SetupError(f"{SECRET_ENV} is not set")
    from .tenants import parse_tokens  # here: tenants imports SetupError from us

    tenant_tokens = parse_tokens(env.get(TENANT_TOKENS_ENV, ""), token, TENANT_TOKENS_ENV)
    listed = (part.strip() for part in ns.callback_allow.split(","))
    allow = (*ns.allow_callback, *(part for part in listed if part))
    return Settings(
        host=ns.listen[0],
        port=ns.listen[1],
        redis_url=ns.redis_url or env.get(REDIS_URL_ENV) or None,
        stream_prefix=ns.stream_prefix,
        consumers=ns.consumers,
        shards=ns.shards or ns.consumers,
        max_backlog=ns.max_backlog,
        retry_after_s=ns.retry_after_s,
        max_attempts=ns.max_attempts,
        retry_base_s=ns.retry_base_s,
        retry_max_s=max(ns.retry_max_s, ns.retry_base_s),
        batch_size=ns.batch_size,
        batch_wait_ms=ns.batch_wait_ms,
        callback_allow=allow,
        payload_limit=ns.payload_limit,
        batch_body_limit=ns.batch_body_limit,
        idempotency_ttl_s=ns.idempotency_ttl_s,
        version_label=ns.version_label,
        claim_idle_s=ns.claim_idle_s,
        reclaim=ns.reclaim,
        faults=FaultSettings(
            rates, ns.fault_delay_s, ns.fault_seed, ns.fault_log, ns.fault_leak_bytes
        ),
        postgres=_postgres(ns),
        argv=tuple(argv),
        token=token.encode(),
        tenant_tokens=tenant_tokens,
        secret=secret.encode(),
    )


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit 2 (usage or setup error)."""
    print(f"deliverydags.target: error: {message}", file=sys.stderr)
    raise SystemExit(2)
