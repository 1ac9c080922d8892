"""Import recorded history into the results store: run result files and k6 summaries.

A load test cannot be re-run for a past night, so history comes from files recorded then:

- **Result files** (contract v1 JSON, e.g. ``deliverydags run --json`` or a run's
  ``result.json``): one night each, dated by ``started_at`` (its UTC date).
- **k6 summaries**, both layouts: ``--summary-export`` and ``handleSummary``'s data. A
  summary carries no start time, so its night is, in order: the ``night`` given (the
  CLI's ``--night``), else the first ``YYYY-MM-DD`` in the file's name
  (``summary-2025-03-04.json``), else the UTC date of the file's mtime (when k6 wrote it,
  i.e. the end of the run; copying files resets it, so name them by night). Only the
  metrics k6 knows are kept: latency percentiles, error rate, throughput.

Importing a night that is already stored replaces it (one row per night and scenario).
Two files of one import that land on the same night and scenario are refused: which one
is the night's would be a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from deliverydags.config import SOAK_SCENARIO
from deliverydags.history.store import ResultsStore
from deliverydags.review.nights import K6_SOURCE
from deliverydags.stats.metrics import extract_k6_metrics

Kind = Literal["result", "k6_summary"]
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


class HistoryImportError(ValueError):
    """A file cannot be imported; the message is one line naming the file."""


class _Gate(BaseModel):
    name: StrictStr
    passed: StrictBool


class _Result(BaseModel):
    """The fields of a result file that the review reads, with their contract v1 types:
    checked before anything is stored, so a bad file is one line, not a traceback later."""

    model_config = ConfigDict(extra="allow")
    scenario: StrictStr = Field(min_length=1)
    started_at: StrictStr
    counts: dict[StrictStr, StrictInt]
    gates: list[_Gate] = []
    latency_ms: dict[StrictStr, StrictFloat | StrictInt | None] = {}
    delivery_rate: StrictFloat | StrictInt | None = None
    status: Literal["passed", "failed", "aborted"] | None = None


class _Verdict(BaseModel):
    model_config = ConfigDict(extra="allow")
    ok: StrictBool


class _K6Metric(BaseModel):
    model_config = ConfigDict(extra="allow")
    # handleSummary: {"ok": bool}; --summary-export: a bare bool.
    thresholds: dict[StrictStr, StrictBool | _Verdict] = {}


class _K6Summary(BaseModel):
    """What the import reads of a k6 summary (the statistics are read leniently)."""

    model_config = ConfigDict(extra="allow")
    metrics: dict[StrictStr, _K6Metric]


def _check(model: type[BaseModel], doc: dict[str, Any], path: Path) -> None:
    try:
        model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(_where(doc, first)) or "the file"
        msg = re.sub(r" or instance of \w+", "", first["msg"]).lower()  # our model's name
        raise HistoryImportError(f"{path}: {where}: {msg}") from None


def _where(doc: Any, error: Any) -> list[str]:
    """The error's path in the file: pydantic's ``loc`` without the names it adds for the
    members of a union (``delivery_rate.float``), with a missing field kept."""
    loc, node, out = error["loc"], doc, []
    for i, part in enumerate(loc):
        if isinstance(node, dict):
            present = part in node
        else:
            present = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not present:
            if error["type"] == "missing" and i == len(loc) - 1:
                out.append(str(part))
            break
        node = node[part]
        out.append(str(part))
    return out


@dataclass(frozen=True)
class Recorded:
    path: Path
    night: str
    scenario: str
    kind: Kind
    night_from: str  # started_at | --night | file name | mtime
    doc: dict[str, Any]


def kind_of(doc: Any) -> Kind | None:
    if not isinstance(doc, dict):
        return None
    if "counts" in doc and "scenario" in doc:
        return "result"
    if isinstance(doc.get("metrics"), dict) and ("root_group" in doc or "state" in doc):
        return "k6_summary"
    if isinstance(doc.get("metrics"), dict) and "http_req_duration" in doc["metrics"]:
        return "k6_summary"
    return None


def _thresholds(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """k6's threshold verdicts: handleSummary has ``{"ok": bool}``; --summary-export a
    bare bool that is ``true`` when the threshold *failed* (k6 #1498, kept as is)."""
    out = []
    for name, metric in (summary.get("metrics") or {}).items():
        for expr, verdict in ((metric or {}).get("thresholds") or {}).items():
            passed = bool(verdict.get("ok")) if isinstance(verdict, dict) else not verdict
            out.append({"metric": name, "threshold": expr, "passed": passed})
    return out


def k6_document(summary: dict[str, Any], scenario: str, path: Path) -> dict[str, Any]:
    thresholds = _thresholds(summary)
    return {
        "scenario": scenario,
        "source": K6_SOURCE,
        "status": "passed" if all(t["passed"] for t in thresholds) else "failed",
        "metrics": extract_k6_metrics(summary),
        "k6": {"thresholds": thresholds},
        "imported_from": str(path),
    }


def result_document(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    out = dict(doc)
    if "status" not in out:  # contract v1 has no status: the gates say it
        gates = out.get("gates") or []
        out["status"] = "passed" if all(g.get("passed") for g in gates) else "failed"
    out["imported_from"] = str(path)
    return out


def _utc_date(text: str, path: Path) -> str:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise HistoryImportError(f"{path}: started_at {text!r} is not an ISO time") from None
    if at.tzinfo is None:
        raise HistoryImportError(f"{path}: started_at {text!r} has no time zone")
    return at.astimezone(UTC).date().isoformat()


def _summary_night(path: Path, night: str | None) -> tuple[str, str]:
    if night:
        return night, "--night"
    match = _DATE_IN_NAME.search(path.name)
    if match:
        try:
            return date.fromisoformat(match.group(1)).isoformat(), "file name"
        except ValueError:
            pass
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return mtime.date().isoformat(), "mtime"


def read_recorded(path: Path, night: str | None = None, scenario: str = SOAK_SCENARIO) -> Recorded:
    """One file as a stored night. ``night`` dates k6 summaries (results carry their own)."""
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise HistoryImportError(f"{path}: cannot read ({exc.strerror})") from None
    except orjson.JSONDecodeError:
        raise HistoryImportError(f"{path}: not JSON") from None
    kind = kind_of(doc)
    if kind == "result":
        if not doc.get("started_at"):
            raise HistoryImportError(f"{path}: result without started_at; cannot date it")
        _check(_Result, doc, path)
        started = _utc_date(doc["started_at"], path)
        doc = result_document(doc, path)
        return Recorded(path, started, doc["scenario"], kind, "started_at", doc)
    if kind == "k6_summary":
        _check(_K6Summary, doc, path)
        when, source = _summary_night(path, night)
        return Recorded(path, when, scenario, kind, source, k6_document(doc, scenario, path))
    raise HistoryImportError(
        f"{path}: neither a deliverydags result (scenario, counts) nor a k6 summary (metrics)"
    )


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders become their ``*.json`` files (recursively), sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.exists():
            out.append(path)
        else:
            raise HistoryImportError(f"{path}: no such file or folder")
    return out


def read_all(
    paths: Sequence[Path], night: str | None = None, scenario: str = SOAK_SCENARIO
) -> list[Recorded]:
    """Every file under ``paths``, checked before anything is stored."""
    files = expand(paths)
    if night is not None:
        try:
            night = date.fromisoformat(night).isoformat()
        except ValueError:
            raise HistoryImportError(f"--night {night!r} is not a YYYY-MM-DD date") from None
    return unique([read_recorded(p, night, scenario) for p in files])


def unique(records: list[Recorded]) -> list[Recorded]:
    """``records`` unchanged when no two share a night and scenario; else refused."""
    seen: dict[tuple[str, str], Path] = {}
    for r in records:
        other = seen.setdefault((r.night, r.scenario), r.path)
        if other != r.path:
            raise HistoryImportError(
                f"{r.path} and {other} are both {r.scenario} on {r.night}; import one of them"
            )
    return records


def store_recorded(store: ResultsStore, records: Sequence[Recorded]) -> None:
    """Store every record, replacing nights already there, in one transaction."""
    if records:
        store.save_many([(r.night, r.doc) for r in records])
