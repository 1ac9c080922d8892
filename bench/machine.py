"""The machine line every benchmark prints first: its figures mean little without it."""

from __future__ import annotations

import os
import platform


def describe(*extra: str) -> str:
    """``machine: <cpu model>, <n> cores, <memory>, Python x.y.z, load average a/b/c[, extra]``"""
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [
        cpu_model(),
        f"{os.cpu_count()} cores",
        f"{_memory_gib():.0f} GiB",
        f"Python {platform.python_version()}",
        f"{platform.system()} {platform.release()}",
        f"load average {load}",
        *extra,
    ]
    return "machine: " + ", ".join(parts)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
