"""`deliverydags history import | trend | ab | gate` end to end: subprocesses, files on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pytest

from deliverydags.history.store import ResultsStore
from tests.conftest import run_cli
from tests.support.history import night, result_doc, stepped_p95

pytestmark = pytest.mark.integration


def write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc))
    return path


def summary_export(p95: float) -> dict:
    """k6 --summary-export layout (threshold value true = crossed)."""
    return {
        "root_group": {"name": "", "checks": {}},
        "metrics": {
            "http_req_duration": {"avg": 50.0, "med": 41.0, "p(95)": p95, "p(99)": 240.0,
                                  "thresholds": {"p(95)<500": False}},
            "http_req_failed": {"passes": 1, "fails": 999, "value": 0.001},
            "iterations": {"count": 900_000, "rate": 500.0},
        },
    }  # fmt: skip


def handle_summary(p95: float) -> dict:
    """handleSummary's data layout (stats under "values", thresholds {"ok": bool})."""
    return {
        "state": {"testRunDurationMs": 1_800_000},
        "metrics": {
            "http_req_duration": {"type": "trend", "values": {"med": 40.0, "p(95)": p95},
                                  "thresholds": {"p(95)<100": {"ok": False}}},
            "http_req_failed": {"type": "rate", "values": {"rate": 0.002}},
            "iterations": {"type": "counter", "values": {"count": 10, "rate": 490.0}},
        },
    }  # fmt: skip


def cli(data: Path, *args: str):
    return run_cli(*args, "--data-dir", str(data), timeout=120)


def test_history_import_results_and_k6_summaries(tmp_path: Path) -> None:
    data, files = tmp_path / "data", tmp_path / "files"
    for i in range(3):
        write(files / f"result-{i}.json", result_doc(night(i)))
    write(files / f"k6/summary-{night(3)}.json", summary_export(130.0))
    dated_by_mtime = write(files / "k6/export.json", summary_export(125.0))
    os.utime(dated_by_mtime, (1741392000, 1741392000))  # 2025-03-08 00:00 UTC
    hs = write(tmp_path / "hs.json", handle_summary(140.0))

    out = cli(data, "history", "import", str(files))
    assert out.returncode == 0, out.stderr
    assert f"{night(3)}  message_soak   k6_summary dated by file name" in out.stdout
    assert "2025-03-08  message_soak   k6_summary dated by mtime" in out.stdout
    assert "imported 5 night(s), 0 replaced" in out.stdout
    out = cli(data, "history", "import", str(hs), "--night", night(3))
    assert out.returncode == 0 and "(replaced)" in out.stdout
    store = ResultsStore(data / "results.duckdb")
    stored = dict(store.nights())
    assert len(stored) == 5  # replaced, never doubled
    k6 = stored[night(3)]
    assert k6["source"] == "k6_summary" and k6["status"] == "failed"  # p(95)<100 not ok
    assert k6["metrics"]["latency_ms.p95"] == 140.0 and k6["metrics"]["throughput"] == 490.0
    assert stored["2025-03-08"]["status"] == "passed"  # summary-export false = not crossed
    assert stored[night(0)]["imported_from"].endswith("result-0.json")

    again = cli(data, "history", "import", str(files / "result-0.json"))
    assert again.returncode == 0 and "1 replaced" in again.stdout
    assert store.count() == 5


def test_history_import_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = write(tmp_path / "bad.json", {"hello": "world"})
    twins = [write(tmp_path / f"twins/{k}.json", result_doc(night(0))) for k in "ab"]
    for args, words in (
        ((str(bad),), "neither a deliverydags result"),
        ((str(tmp_path / "missing.json"),), "no such file or folder"),
        ((str(twins[0].parent),), "are both message_soak on 2025-03-03"),
        ((str(bad), "--night", "03/03/2025"), "not a YYYY-MM-DD date"),
    ):
        out = cli(data, "history", "import", *args)
        assert out.returncode == 2, out
        assert words in out.stderr and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert ResultsStore(data / "results.duckdb").count() == 0


def test_trend_exits_1_until_every_regression_is_acknowledged(tmp_path: Path) -> None:
    data, files = tmp_path / "data", tmp_path / "files"
    for i, v in enumerate(stepped_p95(60, 40, 0.15)):
        write(files / f"{i}.json", result_doc(night(i), p95=v))
    assert cli(data, "history", "import", str(files)).returncode == 0

    report_path = tmp_path / "trend.json"
    out = cli(data, "trend", "--json", str(report_path))
    assert out.returncode == 1, out.stderr
    report = json.loads(report_path.read_text())
    assert set(report) >= {"regressions", "stale"}
    keys = {"metric", "night", "detector", "direction", "magnitude", "p_value"}
    assert all(keys <= set(r) for r in report["regressions"])
    found = {(r["metric"], r["detector"]) for r in report["regressions"]}
    assert found == {("latency_ms.p95", "rule"), ("latency_ms.p95", "change_point")}
    # Every night from the day after the last stored one up to now is overdue.
    assert report["stale"][0]["night"] == night(60)
    assert f"night(s) without a result 25 h on: {night(60)} .. " in out.stdout
    assert "NOT ACKNOWLEDGED" in out.stdout

    bad = cli(data, "trend", "--ack", "latency_ms.p95:2024-01-01")
    assert bad.returncode == 2 and "no regression of latency_ms.p95 on 2024-01-01" in bad.stderr
    acks = [a for r in report["regressions"] for a in ("--ack", f"{r['metric']}:{r['night']}")]
    out = cli(data, "trend", *acks, "--note", "accepted: new TLS termination")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("acknowledged latency_ms.p95") == 2
    assert cli(data, "trend").returncode == 0  # acknowledgements are kept


def test_trend_on_an_empty_store_is_a_setup_error(tmp_path: Path) -> None:
    out = cli(tmp_path / "data", "trend")
    assert out.returncode == 2 and "no stored results of message_soak" in out.stderr


def test_ab(tmp_path: Path) -> None:
    out_path = tmp_path / "ab.json"
    out = run_cli("ab", "--a", "50000:49950", "--b", "50000:49700", "--json", str(out_path))
    assert out.returncode == 0, out.stderr
    assert "B delivers worse than A" in out.stdout
    doc = json.loads(out_path.read_text())
    assert doc["diff"] < 0 and doc["p_value"] < 1e-6 and doc["srm"] is False
    out = run_cli("ab", "--a", "1000:999", "--b", "1000:998", "--mde", "0.001")
    assert out.returncode == 0 and "No significant difference" in out.stdout
    out = run_cli("ab", "--a", "10:11", "--b", "10:10")
    assert out.returncode == 2 and "need 0 <= delivered (11) <= sent (10)" in out.stderr
    out = run_cli("ab", "--a", "10:9", "--b", "10:9", "--split", "1.5")
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def test_gate_reads_the_phase_history_and_exits_1_on_rollback(tmp_path: Path) -> None:
    data, files = tmp_path / "data", tmp_path / "files"
    for i in range(7):
        write(files / f"{i}.json", result_doc(night(i), rate=0.999))
    assert cli(data, "history", "import", str(files)).returncode == 0
    out_path = tmp_path / "gate.json"
    out = cli(data, "gate", "--json", str(out_path), "--record")
    assert out.returncode == 0, out.stderr
    assert "current phase: 95%" in out.stdout and "decision: PROMOTE -> phase 98%" in out.stdout
    assert json.loads(out_path.read_text())["nights_counted"] == [
        night(i) for i in range(6, -1, -1)
    ]

    # A collapse the next night, judged in another process from the recorded history.
    write(files / "7.json", result_doc(night(7), rate=0.90))
    assert cli(data, "history", "import", str(files / "7.json")).returncode == 0
    out = cli(data, "gate")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "current phase: 98%" in out.stdout and "decision: ROLLBACK -> phase 95%" in out.stdout
    assert "computed, not recorded" in out.stdout
    assert "Critical alert: delivery rate 90.00%" in out.stdout

    out = cli(data, "gate", "--rollout", "sms")
    assert out.returncode == 1 and "current phase: internal" in out.stdout  # its own history
    assert cli(tmp_path / "empty", "gate").returncode == 2
