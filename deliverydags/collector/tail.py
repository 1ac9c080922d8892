"""Follow receipts.ndjson while the collector appends to it."""

from __future__ import annotations

import os
from pathlib import Path

import orjson


class ReceiptTail:
    """``read_new()`` returns the ids of receipt lines appended since the previous call.

    Each call reads from the start of the first line not yet complete, so a line is never
    reported half-written nor twice, and a torn last line that a restarted collector cut
    off (it was never acknowledged) is simply replaced by what follows. A missing file
    reads as empty.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._offset = 0  # start of the first incomplete line
        self.lines = 0  # complete lines returned so far

    def read_new(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                if os.fstat(f.fileno()).st_size < self._offset:
                    raise ValueError(f"{self.path}: shrank below lines already read")
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self._offset += end
        ids: list[str] = []
        for line in data[:end].splitlines():
            if not line:
                continue
            try:
                ids.append(orjson.loads(line)["id"])
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{self.path}: line {self.lines + 1} is not a receipt") from exc
            self.lines += 1
        return ids
