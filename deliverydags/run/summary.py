"""A run's result as a short markdown table: the terminal summary and the UI's metadata."""

from __future__ import annotations

COUNT_ORDER = (
    "attempted", "accepted", "rejected", "indeterminate",
    "delivered", "late", "failed", "lost", "recovered", "unseen",
    "duplicates", "unexpected", "out_of_order", "bad_signature",
)  # fmt: skip


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def markdown(result: dict) -> str:
    counts = result["counts"]
    lat = result.get("latency_ms") or {}
    rate = result.get("delivery_rate")
    lines = [
        f"**{result['scenario']}** {result.get('status', '').upper()} — "
        f"{result['rate']:g} msg/s for {result['duration_s']:g} s against {result['target_url']}",
        "",
        "| count | value |",
        "| --- | ---: |",
        *(f"| {k} | {counts.get(k, 0)} |" for k in COUNT_ORDER),
        "",
        f"delivery rate: {'n/a' if rate is None else f'{rate:.6%}'}; latency ms: "
        + ", ".join(f"{k} {_fmt(lat.get(k))}" for k in ("p50", "p95", "p99", "max")),
        "",
        "| gate | passed | observed | limit |",
        "| --- | --- | ---: | ---: |",
        *(
            f"| {g['name']} | {'yes' if g['passed'] else '**NO**'} | {_fmt(g['observed'])} "
            f"| {_fmt(g['limit'])} |"
            for g in result["gates"]
        ),
    ]
    samples = {k: v for k, v in (result.get("samples") or {}).items() if v}
    if samples:
        lines += ["", "What went wrong (first ids):"]
        lines += [
            f"- {k}: {', '.join(v[:5])}{' …' if len(v) > 5 else ''}" for k, v in samples.items()
        ]
    return "\n".join(lines)
