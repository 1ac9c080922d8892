"""`chaos_redis_outage`: stop the target's Redis mid-load, start it again later.

The run has its own redis-server (AOF, fsync on every write); the fault is a real
SIGTERM of that server, and release starts it again on the same port and data dir
after ``hold_s``. Meanwhile the target must answer 503 at once (nothing accepted that
it cannot keep), keep every message it answered 202 (zero loss by the ledger), account
for every message it reported failed in its DLQ, and deliver normally again within
``recover_within_s`` of Redis's return. k6 sends each message once here
(``client_tries``), so the 503s are the service's answers, not hidden by retries.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import redis
from pydantic import Field

from deliverydags.chaos import (
    ChaosHook,
    ChaosTiming,
    RedisServer,
    dlq_depth,
    gate,
    recovered_gate,
    stream_prefix,
)
from deliverydags.defs.assets.chaos import (
    ChaosConfig,
    ChaosEnv,
    chaos_asset,
)
from deliverydags.formats import RECEIPTS_FILE
from deliverydags.formats.send_records import read_sends
from deliverydags.run.hooks import RunContext

CHECKS = {
    "zero_loss_of_accepted": "Every message answered 202 has a receipt (ledger lost == 0).",
    "answered_503_during_outage": (
        "Messages sent while Redis was down were refused with 503, none left without an "
        "answer (k6 request timeout) or answered otherwise."
    ),
    "recovered_within_s": (
        "After Redis returned, delivery back within the normal latency bound and the "
        "outage's backlog delivered within the limit (s)."
    ),
    "failed_in_dlq": "Every message the target reported failed is in its dead-letter queue.",
}


class RedisOutageConfig(ChaosConfig):
    hold_s: float = 10.0  # the outage
    recover_within_s: float = 60.0
    request_timeout_s: float = 3.0  # a hanging API makes messages indeterminate
    client_tries: int = 1
    mode: str = "stop"  # "stop": SIGTERM, restart on release; "hang": SIGSTOP, SIGCONT
    target_args: list[str] = Field(default_factory=lambda: ["--consumers", "2"])


class RedisOutage(ChaosHook):
    fault = "redis_outage"

    def __init__(
        self,
        timing: ChaosTiming,
        server: RedisServer,
        prefix: str,
        limit_s: float,
        tries: int,
        mode: str = "stop",
    ) -> None:
        super().__init__(timing)
        if mode not in ("stop", "hang"):
            raise ValueError(f"mode must be 'stop' or 'hang', not {mode!r}")
        self.mode = mode
        self.server = server
        self.prefix = prefix
        self.limit_s = limit_s
        self.tries = tries
        self._dlq_ids: set[str] = set()

    def k6_env(self) -> dict[str, str]:
        return {"DD_MAX_TRIES": str(self.tries)}

    def inject(self, ctx: RunContext) -> None:
        self.details["mode"] = self.mode
        self.mark_injected()
        if self.mode == "hang":
            self.server.pause()  # SIGSTOP: connections open, nothing answers
        else:
            self.server.stop()  # SIGTERM: Redis shuts down; the AOF is on disk already
        self.details["stop_s"] = round((time.time_ns() - (self.injected_ns or 0)) / 1e9, 3)
        if self.server.ping():
            raise RuntimeError(f"redis-server still answers after the {self.mode}")
        self.details["redis_pid_stopped"] = self.server.proc.pid if self.server.proc else None

    def release(self, ctx: RunContext) -> None:
        began = time.monotonic()
        if self.mode == "hang":
            self.server.resume()
        else:
            self.server.start()  # same port, same dir: the AOF is replayed
        self.details["start_s"] = round(time.monotonic() - began, 3)

    def observe(self, ctx: RunContext) -> dict:
        client = redis.Redis.from_url(self.server.url, socket_timeout=5)
        try:
            dlq_ids = {
                fields[b"i"].decode()
                for _ref, fields in client.xrange(f"{self.prefix}:dlq")
                if b"i" in fields
            }
        finally:
            client.close()
        self._dlq_ids = dlq_ids
        return {
            "dlq": dlq_depth(self.server.url, self.prefix),
            "redis_starts": self.server.starts,
        }

    def extra(self, ctx: RunContext, ledger: dict) -> dict:
        assert self.injected_ns is not None and self.released_ns is not None
        return {
            **outage_answers(ctx.run_dir, self.injected_ns, self.released_ns),
            "failed_not_in_dlq": len(failed_ids(ctx.run_dir) - self._dlq_ids),
        }

    def gates(self, figures: dict, ledger: dict) -> list[dict]:
        answers = {
            "503": figures.get("outage_503", 0),
            "other": figures.get("outage_other_status", 0),
            "no_answer": figures.get("outage_no_answer", 0),
            "accepted": figures.get("outage_accepted", 0),
        }
        only_503 = answers["503"] > 0 and answers["other"] == 0 and answers["no_answer"] == 0
        return [
            gate("zero_loss_of_accepted", figures["lost"] == 0, figures["lost"], 0),
            gate("answered_503_during_outage", only_503, answers, "503 only, > 0"),
            recovered_gate(figures, self.limit_s),
            gate(
                "failed_in_dlq",
                figures.get("failed_not_in_dlq", 1) == 0,
                {"failed": figures["failed"], "dlq": figures.get("dlq"),
                 "failed_not_in_dlq": figures.get("failed_not_in_dlq")},
                "failed_not_in_dlq == 0",
            ),
        ]  # fmt: skip


def outage_answers(run_dir: Path, start_ns: int, end_ns: int) -> dict:
    """How the target answered the messages first sent while Redis was down."""
    out = {"outage_sent": 0, "outage_503": 0, "outage_other_status": 0, "outage_no_answer": 0}
    out["outage_accepted"] = 0
    lo, hi = start_ns / 1e6, end_ns / 1e6
    for rec in read_sends(run_dir):
        if not lo <= rec.sent_ms <= hi:
            continue
        out["outage_sent"] += 1
        if rec.accepted:
            out["outage_accepted"] += 1  # possible only at the edges of the window
        elif rec.status == 503:
            out["outage_503"] += 1
        elif rec.send_class == "indeterminate":
            out["outage_no_answer"] += 1
        else:
            out["outage_other_status"] += 1
    return out


def failed_ids(run_dir: Path) -> set[str]:
    """Ids with a ``failed`` receipt and never a ``delivered`` one."""
    failed, delivered = set(), set()
    for rec in _lines(Path(run_dir) / RECEIPTS_FILE, b"{"):
        (failed if rec.get("status") == "failed" else delivered).add(rec.get("id"))
    return failed - delivered


def _lines(path: Path, prefix: bytes):
    if not path.exists():
        return
    with path.open("rb") as f:
        for line in f:
            if line.startswith(prefix):
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue


def _hook(config: RedisOutageConfig, env: ChaosEnv) -> RedisOutage:
    assert env.redis is not None
    if config.client_tries < 1:
        raise ValueError("client_tries must be >= 1")
    return RedisOutage(
        config.timing(),
        env.redis,
        stream_prefix(config.target_args),
        config.recover_within_s,
        config.client_tries,
        config.mode,
    )


chaos_redis_outage = chaos_asset(
    name="chaos_redis_outage",
    description="Stop the target's Redis mid-load and start it again: fast 503s, nothing "
    "accepted lost, failures in the DLQ, delivery back within 60 s.",
    checks=CHECKS,
    hook=_hook,  # type: ignore[arg-type]
    config_type=RedisOutageConfig,
)
