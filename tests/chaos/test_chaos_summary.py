"""The nightly Slack summary lists the night's stored chaos scenarios with their
figures (posted to a local HTTP server standing in for Slack's API)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from tests.support.history import night, result_doc, seed
from tests.support.notify import fake, posts, run_night, slack  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def chaos_doc(n: str, scenario: str, status: str, **chaos: object) -> dict:
    figures = {
        "fault": scenario.removeprefix("chaos_"),
        "injected_at": f"{n}T02:30:06.000Z",
        "released_at": f"{n}T02:30:06.000Z",
        "time_to_detect_s": 0.9,
        "time_to_recover_s": 1.4,
        "lost": 0,
        "duplicates": 3,
        "dlq": 0,
        **chaos,
    }
    return {**result_doc(n), "scenario": scenario, "status": status, "chaos": figures}


def test_summary_lists_each_chaos_scenario_of_the_night(tmp_path: Path, fake) -> None:  # noqa: F811
    soak = [result_doc(night(i)) for i in range(7)]
    chaos = [
        chaos_doc(night(6), "chaos_consumer_kill", "passed"),
        chaos_doc(
            night(6),
            "chaos_redis_outage",
            "failed",
            fault="redis_outage",
            time_to_detect_s=0.02,
            time_to_recover_s=None,
            lost=4,
            duplicates=0,
            dlq=12,
        ),
        chaos_doc(night(5), "chaos_consumer_kill", "passed", lost=99),  # another night
    ]
    seed(tmp_path, soak + chaos)
    with dg.instance_for_test() as instance:
        assert run_night(tmp_path, night(6), instance, slack=slack(fake.url)).success
    (summary,) = [p for p in posts(fake) if p["blocks"][0]["type"] == "header"]
    assert summary["text"].endswith("; chaos 1/2 passed")
    (section,) = [
        b["text"]["text"]
        for b in summary["blocks"]
        if b.get("text", {}).get("text", "").startswith("*Chaos*")
    ]
    lines = section.splitlines()[1:]
    assert lines == [
        ":white_check_mark: `chaos_consumer_kill` (consumer_kill): PASSED — detect 0.9 s, "
        "recover 1.4 s, lost 0, duplicates 3, DLQ 0",
        ":x: `chaos_redis_outage` (redis_outage): FAILED — detect 0.0 s, recover not "
        "recovered, lost 4, duplicates 0, DLQ 12",
    ]


def test_summary_without_chaos_results_has_no_chaos_section(tmp_path: Path, fake) -> None:  # noqa: F811
    seed(tmp_path, [result_doc(night(i)) for i in range(7)])
    with dg.instance_for_test() as instance:
        assert run_night(tmp_path, night(6), instance, slack=slack(fake.url)).success
    (summary,) = [p for p in posts(fake) if p["blocks"][0]["type"] == "header"]
    assert "chaos" not in summary["text"]
    assert not [b for b in summary["blocks"] if "*Chaos*" in b.get("text", {}).get("text", "")]


def test_chaos_stored_after_the_summary_goes_out_once_on_its_own(
    tmp_path: Path,
    fake,  # noqa: F811
) -> None:
    store = seed(tmp_path, [result_doc(night(i)) for i in range(7)])
    with dg.instance_for_test() as instance:
        assert run_night(tmp_path, night(6), instance, slack=slack(fake.url)).success
        (first,) = [p["text"] for p in posts(fake) if p["text"].startswith("message_soak")]
        assert "chaos" not in first  # nothing stored yet when the summary went
        store.save(night(6), chaos_doc(night(6), "chaos_consumer_kill", "passed"))
        for _ in range(2):  # the review runs again after the chaos job, then once more
            assert run_night(tmp_path, night(6), instance, slack=slack(fake.url)).success
    chaos_posts = [p for p in posts(fake) if p["text"].startswith("chaos ")]
    assert [p["text"] for p in chaos_posts] == [f"chaos {night(6)}: 1/1 passed"]
    lines = chaos_posts[0]["blocks"][1]["text"]["text"].splitlines()
    assert lines[1].startswith(":white_check_mark: `chaos_consumer_kill` (consumer_kill)")
    assert len([p for p in posts(fake) if p["blocks"][0]["type"] == "header"]) == 2


def test_chaos_in_the_summary_is_not_announced_again(tmp_path: Path, fake) -> None:  # noqa: F811
    seed(
        tmp_path,
        [result_doc(night(i)) for i in range(7)]
        + [chaos_doc(night(6), "chaos_consumer_kill", "passed")],
    )
    with dg.instance_for_test() as instance:
        for _ in range(2):
            assert run_night(tmp_path, night(6), instance, slack=slack(fake.url)).success
    texts = [p["text"] for p in posts(fake)]
    assert [t for t in texts if "chaos" in t] == [
        next(t for t in texts if t.startswith("message_soak"))
    ]
