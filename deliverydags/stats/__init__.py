"""Statistics behind the nightly trend, gate and A/B reports.

Plain modules, no dagster: the assets, the CLI and the Slack report call these.

- ``metrics``: the metrics of one night, from a run result or a k6 summary.
- ``history``: nights x metrics as a numpy matrix, missing nights as NaN.
- ``baseline``: mean / std / median / n of a week (or a pinned set of nights).
- ``rule``: the seed's rule (10 % worse than the last 7 nights, 3 nights running).
- ``edivisive``: E-divisive change points with a permutation test.
- ``trend``: both detectors per metric, new-change bookkeeping, staleness, the report.
- ``gates`` / ``slo``: rollout phase decisions, Keptn-style SLO scoring.
- ``ab``: two-arm delivery comparison.
- ``windows``: rolling delivery rates and SRE-workbook burn-rate alerts.
"""
