"""The nightly review assets on a temp results store seeded with synthetic nights (no k6)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import orjson
import pytest

from deliverydags.defs.assets.ab import ab_comparison
from deliverydags.defs.assets.baseline import baseline_snapshot, weekly_partitions
from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.assets.gate import phase_gate
from deliverydags.defs.assets.trend import tonight_vs_baseline, trend_comparison
from deliverydags.defs.assets.windows import delivery_windows
from deliverydags.history.store import ResultsStore
from deliverydags.notify.messages import pages
from tests.support.history import night, resources, result_doc, seed, stepped_p95


def materialize(
    assets: list,
    n: str,
    data_dir: Path,
    instance: dg.DagsterInstance,
    config: dict | None = None,
    **kw: object,
) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {k: {"config": v} for k, v in (config or {}).items()}}
    return dg.materialize(
        assets,
        partition_key=n,
        resources=resources(data_dir),
        instance=instance,
        run_config=run_config,
        **kw,
    )


def meta(result: dg.ExecuteInProcessResult, node: str) -> dict:
    (event,) = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as inst:
        yield inst


def test_a_change_is_reported_once_across_nightly_runs(tmp_path: Path, instance) -> None:
    p95 = stepped_p95(48, 40, 0.15)
    store = seed(tmp_path, [result_doc(night(i), p95=v) for i, v in enumerate(p95)])
    reported: dict[str, list[tuple[str, str]]] = {}
    for i in range(39, 46):
        m = meta(materialize([trend_comparison], night(i), tmp_path, instance), "trend_comparison")
        rows = m["report"]["regressions"]
        assert m["new_regressions"] == len(rows)
        reported[night(i)] = [(r["detector"], r["metric"]) for r in rows]
    found = [(n, d) for n, rows in reported.items() for d, _ in rows]
    # The seed rule on the step's 3rd night, the change point once confirmed 3 runs in a row.
    assert found == [(night(42), "rule"), (night(43), "change_point")]
    assert {
        r["metric"] for rows in reported.values() for r in [dict(metric=m) for _, m in rows]
    } == {"latency_ms.p95"}
    assert len(store.findings("message_soak")) == 2
    # Re-running the confirming night (new instance: the store is the memory) reproduces its
    # report without a second record; re-running a later night reports nothing again.
    with dg.instance_for_test() as fresh:
        again = meta(
            materialize([trend_comparison], night(43), tmp_path, fresh), "trend_comparison"
        )
        later = meta(
            materialize([trend_comparison], night(47), tmp_path, fresh), "trend_comparison"
        )
    assert [r["detector"] for r in again["report"]["regressions"]] == ["change_point"]
    assert later["new_regressions"] == 0 and later["open_regressions"] == 2
    assert len(store.findings("message_soak")) == 2


def test_stale_nights_are_flagged(tmp_path: Path, instance) -> None:
    docs = [result_doc(night(i)) for i in range(10) if i != 4]
    seed(tmp_path, docs)
    result = materialize([trend_comparison], night(9), tmp_path, instance)
    m = meta(result, "trend_comparison")
    assert m["stale_nights"] == 1 and m["report"]["stale"][0]["night"] == night(4)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "results_fresh" and not check.passed


def run_gate(data_dir: Path, n: str, instance, **config: object) -> dict:
    result = materialize([phase_gate], n, data_dir, instance, {"phase_gate": config})
    return meta(result, "phase_gate")


def test_gate_promotes_after_seven_good_nights_resets_and_rolls_back(tmp_path: Path) -> None:
    rates = [0.97] * 7 + [0.99, 0.97, 0.99, 0.90]
    store = seed(tmp_path, [result_doc(night(i), rate=r) for i, r in enumerate(rates)])
    decisions = []
    with dg.instance_for_test() as first:
        for i in range(7):
            decisions.append(run_gate(tmp_path, night(i), first))
    assert [d["decision"] for d in decisions] == ["hold"] * 6 + ["promote"]
    assert decisions[-1]["phase"] == "98%" and decisions[-1]["nights_counted"] == 7
    # A new instance (as after a restart): the phase comes from the results store.
    with dg.instance_for_test() as second:
        for i in range(7, len(rates)):
            decisions.append(run_gate(tmp_path, night(i), second))
    good, bad, good_again, collapse = decisions[7:]
    assert (good["phase_before"], good["decision"], good["nights_counted"]) == ("98%", "hold", 1)
    assert (bad["decision"], bad["nights_counted"]) == ("hold", 0)  # 0.97 < 98 %: resets
    assert "0.97 is below 0.98" in bad["reasons"]
    assert (good_again["decision"], good_again["nights_counted"]) == ("hold", 1)
    assert (collapse["decision"], collapse["phase_before"], collapse["phase"]) == (
        "rollback",
        "98%",
        "95%",
    )
    assert "Critical alert: delivery rate 90.00%" in collapse["reasons"]
    # The decision records the rate it judged with: the night's pages follow the same rule.
    stored_gate = store.reports(night(10), "message_soak")["gate:delivery"]
    assert stored_gate["critical_delivery_rate"] == 0.95
    tonight = store.load(night(10))
    paged = pages(night(10), "message_soak", tonight, [stored_gate])
    assert sorted(p.key.split(":")[1] for p in paged) == ["delivery", "rollback"]
    assert "previous phase's gate (95%)" in collapse["reasons"]
    # Re-running a night replaces its decision, never doubles it.
    with dg.instance_for_test() as third:
        assert run_gate(tmp_path, night(6), third)["decision"] == "promote"
    history = store.phase_history("delivery", "message_soak")
    assert [h["night"] for h in history] == [night(i) for i in range(len(rates))]


def test_sms_rollout_needs_opt_out_rate_and_slo_scoring(tmp_path: Path, instance) -> None:
    seed(tmp_path, [result_doc(night(i), opt_out_rate=0.01, p95=100.0) for i in range(7)])
    m = run_gate(tmp_path, night(6), instance, rollout="sms")
    assert (m["decision"], m["phase_before"], m["phase"]) == ("promote", "internal", "beta")
    slo = {
        "rollout": "sms",
        "slo_objectives": [
            {"sli": "latency_ms.p95", "pass_criteria": [["<=90"]], "weight": 1.0},
            {"sli": "delivery_rate", "pass_criteria": [[">=0.99"]], "key_sli": True},
        ],
    }
    seed(tmp_path / "slo", [result_doc(night(i), opt_out_rate=0.01, p95=100.0) for i in range(7)])
    with dg.instance_for_test() as other:
        m = run_gate(tmp_path / "slo", night(6), other, **slo)
    assert m["decision"] == "hold" and m["slo_result"] == "fail"
    assert m["slo_score"] == pytest.approx(50.0)


def test_baseline_week_reports_missing_nights_and_pins(tmp_path: Path, instance) -> None:
    p95 = [100, 102, 98, 101, 99, 100, 103, 100, 99, 101, 98, 102, 100, 101]
    docs = [result_doc(night(i), p95=v) for i, v in enumerate(p95) if i != 2]
    seed(tmp_path, [*docs, result_doc(night(14), p95=160.0)])
    week = weekly_partitions.get_partition_key_for_timestamp(
        datetime(2025, 3, 5, 12, tzinfo=UTC).timestamp()
    )
    assert week == night(0)
    m = meta(materialize([baseline_snapshot], week, tmp_path, instance), "baseline_snapshot")
    assert m["nights_missing"] == 1 and m["missing_nights"] == night(2)
    assert m["nights_present"] == 6 and m["pinned"] is False
    assert m["latency_ms_p95_mean"] == pytest.approx(np.mean([100, 102, 101, 99, 100, 103]))
    pinned = materialize(
        [baseline_snapshot], night(7), tmp_path, instance,
        {"baseline_snapshot": {"pinned_week": night(0)}},
    )  # fmt: skip
    m = meta(pinned, "baseline_snapshot")
    assert m["pinned"] is True and m["baseline_from"] == f"pinned week {night(0)}"
    # A backfill of several weeks is one run over the range (single-run policy).
    ranged = dg.materialize(
        [baseline_snapshot],
        resources=resources(tmp_path),
        instance=instance,
        tags={"dagster/asset_partition_range_start": night(0),
              "dagster/asset_partition_range_end": night(7)},
    )  # fmt: skip
    assert len(ranged.asset_materializations_for_node("baseline_snapshot")) == 2
    store = ResultsStore(tmp_path / "results.duckdb")
    week, latest = store.latest_baseline("message_soak", before=night(14))
    assert week == night(7) and latest["pinned"] is False and latest["missing"] == []
    # Tonight (160 ms against ~100) breaches the latest weekly baseline: the check says so.
    defs = dg.Definitions(
        assets=[message_soak],
        asset_checks=[tonight_vs_baseline],
        jobs=[
            dg.define_asset_job(
                "check_only",
                selection=dg.AssetSelection.checks(tonight_vs_baseline),
            )
        ],
        resources=resources(tmp_path),
    )
    # Only the check runs (message_soak would run k6). execute_in_process cannot infer
    # partitions from a check-only selection, so the partition goes in as the run tag.
    check = defs.resolve_job_def("check_only").execute_in_process(
        tags={"dagster/partition": night(14)}, instance=instance
    )
    (evaluation,) = check.get_asset_check_evaluations()
    assert evaluation.check_name == "tonight_vs_baseline" and not evaluation.passed
    assert "latency_ms.p95 160 is" in evaluation.description


def test_ab_comparison_verdicts(tmp_path: Path, instance) -> None:
    arms = {
        "llm": {"attempted": 50_000, "accepted": 50_000, "delivered": 49_950, "late": 0},
        "template": {"attempted": 50_000, "accepted": 50_000, "delivered": 49_700, "late": 0},
    }
    seed(tmp_path, [result_doc(night(0), by_variant=arms), result_doc(night(1))])
    m = meta(materialize([ab_comparison], night(0), tmp_path, instance), "ab_comparison")
    assert m["variants"] == 2
    assert m["verdict"].startswith("[A = llm, B = template] B delivers worse than A")
    assert m["template_p_value"] < 1e-6 and m["template_srm"] is False
    m = meta(materialize([ab_comparison], night(1), tmp_path, instance), "ab_comparison")
    assert m["variants"] == 0 and m["verdict"].startswith("Fewer than 2 variants")
    assert "template_p_value" not in m


def write_run_files(run_dir: Path, t0_ms: float, lost_minute: int) -> int:
    """10 minutes at 10 msg/s; every message of minute ``lost_minute`` gets no receipt."""
    run_dir.mkdir(parents=True)
    sends, receipts, n = [], [], 0
    for i in range(6000):
        sent_ms = t0_ms + i * 100.0
        sends.append(
            {
                "dd": 1,
                "id": f"m{i}",
                "stream": f"s{i % 10}",
                "seq": i // 10,
                "sent_ms": sent_ms,
                "class": "accepted",
                "status": 202,
                "variant": "",
            }
        )
        if int(i // 600) != lost_minute:
            receipts.append(
                {
                    "n": n,
                    "recv_ns": int((sent_ms + 50) * 1e6),
                    "id": f"m{i}",
                    "stream": f"s{i % 10}",
                    "seq": i // 10,
                    "status": "delivered",
                    "delivered_at": "2025-03-03T02:10:00Z",
                }
            )
            n += 1  # fmt: skip
    (run_dir / "sends.ndjson").write_bytes(b"\n".join(orjson.dumps(s) for s in sends) + b"\n")
    (run_dir / "receipts.ndjson").write_bytes(b"\n".join(orjson.dumps(r) for r in receipts) + b"\n")
    return int((t0_ms + 6000 * 100 + 60_000) * 1e6)


def test_delivery_windows_from_run_files(tmp_path: Path, instance) -> None:
    run_dir = tmp_path / "runs" / night(0) / "r1"
    close_ns = write_run_files(run_dir, 1_740_967_980_000.0, lost_minute=4)
    files = {"run_dir": str(run_dir), "closed_at_ns": close_ns}
    seed(tmp_path, [result_doc(night(0), rate=0.9, files=files), result_doc(night(1))])
    m = meta(materialize([delivery_windows], night(0), tmp_path, instance), "delivery_windows")
    assert m["available"] is True and m["messages"] == 6000 and m["good"] == 5400
    assert m["worst_rate_1m"] < 0.01  # the window of the lost minute
    assert m["worst_rate_5m"] == pytest.approx(0.8, abs=0.01)
    assert m["worst_rate_1h"] == pytest.approx(0.8, abs=0.01)  # at the end of minute 4
    assert m["burn_alerts_page"] >= 1
    # A night without run files (imported history) says so instead of inventing numbers.
    m = meta(materialize([delivery_windows], night(1), tmp_path, instance), "delivery_windows")
    assert m["available"] is False and "no per-message run files" in m["note"]


@pytest.mark.integration  # a second process holds the store
def test_store_waits_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    """Parallel steps of the nightly run are separate processes; DuckDB lets one of them
    hold the file. A second one waits for the lock instead of failing."""
    import subprocess
    import sys
    import time

    store = seed(tmp_path, [result_doc(night(0))])
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " time.sleep(1.5); c.close()", str(store.path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    store.save_report(night(0), "message_soak", "trend", {"ok": True})
    waited = time.monotonic() - start
    holder.wait(timeout=10)
    assert store.load_report(night(0), "message_soak", "trend") == {"ok": True}
    assert 0.5 < waited < 10
