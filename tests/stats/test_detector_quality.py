"""Precision and recall of both detectors over many seeded series with known steps.

Each series is one standard metric with its realistic noise (``synthetic``), 1 % outlier
nights, 150 nights; half of them get a step of 10-30 % (the bad way) somewhere in nights
40-139. A detection is a true positive when it lands near the step:

- rule: the regression is confirmed within the step's first 7 nights (ideally its 3rd);
- change point: the change's night is within 3 nights of the step.

Anything else is a false positive; a step without a true positive is a miss. Scores are
kept overall and apart for the count metrics (Poisson noise). The floors
asserted are a little under what was measured when this was written (printed with -s), so
a change that makes the detectors worse fails here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from bench import synthetic
from deliverydags.stats import rule, trend
from deliverydags.stats.history import History
from deliverydags.stats.metrics import METRIC_NAMES

NIGHTS = 150
SERIES = 200
DAYS = [date(2025, 1, 1) + timedelta(days=i) for i in range(NIGHTS)]


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / max(1, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self.tp / max(1, self.tp + self.fn)


def run() -> dict[str, Score]:
    """Scores per detector, overall and for the count metrics (Poisson noise) apart."""
    rng = np.random.default_rng(20250101)
    scores = {
        f"{d}{part}": Score()
        for d in ("rule", "change_point")
        for part in ("", " counts", " others")
    }
    for i in range(SERIES):
        metric = METRIC_NAMES[(i // 2) % len(METRIC_NAMES)]
        part = " counts" if metric.startswith("counts.") else " others"
        at = int(rng.integers(40, NIGHTS - 10)) if i % 2 else None
        step = float(rng.uniform(0.10, 0.30)) if at is not None else 0.0
        x = synthetic.series(rng, metric, NIGHTS, at, step)
        h = History.from_array(DAYS, [metric], x[:, None])

        rule_nights = [
            e.night_index
            for e in rule.scan(h.values, h.worse_sign).events
            if e.kind == "regression"
        ]
        cp_nights = [
            DAYS.index(date.fromisoformat(c.night))
            for c in trend.detect_changes(h)
            if c.direction == "worse"
        ]
        for name, found, near in (
            ("rule", rule_nights, lambda n, a=at: a is not None and a <= n < a + 7),
            ("change_point", cp_nights, lambda n, a=at: a is not None and abs(n - a) <= 3),
        ):
            hits = [n for n in found if near(n)]
            for key in (name, name + part):
                scores[key].tp += bool(hits)
                scores[key].fp += len(found) - min(len(hits), 1)
                scores[key].fn += at is not None and not hits
    return scores


def test_precision_and_recall() -> None:
    scores = run()
    for name, s in scores.items():
        print(
            f"{name:>20}: precision {s.precision:.3f} recall {s.recall:.3f} "
            f"(tp {s.tp}, fp {s.fp}, missed {s.fn}) over {SERIES} series of {NIGHTS} nights"
        )
    # Measured (seed 20250101): change point 0.843 / 0.700 overall, 0.967 / 0.967 without
    # the counts; rule 0.980 / 0.800 without the counts. On Poisson counts of a few per
    # night the relative rule fires on noise (precision 0.046): 10 % of 3 is not a signal.
    assert scores["change_point"].precision >= 0.80
    assert scores["change_point"].recall >= 0.65
    assert scores["change_point others"].precision >= 0.93
    assert scores["change_point others"].recall >= 0.93
    assert scores["rule others"].precision >= 0.95
    assert scores["rule others"].recall >= 0.75
    assert scores["rule"].recall >= 0.65
