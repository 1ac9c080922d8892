"""The HTTP side of the target (contract v1): healthz, messages, metrics."""

from __future__ import annotations

import hmac
import logging
import time
from importlib import metadata

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .allowlist import Allowlist
from .broker import Broker, BrokerDown
from .config import Settings
from .database import Database, DatabaseDown
from .messages import BadMessage, parse, rfc3339
from .metrics import Exposition

BODY_HEADROOM = 1 << 20  # id, stream, callback_url and whitespace around the payload
DOWN_LOG_INTERVAL_S = 10.0

log = logging.getLogger(__name__)


def _json(status: int, doc: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(doc), content_type="application/json", headers=headers
    )


def _version(settings: Settings) -> str:
    if settings.version_label:
        return settings.version_label
    try:
        return metadata.version("deliverydags")
    except metadata.PackageNotFoundError:
        return "unknown"


class Api:
    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        exposition: Exposition,
        db: Database | None = None,
    ) -> None:
        self._s = settings
        self._broker = broker
        self._db = db
        self._exposition = exposition
        self._auth = b"Bearer " + settings.token
        self._allow = Allowlist(settings.callback_allow)
        self._next_down_log = 0.0
        self._health = orjson.dumps({"status": "ok", "version": _version(settings)})
        # The leak fault: real memory held forever (bytearray(n) writes every page).
        self._leaked: list[bytearray] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._s.payload_limit + BODY_HEADROOM)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_post("/v1/messages", self.post_message)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(body=self._health, content_type="application/json")

    async def post_message(self, request: web.Request) -> web.Response:
        # The token is checked before the body is read at all.
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self._auth):
            return _json(401, {"error": "missing or bad bearer token"})
        try:
            msg = parse(await request.read(), self._s.payload_limit)
        except BadMessage as bad:
            return _json(bad.status, {"error": str(bad)})
        refusal = self._allow.check(msg.callback_url)
        if refusal:
            return _json(400, {"error": refusal})
        if self._broker.backlog() >= self._s.max_backlog:
            return _json(429, {"error": "backlog full"}, {"Retry-After": "1"})
        if self._db is not None:
            try:
                await self._db.record(msg)  # before the publish: see database.py
            except DatabaseDown as exc:
                retry = {"Retry-After": str(exc.retry_after_s)}
                return _json(503, {"error": f"database unavailable ({exc})"}, retry)
        try:
            await self._broker.publish(msg)
        except BrokerDown as exc:
            self._log_down(exc)
            return _json(503, {"error": "broker unavailable"})
        if self._s.faults.leak_bytes:
            self._leaked.append(bytearray(self._s.faults.leak_bytes))
        return _json(202, {"id": msg.id, "accepted_at": rfc3339(msg.accepted_ns)})

    def _log_down(self, exc: BrokerDown) -> None:
        # At most one line per interval: a dead broker must not flood the log.
        now = time.monotonic()
        if now >= self._next_down_log:
            self._next_down_log = now + DOWN_LOG_INTERVAL_S
            log.warning("broker unavailable, answering 503: %s", exc)

    async def metrics(self, request: web.Request) -> web.Response:
        try:
            snapshot = await self._broker.snapshot()
        except BrokerDown:
            return _json(503, {"error": "broker unavailable"})
        body = self._exposition.render(snapshot)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
