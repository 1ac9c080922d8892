"""The comparison and memory arithmetic on their own (pure, fast)."""

from __future__ import annotations

import math

from deliverydags.prometheus import compare, memory


def _ledger(delivered: int, failed: int = 0, duplicates: int = 0, p95: float = 12.0) -> dict:
    counts = {"accepted": delivered + failed, "delivered": delivered, "late": 0,
              "recovered": 0, "failed": failed, "duplicates": duplicates}  # fmt: skip
    return {"counts": counts, "latency_ms": {"p95": p95}}


def _service(delivered: int, failed: int = 0, bucket=(10.0, 25.0), p95: float = 20.0) -> dict:
    return {"delivered": delivered, "failed": failed, "p95_bucket_ms": list(bucket),
            "latency_ms": {"p95": p95}}  # fmt: skip


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # 100 observations: 50 under 10 ms, 40 in (10, 25], 10 in (25, 50].
    buckets = [(0.01, 50.0), (0.025, 90.0), (0.05, 100.0), (math.inf, 100.0)]
    assert compare.histogram_quantile(0.5, buckets) == 0.01
    assert math.isclose(compare.histogram_quantile(0.95, buckets), 0.0375)
    assert compare.bucket_of(0.0375, buckets) == (0.025, 0.05)
    assert compare.histogram_quantile(0.5, [(0.01, 0.0), (math.inf, 0.0)]) is None


def test_counts_must_match_except_for_redelivered_duplicates() -> None:
    gate = compare.agreement_gate(compare.compare(_service(1000), _ledger(1000)))
    assert gate["passed"] and gate["observed"] == "all figures within tolerance"
    # A message finished twice after a reclaim: one more in the service, one duplicate.
    assert compare.agreement_gate(compare.compare(_service(1001), _ledger(1000, duplicates=1)))[
        "passed"
    ]
    # 0.1% of accepted either way for the window's edges: 1 of 1000, none of 999.
    assert compare.agreement_gate(compare.compare(_service(1001), _ledger(1000)))["passed"]
    gate = compare.agreement_gate(compare.compare(_service(1000), _ledger(999)))
    assert not gate["passed"]
    assert gate["observed"] == "delivered: service 1000 vs ledger 999 (allowed [999, 999])"
    assert not compare.agreement_gate(compare.compare(_service(990, failed=10), _ledger(1000)))[
        "passed"
    ]


def test_latency_must_fall_in_the_service_bucket_with_the_allowance() -> None:
    ok = compare.compare(_service(10, bucket=(10.0, 25.0)), _ledger(10, p95=49.0))
    assert compare.agreement_gate(ok)["passed"]  # 25 ms bucket top + 25 ms allowance
    off = compare.compare(_service(10, bucket=(10.0, 25.0)), _ledger(10, p95=80.0))
    gate = compare.agreement_gate(off)
    assert not gate["passed"] and gate["observed"].startswith("latency_p95_ms")


def test_memory_growth_after_warmup() -> None:
    flat = [(float(t), 50e6 + (1e6 if t < 5 else 0)) for t in range(40)]  # warm-up bump only
    leak = [(float(t), 50e6 + 1e6 * t) for t in range(40)]
    out = memory.growth({"api": flat, "consumer-0": leak}, 0.0, 39.0, warmup_fraction=0.25)
    assert out["processes"]["api"]["growth"] == 0.0
    assert out["worst"] == "consumer-0"
    # From 60 MB at t=10 to 89 MB at t=39: +48%, at 1 MB/s.
    assert math.isclose(out["growth"], 29e6 / 60e6, rel_tol=1e-9)
    assert math.isclose(out["processes"]["consumer-0"]["slope_bytes_per_s"], 1e6)
    assert out["sum"]["growth"] < out["growth"]  # the sum dilutes one process's leak
