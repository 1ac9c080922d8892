"""The memory fault (scenario ``chaos_memory``, declared in
:mod:`deliverydags.scenarios.chaos_memory`): the target's own leak
(``--fault-leak-bytes``), the Prometheus watch of the target's memory (also
``payload_integrity``'s) and the chaos figures read from its report.
"""

from __future__ import annotations

from contextlib import ExitStack

from deliverydags.prometheus import MemoryCheck
from deliverydags.run.hooks import RunHook
from deliverydags.run.scenario import Environment


def watch(env: Environment, stack: ExitStack, limit: float, warmup_fraction: float) -> RunHook:
    """The run's Prometheus with the memory check (growth of the worst target process
    after the warm-up below ``limit``), stopped with the run; the scenario must declare
    prometheus="required"."""
    assert env.prometheus is not None
    check = MemoryCheck(limit=limit, warmup_fraction=warmup_fraction)
    hook = stack.enter_context(env.prometheus(memory_check=check))
    env.log(f"memory from {hook.describe}")
    return hook


def leak_args(leak_bytes: int) -> list[str]:
    """Target arguments turning on its real leak of ``leak_bytes`` per accepted message
    (none when 0: the run only watches)."""
    return ["--fault-leak-bytes", str(leak_bytes)] if leak_bytes else []


def chaos_figures(result: dict, leak_bytes: int, warmup_fraction: float) -> dict:
    """The CHAOS RESULT CONVENTION entries, plus the memory figures."""
    prom = result.get("prometheus") or {}
    mem = prom.get("memory") or {}
    worst = (mem.get("processes") or {}).get(mem.get("worst")) or {}
    summed = mem.get("sum") or {}
    dlq = (prom.get("service") or {}).get("max_dlq_depth")
    return {
        "fault": f"memory leak of {leak_bytes} B per message" if leak_bytes else "none (watch)",
        "injected_at": result["started_at"] if leak_bytes else None,
        "released_at": None,
        "time_to_detect_s": None,
        "time_to_recover_s": None,
        "lost": result["counts"]["lost"],
        "duplicates": result["counts"]["duplicates"],
        "dlq": None if dlq is None else int(dlq),
        "leak_bytes_per_message": leak_bytes,
        "warmup_fraction": warmup_fraction,
        "rss_growth": mem.get("growth"),
        "rss_worst_process": mem.get("worst"),
        "rss_slope_bytes_per_s": worst.get("slope_bytes_per_s"),
        "rss_slope_pct_per_h": worst.get("slope_pct_per_h"),
        "rss_start_bytes": worst.get("rss_start_bytes"),
        "rss_end_bytes": worst.get("rss_end_bytes"),
        "rss_sum_growth": summed.get("growth"),
    }
