"""Talking to a collector process over 127.0.0.1: its test secret and environment, signed
POSTs, GETs, and the receipts journal it writes."""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from deliverydags.collector import RECEIPTS_PATH, SECRET_ENV
from deliverydags.formats import signing

SECRET = "collector-test-secret-4f9c2e"
KEY = SECRET.encode()
ENV = {**os.environ, SECRET_ENV: SECRET}


def receipt(i: int, stream: str = "s", status: str = "delivered") -> dict:
    return {
        "id": f"m-{i}",
        "stream": stream,
        "seq": i,
        "status": status,
        "delivered_at": "2025-01-01T00:00:00.000Z",
    }


def post(url: str, body: bytes, signature: str | None = "sign", path: str = RECEIPTS_PATH):
    """POST ``body``; ``signature="sign"`` signs it with the test secret, None sends none."""
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = signing.sign(KEY, body)
    if signature is not None:
        headers[signing.HEADER] = signature
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get_json(url: str, path: str) -> tuple[int, dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]
