"""ChaosHook: a RunHook that injects one fault mid-load and reports recovery figures."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from deliverydags.chaos.recovery import measure
from deliverydags.run.checks import Check
from deliverydags.run.hooks import HookReport, RunContext, RunHook


@dataclass(frozen=True)
class ChaosTiming:
    inject_after_s: float  # from the start of the load
    hold_s: float  # how long the fault lasts before release (0: instantaneous, e.g. a kill)
    normal_latency_ms: float  # the normal bound of recovery.py


def gate(name: str, passed: bool, observed: object, limit: object) -> dict:
    """A result "gates" entry (``Check.to_json``)."""
    return Check(name, passed, observed, limit).to_json()


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    dt = datetime.fromtimestamp(ns / 1e9, UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ChaosHook(RunHook):
    """Subclass and override ``inject`` (and ``release``, ``observe``, ``gates``).

    ``before_load`` starts a thread that waits ``inject_after_s``, calls ``inject``,
    waits ``hold_s`` and calls ``release``; ``after_load`` (target still up) makes sure
    the fault is released, then calls ``observe``; ``report`` measures recovery from the
    run's files and returns the CHAOS RESULT CONVENTION figures plus ``gates(...)``.
    ``close()`` releases the fault whatever happened (the asset calls it in a finally).
    """

    name = "chaos"  # result["chaos"]
    fault = "fault"

    def __init__(self, timing: ChaosTiming) -> None:
        self.timing = timing
        self.injected_ns: int | None = None
        self.released_ns: int | None = None
        self.details: dict = {}  # fault-specific figures
        self.error: str | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- override these ---------------------------------------------------------------
    def inject(self, ctx: RunContext) -> None:
        """Inject the fault; call ``self.mark_injected()`` at the very moment it takes
        effect if there is preparation first (finding a victim ...)."""
        raise NotImplementedError

    def release(self, ctx: RunContext) -> None:
        """Undo the fault (restart a server ...); nothing for an instantaneous one."""

    def observe(self, ctx: RunContext) -> dict:
        """Figures read while the target is still up (e.g. ``{"dlq": n}``)."""
        return {}

    def extra(self, ctx: RunContext, ledger: dict) -> dict:
        """Figures computed after the ledger from the run's files (services are down)."""
        return {}

    def gates(self, figures: dict, ledger: dict) -> list[dict]:
        return []

    # -- the machinery ----------------------------------------------------------------
    def mark_injected(self) -> None:
        self.injected_ns = time.time_ns()

    def before_load(self, ctx: RunContext) -> None:
        self._thread = threading.Thread(target=self._run, args=(ctx,), daemon=True)
        self._thread.start()

    def _run(self, ctx: RunContext) -> None:
        if self._cancel.wait(self.timing.inject_after_s):
            return  # the load ended first: nothing injected
        release_at = time.monotonic() + self.timing.hold_s  # logging must not stretch it
        try:
            with self._lock:
                self.injected_ns = time.time_ns()
                self.inject(ctx)
            ctx.log(f"chaos: {self.fault} injected")
        except Exception as exc:
            self.error = f"injecting {self.fault} failed: {exc}"
            ctx.log(f"chaos: {self.error}")
        self._cancel.wait(max(0.0, release_at - time.monotonic()))
        self._release(ctx)

    def _release(self, ctx: RunContext | None) -> None:
        with self._lock:
            if self.injected_ns is None or self.released_ns is not None:
                return
            try:
                self.release(ctx)  # type: ignore[arg-type]
            except Exception as exc:
                self.error = self.error or f"releasing {self.fault} failed: {exc}"
            # An instantaneous fault (hold_s 0) is released the moment it is injected.
            self.released_ns = time.time_ns() if self.timing.hold_s else self.injected_ns
        if ctx is not None:
            ctx.log(f"chaos: {self.fault} released")

    def after_load(self, ctx: RunContext) -> None:
        self.close(ctx)
        try:
            self.details.update(self.observe(ctx))
        except Exception as exc:
            self.error = self.error or f"observing after {self.fault} failed: {exc}"

    def close(self, ctx: RunContext | None = None) -> None:
        """Stop the timer and release the fault if it is still on. Idempotent."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join()
        self._release(ctx)

    def report(self, ctx: RunContext, result: dict) -> HookReport:
        if self.error:
            raise RuntimeError(self.error)
        if self.injected_ns is None or self.released_ns is None:
            raise RuntimeError(
                f"{self.fault} was never injected: the load ended before "
                f"inject_after_s={self.timing.inject_after_s:g}"
            )
        rec = measure(
            ctx.run_dir,
            injected_ns=self.injected_ns,
            released_ns=self.released_ns,
            bound_ms=self.timing.normal_latency_ms,
            close_ns=result.get("files", {}).get("closed_at_ns"),
            deadlines_s=tuple(ctx.settings.deadlines_s),
        )
        counts = result["counts"]
        figures = {
            "fault": self.fault,
            "injected_at": iso(self.injected_ns),
            "released_at": iso(self.released_ns),
            "time_to_detect_s": rec.time_to_detect_s,
            "time_to_recover_s": rec.time_to_recover_s,
            "lost": int(counts["lost"]),
            "duplicates": int(counts["duplicates"]),
            "dlq": None,
            "failed": int(counts["failed"]),
            "affected": rec.affected,
            "affected_not_accepted": rec.affected_not_accepted,
            "affected_overdue": rec.affected_overdue,
            "normal_latency_ms": rec.normal_bound_ms,
            "hold_s": round((self.released_ns - self.injected_ns) / 1e9, 3),
        }
        figures.update(self.details)
        figures.update(self.extra(ctx, result))
        return HookReport(figures, self.gates(figures, result))


def recovered_gate(figures: dict, limit_s: float) -> dict:
    """``recovered_within_s``: not recovered at all (None) fails."""
    ttr = figures.get("time_to_recover_s")
    return gate("recovered_within_s", ttr is not None and ttr <= limit_s, ttr, limit_s)
