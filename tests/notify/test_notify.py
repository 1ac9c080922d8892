"""Slack and PagerDuty notifications against local servers standing in for their APIs.

The Slack stand-in is a plain HTTP server on 127.0.0.1 given to slack-sdk's WebClient as
its base_url; what it received is asserted (method, channel, blocks, no repeats).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from deliverydags.defs.assets.gate import phase_gate
from deliverydags.defs.resources import PagerDutyResource
from tests.support.history import night, resources, result_doc, seed, stepped_p95
from tests.support.notify import fake, posts, run_night, slack  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

MEASUREMENTS = ("trend_comparison", "phase_gate", "ab_comparison", "delivery_windows")


def pagerduty(url: str, key: str | None = "R0UTING") -> PagerDutyResource:
    return PagerDutyResource(routing_key=key, url=url + "v2/enqueue", max_retries=2,
                             backoff_s=0.01)  # fmt: skip


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def failure(result: dg.ExecuteInProcessResult) -> str:
    (event,) = [
        e for e in result.get_step_failure_events() if e.step_key == "nightly_notifications"
    ]
    return event.step_failure_data.user_failure_data.description


@pytest.fixture
def stepped(tmp_path: Path) -> Path:
    """45 nights, latency p95 up 15 % from night 40: a rule regression on night 42, a
    change point confirmed on night 43."""
    seed(tmp_path, [result_doc(night(i), p95=v) for i, v in enumerate(stepped_p95(45, 40, 0.15))])
    return tmp_path


@pytest.fixture
def week(tmp_path: Path) -> Path:
    """A week of ordinary nights: enough for a summary to be due."""
    seed(tmp_path, [result_doc(night(i)) for i in range(7)])
    return tmp_path


def test_summary_and_one_message_per_regression_never_repeated(stepped: Path, fake) -> None:  # noqa: F811
    with dg.instance_for_test() as instance:
        for i in (41, 42, 42, 43):
            result = run_night(stepped, night(i), instance, slack=slack(fake.url))
            assert result.success
    got = posts(fake)
    assert {r["method"] for r in fake.requests} == {"POST"}
    assert {r["path"] for r in fake.requests} == {"/api/chat.postMessage"}
    assert {r["auth"] for r in fake.requests} == {"Bearer xoxb-test"}
    assert {p["channel"] for p in got} == {"#delivery"}
    texts = [p["text"] for p in got]
    assert len(texts) == len(set(texts)), "a message was sent twice"
    summaries = [p for p in got if p["blocks"][0]["type"] == "header"]
    assert [s["blocks"][0]["text"]["text"] for s in summaries] == [
        f"message_soak — {night(i)}" for i in (41, 42, 43)
    ]
    regressions = [t for t in texts if t.startswith("Regression")]
    assert len(regressions) == 2
    assert "`latency_ms.p95`" in regressions[0] and "rule" in regressions[0]
    assert "change_point" in regressions[1]
    links = summaries[1]["blocks"][-1]["elements"][0]["text"]
    assert "<http://ui/runs/" in links and f"message_soak?partition={night(42)}" in links
    trend = next(
        b for b in summaries[1]["blocks"] if "*Trend*" in b.get("text", {}).get("text", "")
    )
    assert "latency_ms.p95" in trend["text"]["text"]


def test_gate_change_and_pagerduty_pages_once(tmp_path: Path, fake) -> None:  # noqa: F811
    rates = [0.999] * 7 + [0.90]
    seed(tmp_path, [result_doc(night(i), rate=r) for i, r in enumerate(rates)])
    with dg.instance_for_test() as instance:
        for i in (6, 7, 7):
            res = {"slack": slack(fake.url), "pagerduty": pagerduty(fake.url)}
            assert run_night(tmp_path, night(i), instance, **res).success
    slack_posts = [r["json"] for r in fake.requests if r["path"].startswith("/api/")]
    pd_events = [r["json"] for r in fake.requests if r["path"] == "/v2/enqueue"]
    gate_texts = [p["text"] for p in slack_posts if p["text"].startswith(("promote", "rollback"))]
    assert gate_texts == ["promote: 95% -> 98%", "rollback: 98% -> 95%"]
    assert [e["dedup_key"] for e in pd_events] == [
        f"pd:delivery:message_soak:{night(7)}",
        f"pd:rollback:delivery:message_soak:{night(7)}",
    ]
    assert {e["routing_key"] for e in pd_events} == {"R0UTING"}
    assert {e["event_action"] for e in pd_events} == {"trigger"}
    assert {e["payload"]["severity"] for e in pd_events} == {"critical"}
    assert "90.00%" in pd_events[0]["payload"]["summary"]


@pytest.mark.parametrize(
    ("status", "body", "expected", "tries"),
    [
        (500, "oops", "Slack answered HTTP 500 to chat.postMessage", 3),
        (200, {"ok": False, "error": "invalid_auth"}, "invalid_auth (the token was refused)", 1),
    ],
)
def test_slack_failing_fails_only_the_notification(
    week: Path,
    fake,  # noqa: F811
    status: int,
    body,
    expected: str,
    tries: int,
) -> None:
    fake.status, fake.body = status, body
    with dg.instance_for_test() as instance:
        result = run_night(week, night(6), instance, slack=slack(fake.url))
    assert not result.success
    assert materialized(result) == set(MEASUREMENTS)  # the measurements stand
    line = failure(result)
    assert expected in line and "\n" not in line
    assert "only these notifications are missing" in line
    assert len(fake.requests) == tries  # retried with backoff on 500, not on a refused token


def test_slack_unreachable(week: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with dg.instance_for_test() as instance:
        result = run_night(week, night(6), instance, slack=slack(f"http://127.0.0.1:{port}/"))
    assert materialized(result) == set(MEASUREMENTS)
    line = failure(result)
    assert line.startswith("Slack failed (") and "unreachable" in line and "\n" not in line


def test_pagerduty_down_fails_only_the_notification(tmp_path: Path, fake) -> None:  # noqa: F811
    seed(tmp_path, [result_doc(night(0), rate=0.9)])
    fake.status, fake.body = 503, {"status": "unavailable"}
    with dg.instance_for_test() as instance:
        result = run_night(
            tmp_path, night(0), instance, slack=slack(fake.url, token=None),
            pagerduty=pagerduty(fake.url),
        )  # fmt: skip
    line = failure(result)
    # Two pages due (delivery below 95 %, rollback); after the first fails 3 times (1 + 2
    # retries) the second is not tried: PagerDuty is down, it stays for the next run.
    assert line.startswith("PagerDuty failed (2 message(s) not sent)") and "HTTP 503" in line
    assert len(fake.requests) == 3
    assert materialized(result) == set(MEASUREMENTS)


def test_no_slack_token_does_nothing_and_says_so(week: Path, fake) -> None:  # noqa: F811
    with dg.instance_for_test() as instance:
        result = run_night(week, night(6), instance)
    assert result.success
    (event,) = result.asset_materializations_for_node("nightly_notifications")
    assert event.metadata["slack"].value == "not configured"
    assert "Slack not configured" in event.metadata["status"].value
    assert fake.requests == []


def test_stale_sensor_alerts_once_per_missing_night(tmp_path: Path, fake) -> None:  # noqa: F811
    from datetime import UTC, datetime, timedelta

    from deliverydags.defs.jobs.review import stale_results_sensor

    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=k)).isoformat() for k in range(6, -1, -1)]
    missing = days[3]
    seed(tmp_path, [result_doc(d) for d in days if d != missing])
    res = resources(tmp_path, slack=slack(fake.url))
    for _ in range(2):
        with dg.build_sensor_context(resources=res) as context:
            skip = stale_results_sensor(context)
        assert isinstance(skip, dg.SkipReason) and f"No result for {missing}" in skip.skip_message
    (post,) = posts(fake)  # the second tick sent nothing again
    assert post["text"].startswith(f"No message_soak result for {missing}")
    assert post["channel"] == "#delivery"


def test_gate_action_webhook_is_signed_and_called_once(tmp_path: Path, fake) -> None:  # noqa: F811
    from deliverydags.defs.resources import ActionWebhookResource
    from deliverydags.formats.signing import HEADER, verify

    seed(tmp_path, [result_doc(night(i)) for i in range(7)])
    res = resources(tmp_path, action_webhook=ActionWebhookResource(secret="s3cret", backoff_s=0.01))
    config = {"ops": {"phase_gate": {"config": {"action_webhook_url": fake.url + "rollout"}}}}
    with dg.instance_for_test() as instance:
        for _ in range(2):  # the re-run replaces the decision and does not call again
            result = dg.materialize(
                [phase_gate], partition_key=night(6), resources=res, instance=instance,
                run_config=config,
            )  # fmt: skip
            (check,) = result.get_asset_check_evaluations()
            assert check.check_name == "action_webhook" and check.passed
    (call,) = fake.requests
    assert call["path"] == "/rollout"
    assert verify(b"s3cret", call["headers"][HEADER], call["raw"])
    assert not verify(b"other", call["headers"][HEADER], call["raw"])
    assert (
        call["headers"]["Idempotency-Key"] == f"action:delivery:message_soak:{night(6)}:promote:98%"
    )
    assert call["json"]["decision"] == "promote" and call["json"]["phase_after"] == "98%"


def test_gate_action_webhook_down_fails_its_check_not_the_decision(tmp_path: Path, fake) -> None:  # noqa: F811
    from deliverydags.defs.resources import ActionWebhookResource

    fake.status = 502
    seed(tmp_path, [result_doc(night(i)) for i in range(7)])
    res = resources(tmp_path, action_webhook=ActionWebhookResource(secret="s", backoff_s=0.01,
                                                                   max_retries=1))  # fmt: skip
    config = {"ops": {"phase_gate": {"config": {"action_webhook_url": fake.url}}}}
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [phase_gate], partition_key=night(6), resources=res, instance=instance,
            run_config=config,
        )  # fmt: skip
    assert result.asset_materializations_for_node("phase_gate")  # the decision stands
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "failed after 2 tries: HTTP 502" in check.description


@dataclass
class BrokenAPI:
    """Answers each request with the next of ``answers`` (the last one repeats):
    ``bad_status_line``, ``truncated`` (Content-Length longer than the body sent) or ``ok``."""

    answers: list[str]
    paths: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def broken() -> Iterator[BrokenAPI]:
    api = BrokenAPI(["ok"])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            api.paths.append(self.path)
            answer = api.answers.pop(0) if len(api.answers) > 1 else api.answers[0]
            self.close_connection = True
            if answer == "bad_status_line":
                self.wfile.write(b"NOT-HTTP garbage\r\n\r\n")
                return
            body = b'{"ok": true, "ts": "1.0", "status": "success", "dedup_key": "k"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) + 100 * (answer == "truncated")))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield api
    server.shutdown()
    server.server_close()


SECRET_PATH, SECRET_QUERY = "/hooks/T0KEN-PATH", "token=T0KEN-QUERY"


def assert_url_hidden(text: str) -> None:
    assert "T0KEN" not in text and "/hooks" not in text and "/api" not in text, text


@pytest.mark.parametrize("answer", ["bad_status_line", "truncated"])
def test_broken_answers_are_retried_and_errors_name_only_the_host(
    broken: BrokenAPI, answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    from deliverydags.defs.resources.notify import NotificationError

    caplog.set_level(logging.DEBUG)
    url = f"{broken.url}{SECRET_PATH}?{SECRET_QUERY}"
    pd = PagerDutyResource(routing_key="R", url=url, max_retries=2, backoff_s=0.01)
    broken.answers = [answer, "ok"]
    assert pd.trigger("k", "summary", {})["dedup_key"] == "k"  # the second try got through
    assert len(broken.paths) == 2

    broken.answers, broken.paths[:] = [answer], []
    with pytest.raises(NotificationError) as exc:
        pd.trigger("k", "summary", {})
    line = str(exc.value)
    kind = "BadStatusLine" if answer == "bad_status_line" else "IncompleteRead"
    assert line == f"PagerDuty event to {broken.url} failed after 3 tries: broken answer ({kind})"
    assert len(broken.paths) == 3
    assert_url_hidden(line + caplog.text)


def test_slack_broken_answer_is_retried_then_one_line(
    broken: BrokenAPI, caplog: pytest.LogCaptureFixture
) -> None:
    from deliverydags.defs.resources.notify import NotificationError

    caplog.set_level(logging.DEBUG)
    client = slack(f"{broken.url}{SECRET_PATH}/")
    broken.answers = ["bad_status_line", "ok"]
    assert client.post("hi", []) == "1.0"
    assert broken.paths == [f"{SECRET_PATH}/api/chat.postMessage"] * 2

    broken.answers, broken.paths[:] = ["bad_status_line"], []
    with pytest.raises(NotificationError) as exc:
        client.post("hi", [])
    assert str(exc.value) == f"Slack at {broken.url} sent a broken answer (BadStatusLine)"
    assert len(broken.paths) == 3
    assert_url_hidden(str(exc.value) + caplog.text)


def test_slack_broken_answer_fails_only_the_notification(week: Path, broken: BrokenAPI) -> None:
    broken.answers = ["truncated"]
    with dg.instance_for_test() as instance:
        result = run_night(week, night(6), instance, slack=slack(broken.url + "/"))
    assert materialized(result) == set(MEASUREMENTS)
    line = failure(result)
    assert line.startswith("Slack failed (") and "IncompleteRead" in line and "\n" not in line


def test_blocks_stay_within_slack_limits() -> None:
    from slack_sdk.models.blocks import HeaderBlock, SectionBlock

    from deliverydags.notify.messages import MAX_BLOCKS, Links, summary

    gate = {"rollout": "r", "decision": "hold", "phase_before": "5%", "phase_after": "5%",
            "nights_counted": [], "reasons": ["fine"]}  # fmt: skip
    msg = summary(
        night(0), "s" * 400, result_doc(night(0)), None, [gate] * (MAX_BLOCKS + 10),
        {"verdict": "v" * 10_000}, None, Links("http://ui"),
    )  # fmt: skip
    blocks = msg.blocks
    assert len(blocks) == MAX_BLOCKS
    header = blocks[0]["text"]["text"]
    assert len(header) == HeaderBlock.text_max_length and header.endswith("…")
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert max(map(len, texts)) <= SectionBlock.text_max_length
    assert blocks[-1]["type"] == "context"
    assert "message_soak?partition=" in blocks[-1]["elements"][0]["text"]  # the links stay
    assert texts[-1].endswith("more block(s) not shown")
    small = summary(night(0), "s", None, None, [], {"verdict": "v" * 10_000}, None, Links("u"))
    (ab,) = [b for b in small.blocks if "*A/B*" in b.get("text", {}).get("text", "")]
    assert len(ab["text"]["text"]) == SectionBlock.text_max_length
    assert ab["text"]["text"].endswith("…")


def test_pagerduty_resolved_once_by_the_next_green_night(tmp_path: Path, fake) -> None:  # noqa: F811
    # Night 0's pages never get through (nothing to resolve), nights 1 and 2 page, night 3
    # is green: it resolves exactly what nights 1 and 2 triggered, once.
    rates = [0.9, 0.9, 0.9, 0.999, 0.999]
    seed(tmp_path, [result_doc(night(i), rate=r) for i, r in enumerate(rates)])
    events: dict[int, list[dict]] = {}
    with dg.instance_for_test() as instance:
        for i in (0, 1, 2, 3, 3, 4):
            fake.status = 503 if i == 0 else 200
            fake.requests.clear()
            res = {"slack": slack(fake.url, token=None), "pagerduty": pagerduty(fake.url)}
            result = run_night(tmp_path, night(i), instance, **res)
            assert result.success == (i != 0)
            events.setdefault(i, []).extend(posts(fake))
    triggered = []
    for i in (1, 2):  # a red night triggers its own pages and resolves nothing
        assert events[i] and {e["event_action"] for e in events[i]} == {"trigger"}
        assert all(e["dedup_key"].endswith(night(i)) for e in events[i])
        triggered += [e["dedup_key"] for e in events[i]]
    assert events[3] == [
        {"routing_key": "R0UTING", "event_action": "resolve", "dedup_key": k} for k in triggered
    ]  # once: the re-run of night 3 and night 4 resolve nothing more
    assert events[4] == []
