"""The nightly review: what the analysis assets and the CLI compute from the results store.

Plain modules, no dagster (the assets are wiring over these, the CLI calls them directly):

- ``nights``: stored results -> per-night metrics and ``History``.
- ``trend``: both detectors for one night with once-only reporting; the CLI's overview.
- ``gate``: the rollout decision for one night with the phase history from the store.
- ``baseline``: a week's (or pinned nights') baseline; tonight compared with it.
- ``ab`` / ``windows``: A/B and time-window reports from one night's result.
- ``tables``: small markdown helpers for metadata people read.
"""
