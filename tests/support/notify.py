"""A local HTTP server standing in for Slack's (and PagerDuty's) API, and the nightly
review chain run against it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from deliverydags.defs.assets.ab import ab_comparison
from deliverydags.defs.assets.gate import phase_gate
from deliverydags.defs.assets.notifications import nightly_notifications
from deliverydags.defs.assets.trend import trend_comparison
from deliverydags.defs.assets.windows import delivery_windows
from deliverydags.defs.resources import SlackResource
from tests.support.history import resources

CHAIN = [trend_comparison, phase_gate, ab_comparison, delivery_windows, nightly_notifications]


@dataclass
class FakeAPI:
    """Records every request; answers with ``status`` and ``body`` (set by the test)."""

    status: int = 200
    body: dict | str = field(default_factory=lambda: {"ok": True, "ts": "1.0"})
    requests: list[dict] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    api = FakeAPI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            api.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "headers": dict(self.headers),
                    "raw": raw,
                    "json": json.loads(raw) if raw else None,
                }
            )
            body = api.body if isinstance(api.body, str) else json.dumps(api.body)
            self.send_response(api.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield api
    server.shutdown()
    server.server_close()


def slack(url: str, token: str | None = "xoxb-test") -> SlackResource:
    return SlackResource(token=token, channel="#delivery", base_url=url + "api/",
                         max_retries=2, backoff_s=0.01)  # fmt: skip


def run_night(data_dir: Path, n: str, instance, **res: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        CHAIN,
        partition_key=n,
        resources=resources(data_dir, **res),
        instance=instance,
        raise_on_error=False,
        run_config={"ops": {"nightly_notifications": {"config": {"ui_base_url": "http://ui"}}}},
    )


def posts(api: FakeAPI) -> list[dict]:
    return [r["json"] for r in api.requests]
