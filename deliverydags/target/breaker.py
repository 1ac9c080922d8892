"""A circuit breaker for one dependency (the target's Postgres): fail fast while it is down.

Own code rather than a library: the async breakers on PyPI are either unmaintained
(aiobreaker, last release 2021) or let every concurrent caller through once the
cool-down has passed (circuitbreaker), which against an exhausted pool is a stampede
that re-exhausts it. This one lets exactly one trial call through in half-open, exposes
its state synchronously for /metrics, says how long until the next trial (Retry-After),
and takes a clock so its state machine is tested without sleeping.

    closed --N consecutive failures--> open --cool-down--> half-open (one trial)
    half-open --trial ok--> closed;  half-open --trial failed--> open (cool-down again)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import IntEnum


class State(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class Breaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_s > 0")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._state = State.CLOSED
        self._failures = 0  # consecutive, while closed
        self._opened_at = 0.0
        self._trial_out = False  # the one half-open call is in flight
        self.opened_count = 0  # times it went closed/half-open -> open

    @property
    def state(self) -> State:
        """The state as a caller would find it now (open turns half-open after cool-down)."""
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            return State.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a call go to the dependency now? True for a closed breaker and for the one
        half-open trial; every caller that gets True must report success() or failure()."""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and not self._trial_out:
            self._state = State.HALF_OPEN
            self._trial_out = True
            return True
        return False

    def retry_after_s(self) -> int:
        """Whole seconds until a trial may go through (at least 1), for Retry-After."""
        left = self.cooldown_s - (self._clock() - self._opened_at)
        return max(1, math.ceil(left)) if self._state is State.OPEN else 1

    def success(self) -> None:
        self._state = State.CLOSED
        self._failures = 0
        self._trial_out = False

    def failure(self) -> None:
        if self._state is State.HALF_OPEN:
            self._open()
        elif self._state is State.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()
        # Already open: a call let through before it opened has failed too; the
        # cool-down keeps running from the moment it opened.

    def abandon(self) -> None:
        """An allowed call ended with no answer either way (cancelled): free the trial."""
        self._trial_out = False

    def _open(self) -> None:
        self._state = State.OPEN
        self._opened_at = self._clock()
        self._failures = 0
        self._trial_out = False
        self.opened_count += 1
