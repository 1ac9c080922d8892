"""Rolling delivery windows and burn-rate alerts from one night's per-message timeline.

Good = delivered or late (the night's ``delivery_rate`` definition), unless ``deadline_s``
asks for delivery within that many seconds. Times are the harness clock: send time
``sent_ms`` and the first delivered receipt's arrival.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deliverydags.ledger import DEFAULT_DEADLINES_S, delivery_timeline
from deliverydags.stats.windows import delivery_windows

KIND = "windows"


class NoRunFiles(LookupError):
    """The night's result has no per-message files (imported history, or files removed)."""


def run_files(result: Mapping[str, Any]) -> tuple[Path, int | None]:
    files = result.get("files") or {}
    run_dir = files.get("run_dir")
    if not run_dir or not Path(run_dir).is_dir():
        where = f" ({run_dir} is gone)" if run_dir else ""
        raise NoRunFiles(f"the result has no per-message run files{where}")
    return Path(run_dir), files.get("closed_at_ns")


def windows_report(
    result: Mapping[str, Any], deadline_s: float | None = None, step_s: float = 60.0
) -> dict[str, Any]:
    run_dir, close_ns = run_files(result)
    deadlines = tuple(result.get("deadlines_s") or DEFAULT_DEADLINES_S)
    timeline = delivery_timeline(run_dir, close_ns, deadlines)
    sent_at = timeline.column("sent_ms").to_numpy(zero_copy_only=False) / 1000.0
    fate = pc.cast(timeline.column("fate"), pa.string())
    delivered = pc.is_in(fate, value_set=pa.array(["delivered", "late"])).to_numpy()
    recv = timeline.column("delivered_recv_ns").to_numpy(zero_copy_only=False)
    delivered_at = np.asarray(recv, dtype=np.float64) / 1e9  # nulls become NaN
    report = delivery_windows(
        sent_at, delivered, delivered_at, deadline_s=deadline_s, step_s=step_s
    )
    report["deadline_s"] = deadline_s
    report["rate"] = report["good"] / report["messages"] if report["messages"] else None
    return report
