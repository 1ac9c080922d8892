"""Injected faults: which message gets which, and the log tests check against.

The draw for a message depends only on the seed and the message id, so every consumer
process (and a consumer that re-reads a message after a restart) decides the same way.
"""

from __future__ import annotations

import hashlib
import os

import orjson

from .config import FAULT_KINDS, FaultSettings
from .messages import Message


class Faults:
    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._seed = str(settings.seed).encode() + b"\0"
        bounds, total = [], 0.0
        for kind, rate in zip(FAULT_KINDS, settings.rates, strict=True):
            total += rate
            bounds.append((total, kind))
        self._bounds = bounds
        self._log_fd: int | None = None
        if settings.log_path:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            self._log_fd = os.open(settings.log_path, flags, 0o644)

    def decide(self, msg: Message) -> str | None:
        """The fault ``msg`` gets, or None; logged when there is one."""
        fault = self.draw(msg.id)
        if fault is not None:
            self.record(msg, fault)
        return fault

    def draw(self, msg_id: str) -> str | None:
        """The fault drawn for a message id (not logged: ``record`` it once it happened)."""
        if not self.settings.enabled:
            return None
        digest = hashlib.blake2b(self._seed + msg_id.encode(), digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / 2**64
        return next((kind for bound, kind in self._bounds if draw < bound), None)

    def record(self, msg: Message, fault: str, **extra: object) -> None:
        """One line in the fault log for a fault done to ``msg``."""
        if self._log_fd is not None:
            line = {"id": msg.id, "stream": msg.stream, "seq": msg.seq, "fault": fault, **extra}
            # One write per line on an O_APPEND file: lines of several processes never mix.
            os.write(self._log_fd, orjson.dumps(line) + b"\n")

    def close(self) -> None:
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
