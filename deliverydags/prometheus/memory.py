"""Memory growth of the target's processes over a run (pure): the RSS after a warm-up,
a least-squares line through it, and growth = fitted rise over the fitted start."""

from __future__ import annotations

from scipy import stats

MIN_SAMPLES = 3


def growth(
    series: dict[str, list[tuple[float, float]]],
    start_s: float,
    end_s: float,
    warmup_fraction: float,
) -> dict:
    """Per process and for the sum of all: samples after ``start + warmup_fraction *
    (end - start)``, the slope (bytes/s, %/h) and growth (fraction) over that span.
    ``worst`` is the process that grew most: a leak in one process out of several
    must not be diluted by the others."""
    cut = start_s + warmup_fraction * (end_s - start_s)
    per = {name: _fit(points, cut, end_s) for name, points in series.items()}
    total: dict[float, float] = {}
    for points in series.values():
        for t, v in points:
            total[t] = total.get(t, 0.0) + v
    summed = _fit(sorted(total.items()), cut, end_s) if len(series) > 1 else None
    fitted = {k: v for k, v in per.items() if v is not None}
    worst = max(fitted, key=lambda k: fitted[k]["growth"]) if fitted else None
    return {
        "warmup_until_s": cut,
        "processes": per,
        "sum": summed,
        "worst": worst,
        "growth": fitted[worst]["growth"] if worst else None,
    }


def _fit(points: list[tuple[float, float]], cut: float, end_s: float) -> dict | None:
    kept = [(t, v) for t, v in points if cut <= t <= end_s]
    if len(kept) < MIN_SAMPLES:
        return None
    ts = [t for t, _ in kept]
    vs = [v for _, v in kept]
    fit = stats.linregress(ts, vs)
    first = fit.intercept + fit.slope * ts[0]
    span = ts[-1] - ts[0]
    return {
        "samples": len(kept),
        "rss_start_bytes": vs[0],
        "rss_end_bytes": vs[-1],
        "rss_max_bytes": max(vs),
        "slope_bytes_per_s": float(fit.slope),
        "slope_pct_per_h": float(100 * fit.slope * 3600 / first) if first > 0 else None,
        "growth": float(fit.slope * span / first) if first > 0 else None,
        "r_squared": float(fit.rvalue**2),
    }
