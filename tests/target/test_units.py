"""The target's pure pieces: allowlist, fault draws, sharding, latency buckets."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest

from deliverydags.run.settings import ConfigError
from deliverydags.target.allowlist import Allowlist, callback_args
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


def test_allowlist_endpoints_allow_one_port_only() -> None:
    allow = Allowlist(["127.0.0.1:8123", "[::1]:8123", "hooks.example.com:443"])
    for url in ("http://127.0.0.1:8123/r", "http://[::1]:8123/", "https://hooks.example.com/x?t=1"):
        assert allow.check(url) is None, url
    for url in ("http://127.0.0.1:3000/", "http://127.0.0.1/", "http://hooks.example.com/x"):
        assert "not on the allowlist" in (allow.check(url) or ""), url
    assert Allowlist([]).empty
    for bad in ("127.0.0.1:0", "host:port", "::1:80x"):
        with pytest.raises(SetupError):
            Allowlist([bad])


def test_callback_args_name_the_collector_address() -> None:
    assert callback_args("http://127.0.0.1:40123/receipts") == [
        "--allow-callback",
        "127.0.0.1:40123",
    ]
    assert callback_args("https://hooks.example.com/cb?token=x") == [
        "--allow-callback",
        "hooks.example.com:443",
    ]
    assert callback_args("http://[::1]:8/") == ["--allow-callback", "[::1]:8"]
    with pytest.raises(ConfigError) as err:
        callback_args("hooks.example.com/cb?token=s3cret")
    assert "s3cret" not in str(err.value)


def test_fault_draws_depend_on_seed_and_id_only() -> None:
    rates = (0.1, 0.2, 0.0, 0.0, 0.3) + (0.05,) * (len(FAULT_KINDS) - 5)
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


@pytest.mark.parametrize(
    ("field", "value"),
    [("stream", ""), ("stream", "s" * 129), ("seq", -1), ("seq", 2**63), ("id", "")],
)
def test_messages_the_collector_could_not_record_are_refused(field: str, value: object) -> None:
    from deliverydags.target.messages import BadMessage, parse

    doc = {"id": "m1", "stream": "s", "seq": 0, "payload": "x", "callback_url": "http://h:1/"}
    assert parse(orjson.dumps(doc), 1024).stream == "s"
    with pytest.raises(BadMessage) as refused:
        parse(orjson.dumps({**doc, field: value}), 1024)
    assert refused.value.status == 400
