"""The collector's receipt encoding (pure): contract v1.1's digest and tenant."""

from __future__ import annotations

import orjson
import pytest

from deliverydags.collector.records import Malformed, encode, valid_tenant
from tests.support.collector import receipt


def decoded(body: dict, tenant: str | None = None) -> list[dict]:
    data, count = encode(orjson.dumps(body), 5, 17, None, tenant)
    rows = [orjson.loads(line) for line in data.splitlines()]
    assert len(rows) == count
    return rows


def test_digest_kept_as_given_and_tenant_on_every_line() -> None:
    body = {"messages": [{**receipt(1), "digest": "AB" * 32}, receipt(2)]}
    rows = decoded(body, tenant="acme")
    assert [(r["n"], r.get("digest"), r["tenant"]) for r in rows] == [
        (5, "AB" * 32, "acme"),
        (6, None, "acme"),
    ]
    assert list(decoded(receipt(3))[0]) == [
        *("n", "recv_ns", "id", "stream", "seq", "status", "delivered_at"),
    ]  # a v1 receipt at the plain callback: the v1 line exactly


@pytest.mark.parametrize("digest", [7, ["ab"], "x" * 129, True])
def test_a_digest_that_is_no_short_string_is_malformed(digest: object) -> None:
    with pytest.raises(Malformed, match="digest"):
        encode(orjson.dumps({"messages": [receipt(1), {**receipt(2), "digest": digest}]}), 0, 0)


def test_tenant_names() -> None:
    assert valid_tenant("a") and valid_tenant("ü" * 32)
    assert not valid_tenant("") and not valid_tenant("ü" * 33)
