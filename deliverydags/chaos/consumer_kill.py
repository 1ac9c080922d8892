"""The consumer-kill fault (scenario ``chaos_consumer_kill``, declared in
:mod:`deliverydags.scenarios.chaos_consumer_kill`): SIGKILL a consumer process of the
reference target mid-load.

The victim is the consumer holding the most pending (read, unacknowledged) entries at
the moment of the kill, so the fault always lands on work in flight. Its entries must
be taken over (re-read by its restarted successor, or XAUTOCLAIMed by another
consumer) and delivered within ``recover_within_s``, with nothing lost. ``signal:
SIGSTOP`` is the hung-consumer variant: the process stays (the supervisor sees nothing
to restart) until SIGCONT at release, so only XAUTOCLAIM can rescue its entries.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import redis

from deliverydags.chaos.hook import ChaosHook, ChaosTiming, gate, recovered_gate
from deliverydags.chaos.probes import (
    ProcessGone,
    consumer_processes,
    dlq_depth,
    send_signal,
)
from deliverydags.run.hooks import RunContext
from deliverydags.target import LOG_FILE
from deliverydags.target.redisbroker import GROUP

VICTIM_WAIT_S = 10.0  # how long to wait for a consumer holding >= min_pending entries
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGSTOP": signal.SIGSTOP}


class ConsumerKill(ChaosHook):
    fault = "consumer_kill"

    def __init__(
        self,
        timing: ChaosTiming,
        redis_url: str,
        prefix: str,
        sig: str,
        limit_s: float,
        min_pending: int,
    ) -> None:
        super().__init__(timing)
        if sig not in SIGNALS:
            raise ValueError(f"signal must be one of {', '.join(SIGNALS)}, not {sig!r}")
        self.redis_url = redis_url
        self.prefix = prefix
        self.sig = sig
        self.limit_s = limit_s
        self.min_pending = min_pending
        # The victim's Process object, never its bare pid: signals to it check that the
        # pid still belongs to it (an exited consumer's pid may be reused).
        self.victim: psutil.Process | None = None

    def inject(self, ctx: RunContext) -> None:
        if ctx.target is None:
            raise RuntimeError("no reference target process to kill a consumer of")
        index, pending, proc = self._victim(ctx.target.pid)
        self.mark_injected()
        send_signal(proc, SIGNALS[self.sig], f"consumer {index}")
        self.victim = proc
        self.details.update(
            signal=self.sig, consumer=index, killed_pid=proc.pid, pending_at_kill=pending
        )
        ctx.log(f"chaos: sent {self.sig} to consumer {index} (pid {proc.pid}, {pending} pending)")

    def _victim(self, target_pid: int) -> tuple[int, int, psutil.Process]:
        """(index, pending entries, process) of the consumer holding the most entries."""
        deadline = time.monotonic() + VICTIM_WAIT_S
        best: tuple[int, int] = (-1, -1)
        while True:
            procs = consumer_processes(target_pid)
            if not procs:
                raise RuntimeError("the target has no consumer processes (Redis mode?)")
            pending = self._pending_by_consumer()
            best = max(((pending.get(i, 0), i) for i in procs), default=(0, -1))
            if best[0] >= self.min_pending or time.monotonic() >= deadline:
                return best[1], best[0], procs[best[1]]
            time.sleep(0.005)

    def _pending_by_consumer(self) -> dict[int, int]:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
        out: dict[int, int] = {}
        try:
            for key in client.scan_iter(f"{self.prefix}:shard:*", _type="stream"):
                for row in client.xpending(key, GROUP).get("consumers") or []:
                    name = row["name"].decode() if isinstance(row["name"], bytes) else row["name"]
                    index = int(name.rsplit("-", 1)[1])
                    out[index] = out.get(index, 0) + int(row["pending"])
        finally:
            client.close()
        return out

    def release(self, ctx: RunContext) -> None:
        if self.sig == "SIGSTOP" and self.victim is not None:
            try:
                send_signal(self.victim, signal.SIGCONT, "the stopped consumer")
            except ProcessGone as exc:  # killed meanwhile: nothing left to resume
                if ctx is not None:  # None when close() releases after the run
                    ctx.log(f"chaos: {exc}")

    def observe(self, ctx: RunContext) -> dict:
        assert ctx.target is not None
        after = consumer_processes(ctx.target.pid)
        log = Path(ctx.run_dir) / LOG_FILE
        text = log.read_text(errors="replace") if log.exists() else ""
        return {
            "consumer_restarted": self.victim is not None and self.victim not in after.values(),
            "reclaim_log_lines": text.count("reclaimed "),
            "pending_left": sum(self._pending_by_consumer().values()),
            "dlq": dlq_depth(self.redis_url, self.prefix),
        }

    def gates(self, figures: dict, ledger: dict) -> list[dict]:
        return [
            gate("zero_loss", figures["lost"] == 0, figures["lost"], 0),
            recovered_gate(figures, self.limit_s),
        ]
