"""The fault of `chaos_redis_outage`: stop the target's Redis mid-load, start it again later.

The run has its own redis-server (AOF, fsync on every write); the fault is a real
SIGTERM of that server (``mode="stop"``), or a SIGSTOP (``mode="hang"``), and release
starts (or continues) it on the same port and data dir. Meanwhile the target must answer
503 at once, keep every message it answered 202, account for every message it reported
failed in its DLQ, and deliver normally again within ``limit_s`` of Redis's return.

Plain Python: the scenario (deliverydags.scenarios.chaos_redis_outage) builds
:class:`RedisOutage` from its config.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import redis

from deliverydags.chaos.hook import ChaosHook, ChaosTiming, gate, recovered_gate
from deliverydags.chaos.probes import dlq_depth
from deliverydags.chaos.redis_server import RedisServer
from deliverydags.formats import RECEIPTS_FILE
from deliverydags.formats.send_records import read_sends
from deliverydags.run.hooks import RunContext


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
