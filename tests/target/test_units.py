"""The target's pure pieces: allowlist, fault draws, sharding, latency buckets."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from deliverydags.target.allowlist import Allowlist
from deliverydags.target.broker import LATENCY_BUCKETS, Tally, shard_of
from deliverydags.target.config import FAULT_KINDS, FaultSettings, SetupError
from deliverydags.target.faults import Faults
from deliverydags.target.messages import Message


def msg(i: int) -> Message:
    return Message(f"id-{i}", "s", i, "http://127.0.0.1/", time.time_ns(), b"{}")


def test_allowlist_matches_networks_and_exact_names() -> None:
    allow = Allowlist(["127.0.0.0/8", "::1", "collector.internal"])
    assert allow.check("http://127.9.9.9:80/x") is None
    assert allow.check("http://[::1]/x") is None
    assert allow.check("https://Collector.Internal./x") is None
    for url in ("http://128.0.0.1/", "http://collector.internal.evil/", "http://[::2]/"):
        assert "allowlist" in (allow.check(url) or "")
    with pytest.raises(SetupError):
        Allowlist(["300.1.2.3/8"])


def test_fault_draws_depend_on_seed_and_id_only() -> None:
    rates = (0.1, 0.2, 0.0, 0.0, 0.3)
    one, two = Faults(FaultSettings(rates, seed=3)), Faults(FaultSettings(rates, seed=3))
    other = Faults(FaultSettings(rates, seed=4))
    draws = [one.decide(msg(i)) for i in range(20_000)]
    assert draws == [two.decide(msg(i)) for i in range(20_000)]
    assert draws != [other.decide(msg(i)) for i in range(20_000)]
    counts = Counter(draws)
    for kind, rate in zip(FAULT_KINDS, rates, strict=True):
        assert counts[kind] / len(draws) == pytest.approx(rate, abs=0.015), kind
    assert Faults(FaultSettings()).decide(msg(1)) is None


def test_shards_are_stable_across_processes() -> None:
    # crc32 of the stream: a fixed value, whatever PYTHONHASHSEED is.
    assert shard_of("orders", 4) == 2
    assert {shard_of(f"s{i}", 3) for i in range(100)} == {0, 1, 2}


def test_tally_buckets() -> None:
    tally = Tally()
    for seconds in (0.001, 0.005, 0.3, 1000.0):
        tally.observe(seconds)
    counts = tally.latency_counts
    assert counts[0] == 2  # le 0.005 includes 0.005
    assert counts[LATENCY_BUCKETS.index(0.5)] == 1
    assert counts[-1] == 1  # +Inf
    assert tally.fields() == {"lat0": 2, f"lat{LATENCY_BUCKETS.index(0.5)}": 1, "lat14": 1}
