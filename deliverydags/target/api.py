"""The HTTP side of the target (contract v1 and v1.1): healthz, messages, batch, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .allowlist import Allowlist
from .broker import Broker, BrokerDown
from .config import Settings
from .database import Database, DatabaseDown
from .faults import Faults
from .idempotency import AGAIN_IF_CHANGED, AGAIN_IF_SAME, Prior, queue_again
from .messages import BadMessage, Message, from_doc, parse, rfc3339
from .metrics import Exposition
from .tenants import Caller, Tokens

BODY_HEADROOM = 1 << 20  # id, stream, callback_url and whitespace around the payload
MAX_BATCH = 500  # messages in one batch send (contract v1.1)
RESEND_AGAIN = {"redeliver-resend": AGAIN_IF_SAME, "accept-changed": AGAIN_IF_CHANGED}
DOWN_LOG_INTERVAL_S = 10.0

log = logging.getLogger(__name__)


def _json(status: int, doc: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(doc), content_type="application/json", headers=headers
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """What a single POST of one message is answered."""

    status: int
    doc: dict[str, Any]
    headers: dict[str, str] | None = None


async def _read(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` bytes (the rest is left unread)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _id_of(doc: object) -> object:
    """A batch message's id as sent (null when it has none)."""
    return doc.get("id") if isinstance(doc, dict) else None


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
        faults: Faults | None = None,
    ) -> None:
        self._s = settings
        self._faults = faults
        self._broker = broker
        self._db = db
        self._exposition = exposition
        self._tokens = Tokens(settings.token, settings.tenant_tokens)
        self._single_limit = settings.payload_limit + BODY_HEADROOM
        self._retry_after = {"Retry-After": str(settings.retry_after_s)}
        self._allow = Allowlist(settings.callback_allow)
        self._next_down_log = 0.0
        self._health = orjson.dumps({"status": "ok", "version": _version(settings)})
        # The leak fault: real memory held forever (bytearray(n) writes every page).
        self._leaked: list[bytearray] = []

    def app(self) -> web.Application:
        # Bodies are read by _read, with the limit of their route.
        app = web.Application(client_max_size=max(self._single_limit, self._s.batch_body_limit))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_post("/v1/messages", self.post_message)
        app.router.add_post("/v1/messages:batch", self.post_batch)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(body=self._health, content_type="application/json")

    def _caller(self, request: web.Request) -> Caller | None:
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        return self._tokens.caller(given)

    async def post_message(self, request: web.Request) -> web.Response:
        # The token is checked before the body is read at all.
        caller = self._caller(request)
        if caller is None:
            return _json(401, {"error": "missing or bad bearer token"})
        body = await _read(request, self._single_limit)
        if body is None:
            return _json(413, {"error": f"body is over {self._single_limit} bytes"})
        try:
            msg = parse(body, self._s.payload_limit)
        except BadMessage as bad:
            return _json(bad.status, {"error": str(bad)})
        answer = await self._admit(msg, caller)
        return _json(answer.status, answer.doc, answer.headers)

    async def post_batch(self, request: web.Request) -> web.Response:
        """Contract v1.1 batch send: one result per message, in order, unless the whole
        request fails (401, 413 for the body, 400 for the envelope, 429 or 503 for all)."""
        caller = self._caller(request)
        if caller is None:
            return _json(401, {"error": "missing or bad bearer token"})
        body = await _read(request, self._s.batch_body_limit)
        if body is None:
            return _json(413, {"error": f"body is over {self._s.batch_body_limit} bytes"})
        try:
            docs = orjson.loads(body).get("messages")
        except (orjson.JSONDecodeError, AttributeError):
            docs = None
        if not isinstance(docs, list) or not 1 <= len(docs) <= MAX_BATCH:
            return _json(400, {"error": f'body must be {{"messages": [1 to {MAX_BATCH}]}}'})
        if self._broker.backlog() >= self._s.max_backlog:
            return _json(429, {"error": "backlog full"}, self._retry_after)
        answers = await self._admit_all(docs, caller)
        statuses = {answer.status for answer in answers}
        if len(statuses) == 1 and statuses <= {429, 503}:
            return _json(answers[0].status, {"error": answers[0].doc["error"]}, answers[0].headers)
        results = []
        for doc, answer in zip(docs, answers, strict=True):
            result: dict[str, object] = {"id": _id_of(doc), "status": answer.status}
            if "error" in answer.doc:
                result["error"] = answer.doc["error"]
            results.append(result)
        return _json(200, {"results": results})

    async def _admit_all(self, docs: list[object], caller: Caller) -> list[Answer]:
        """Each message answered as a single POST would be. A stream's messages are admitted
        one after another in request order (so their seq order holds); streams concurrently."""
        answers: list[Answer | None] = [None] * len(docs)
        by_stream: dict[str, list[tuple[int, Message]]] = {}
        for i, doc in enumerate(docs):
            try:
                msg = from_doc(doc, self._s.payload_limit)
            except BadMessage as bad:
                answers[i] = Answer(bad.status, {"error": str(bad)})
                continue
            by_stream.setdefault(msg.stream, []).append((i, msg))

        async def one_stream(items: list[tuple[int, Message]]) -> None:
            for i, msg in items:
                answers[i] = await self._admit(msg, caller)

        await asyncio.gather(*(one_stream(items) for items in by_stream.values()))
        return [answer for answer in answers if answer is not None]

    async def _admit(self, msg: Message, caller: Caller) -> Answer:
        """A valid message's answer: 202 once it is durably queued, else why not."""
        if msg.tenant != caller.tenant:
            return Answer(403, {"error": "the message's tenant is not the bearer token's"})
        refusal = self._allow.check(msg.callback_url)
        if refusal:
            return Answer(400, {"error": refusal})
        if self._broker.backlog() >= self._s.max_backlog:
            return Answer(429, {"error": "backlog full"}, self._retry_after)
        if self._db is not None:
            try:
                await self._db.record(msg)  # before the publish: see database.py
            except DatabaseDown as exc:
                retry = {"Retry-After": str(exc.retry_after_s)}
                return Answer(503, {"error": f"database unavailable ({exc})"}, retry)
        fault = self._faults.draw(msg.id) if self._faults else None
        again = RESEND_AGAIN.get(fault or "", "")
        try:
            prior = await self._broker.publish(msg, again)
        except BrokerDown as exc:
            self._log_down(exc)
            return Answer(503, {"error": "broker unavailable"})
        if prior is not None:
            return self._resent(msg, prior, again, fault)
        if self._s.faults.leak_bytes:
            self._leaked.append(bytearray(self._s.faults.leak_bytes))
        return Answer(202, {"id": msg.id, "accepted_at": rfc3339(msg.accepted_ns)})

    def _resent(self, msg: Message, prior: Prior, again: str, fault: str | None) -> Answer:
        """A send of an accepted id: 202 with the first accepted_at when identical, else
        409; a resend fault that was queued again is logged."""
        if fault and queue_again(prior, msg.fingerprint, again):
            assert self._faults is not None
            self._faults.record(msg, fault)
        if prior.fingerprint == msg.fingerprint:
            return Answer(202, {"id": msg.id, "accepted_at": rfc3339(prior.accepted_ns)})
        if fault == "accept-changed":
            return Answer(202, {"id": msg.id, "accepted_at": rfc3339(msg.accepted_ns)})
        return Answer(409, {"error": "id already accepted with a different body"})

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
