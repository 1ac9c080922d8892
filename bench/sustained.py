"""Highest sustained rate of two configurations, measured side by side (shared by
bench_overhead.py and bench_monitoring.py).

Near the machine's capacity a single k6 trial is noise-dominated: the same rate passes
and fails on the next try. So each configuration gets its own search, and the two run in
lockstep (a trial of one, then a trial of the other), so that drift in the machine's
load hits both alike:

- a rate is *sustained* when 2 of up to 3 trials at it pass (3 only when the first two
  disagree);
- the search climbs by ``growth`` from ``start`` until a rate is not sustained, then
  bisects between the highest sustained and the lowest not sustained rate until they are
  within ``resolution`` of each other.

The result is a bracket per configuration: its capacity lies in [sustained, failed).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import machine  # bench/ is on sys.path when a script here runs

# One trial at a rate (messages/s): passed?, and a note for the log.
Trial = Callable[[int], tuple[bool, str]]
# Given the seconds per trial and a scratch dir: the (label, trial) of off, then of on.
Modes = Callable[[int, Path], tuple[tuple[str, Trial], tuple[str, Trial]]]
VOTES = 3
MIN_RATE = 10


@dataclass
class Search:
    label: str
    trial: Trial
    rate: int
    growth: float
    resolution: float
    sustained: int = 0  # highest rate sustained so far
    failed: int | None = None  # lowest rate not sustained so far
    votes: list[bool] = field(default_factory=list)

    @property
    def done(self) -> bool:
        if self.failed is None:
            return False
        return self.failed <= MIN_RATE or self.failed - self.sustained <= self.resolution * max(
            self.sustained, 1
        )

    def step(self) -> None:
        """One trial at the current rate; moves on once the rate has its verdict."""
        ok, note = self.trial(self.rate)
        self.votes.append(ok)
        print(f"  {self.label} {self.rate:>6}/s trial {len(self.votes)}: "
              f"{'pass' if ok else 'FAIL'} ({note})", flush=True)  # fmt: skip
        passes, fails = self.votes.count(True), self.votes.count(False)
        if max(passes, fails) * 2 <= VOTES:
            return  # no majority yet
        if passes > fails:
            self.sustained = self.rate
        else:
            self.failed = self.rate
        print(f"  {self.label} {self.rate:>6}/s: "
              f"{'sustained' if passes > fails else 'NOT sustained'} ({passes}/{len(self.votes)})",
              flush=True)  # fmt: skip
        self.votes = []
        if self.failed is None:
            self.rate = _round(self.rate * self.growth)
        else:
            self.rate = _round((self.sustained + self.failed) / 2)


def _round(rate: float) -> int:
    return max(MIN_RATE, round(rate / 10) * 10)


def compare(
    off: tuple[str, Trial], on: tuple[str, Trial], start: int, growth: float, resolution: float
) -> tuple[Search, Search]:
    """Run both searches in lockstep until both are done."""
    searches = [Search(label, trial, start, growth, resolution) for label, trial in (off, on)]
    while not all(s.done for s in searches):
        for s in searches:
            if not s.done:
                s.step()
    return searches[0], searches[1]


def report(off: Search, on: Search, goal: float) -> str:
    """The ratio of the highest sustained rates, with the bounds the brackets allow."""
    ratio = on.sustained / off.sustained if off.sustained else float("nan")
    low = on.sustained / off.failed if off.failed else float("nan")
    high = on.failed / off.sustained if on.failed and off.sustained else float("nan")
    verdict = "MET" if ratio >= goal else "NOT met"
    return (
        f"highest sustained rate: {off.label.strip()} {off.sustained}/s (not {off.failed}/s), "
        f"{on.label.strip()} {on.sustained}/s (not {on.failed}/s); ratio {ratio:.2f} "
        f"(the brackets allow {low:.2f}..{high:.2f}); goal >= {goal:.2f}: {verdict}"
    )


def main(description: str, modes: Modes, goal: float, resolution: float) -> None:
    """The command line both rate benchmarks share: search, then print the ratio."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--start", type=int, default=1500, help="first rate tried, msg/s")
    parser.add_argument("--growth", type=float, default=1.25, help="climb factor per step")
    parser.add_argument("--resolution", type=float, default=resolution, help="bisect to this")
    parser.add_argument("--seconds", type=int, default=20, help="per trial")
    args = parser.parse_args()
    print(machine.describe())
    with tempfile.TemporaryDirectory() as tmp:
        off, on = modes(args.seconds, Path(tmp))
        searches = compare(off, on, args.start, args.growth, args.resolution)
    print(report(*searches, goal=goal))
