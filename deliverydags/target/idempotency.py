"""Contract v1.1 idempotent resend: what makes two sends of an id "the identical body", the
record of each accepted id, and what a resend is answered.

The record is claimed by the broker in the same step that queues the message (one Lua
script in Redis, one synchronous call in the embedded queue), so two sends of an id can
never both be queued unless a fault says so.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

import orjson

# What a resend of an accepted id does when its fault was drawn (see --fault-*).
AGAIN_IF_SAME = "s"  # redeliver-resend: an identical resend is queued (delivered) again
AGAIN_IF_CHANGED = "c"  # accept-changed: a changed body is queued as new, not 409


def fingerprint(doc: object) -> str:
    """The identity of a message's body: its JSON with keys sorted, so key order and
    whitespace do not make a body different."""
    canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Prior:
    """The first accepted send of an id."""

    fingerprint: str
    accepted_ns: int

    def encode(self) -> str:
        return f"{self.fingerprint}:{self.accepted_ns}"

    @classmethod
    def decode(cls, text: str | bytes) -> Prior:
        if isinstance(text, bytes):
            text = text.decode()
        fp, _sep, ns = text.rpartition(":")
        return cls(fp, int(ns))


def queue_again(prior: Prior, fp: str, again: str) -> bool:
    """Whether a send of an id ``prior`` holds is queued anyway (a resend fault)."""
    return (AGAIN_IF_SAME if prior.fingerprint == fp else AGAIN_IF_CHANGED) in again


class Ledger:
    """The embedded queue's records: id -> first send, each kept ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._records: OrderedDict[str, tuple[Prior, float]] = OrderedDict()

    def claim(self, msg_id: str, prior: Prior) -> Prior | None:
        """The record of ``msg_id`` if there is one; else ``prior`` becomes it (None)."""
        now = time.monotonic()
        while self._records:
            oldest = next(iter(self._records.values()))
            if oldest[1] > now:
                break
            self._records.popitem(last=False)
        held = self._records.get(msg_id)
        if held is not None:
            return held[0]
        self._records[msg_id] = (prior, now + self._ttl_s)
        return None
