"""What one check run is asked to do, validated once for the CLI and the Dagster asset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deliverydags import config
from deliverydags.config import DEFAULT_COLLECTOR_ADDR, DEFAULT_DEADLINES_S, SOAK_SCENARIO

K6_DIR = Path(__file__).resolve().parent.parent / "k6"  # package data: a wheel carries the scripts


class ConfigError(ValueError):
    """A setting is wrong; the message is one actionable line."""


@dataclass(frozen=True)
class Gates:
    """Limits a run must hold (the seed's defaults). The optional ones (None: not checked)
    are the soak's full set; a fault scenario leaves them to its own checks."""

    max_lost: int = 0
    max_failed: int = 0
    p95_latency_ms: float = 100.0
    max_error_rate: float = 0.001
    max_out_of_order: int | None = None
    max_duplicate_rate: float | None = None  # duplicates over accepted messages
    p50_latency_ms: float | None = None  # a warning: the soak's p50 < 50 ms
    p99_latency_ms: float | None = None  # a warning: the soak's p99 < 500 ms


@dataclass(frozen=True)
class RunSettings:
    scenario: str = SOAK_SCENARIO
    target_url: str | None = None  # None: start the bundled reference target
    rate: float = 50.0
    duration_s: float = 60.0
    deadlines_s: tuple[float, ...] = DEFAULT_DEADLINES_S
    payload_bytes: int = 256
    variants: str = ""
    collector_addr: str = DEFAULT_COLLECTOR_ADDR
    collector_url: str | None = None  # None: the collector's own address
    redis_url: str | None = None  # the reference target's broker; None: embedded queue
    target_args: tuple[str, ...] = ()  # extra reference-target flags (fault knobs)
    k6_binary: str | None = None
    request_timeout_s: float = 10.0
    gates: Gates = field(default_factory=Gates)
    # The scenario's own k6 options (e.g. DD_BATCH), as (name, value) pairs.
    k6_env: tuple[tuple[str, str], ...] = ()
    # Contract v1.1 tenants: how many the reference target gets when none are configured
    # (DELIVERYDAGS_TENANT_TOKENS); 0: a run without tenants.
    tenants: int = 0

    def script_path(self) -> Path:
        """A scenario name under k6/ (or DELIVERYDAGS_K6_DIR), or a path to a .js file."""
        if self.scenario.endswith(".js"):
            return Path(self.scenario).expanduser().resolve()
        base = Path(config.env(config.K6_DIR) or K6_DIR)
        return base / f"{self.scenario}.js"

    def validate(self) -> RunSettings:
        if not self.script_path().is_file():
            raise ConfigError(f"unknown scenario {self.scenario!r}: no {self.script_path()}")
        if not self.rate > 0:
            raise ConfigError(
                f"rate must be a positive number of messages per second, not {self.rate}"
            )
        if not self.duration_s > 0:
            raise ConfigError(
                f"duration must be a positive number of seconds, not {self.duration_s}"
            )
        d = self.deadlines_s
        if not d or any(x <= 0 for x in d) or list(d) != sorted(set(d)):
            raise ConfigError(
                f"deadlines must be positive and increasing, e.g. 30,300,900, not {d}"
            )
        if self.payload_bytes < 0:
            raise ConfigError("payload size must not be negative")
        if self.target_url is not None and not self.target_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"target URL must start with http:// or https://, not {self.target_url!r}"
            )
        g = self.gates
        optional = (g.max_out_of_order, g.max_duplicate_rate, g.p50_latency_ms, g.p99_latency_ms)
        if (
            g.max_lost < 0
            or g.max_failed < 0
            or g.p95_latency_ms <= 0
            or not 0 <= g.max_error_rate < 1
            or any(limit is not None and limit < 0 for limit in optional)
        ):
            raise ConfigError(f"gate limits out of range: {g}")
        _split_addr(self.collector_addr)
        return self


def _split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"collector address must be HOST:PORT, e.g. 127.0.0.1:0, not {addr!r}")
    return host, int(port)
