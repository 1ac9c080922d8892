"""The pure pieces of the contract v1.1 parts: digests, tokens, callback book, idempotency."""

from __future__ import annotations

import hashlib
import time

import pytest

from deliverydags.target.config import SetupError
from deliverydags.target.idempotency import (
    AGAIN_IF_CHANGED,
    AGAIN_IF_SAME,
    Ledger,
    Prior,
    fingerprint,
    queue_again,
)
from deliverydags.target.integrity import corrupted, digest
from deliverydags.target.tenants import CallbackBook, Caller, Tokens, parse_tokens


def test_digest_is_sha256_of_utf8_for_strings_only() -> None:
    text = "h\u00e9llo \U0001f600"
    assert digest(text) == hashlib.sha256(text.encode()).hexdigest()
    assert digest("") == hashlib.sha256(b"").hexdigest()
    assert digest({"a": 1}) is None and digest(None) is None and digest(3) is None
    for payload in ("", "a", text):
        assert corrupted(payload) != payload
        assert digest(corrupted(payload)) != digest(payload)


def test_tenant_tokens_parse_and_authenticate() -> None:
    pairs = parse_tokens(" a:tok-a , b:tok:with:colons,", "main", "ENV")
    assert pairs == (("a", b"tok-a"), ("b", b"tok:with:colons"))
    tokens = Tokens(b"main", pairs)
    assert tokens.caller(b"Bearer main") == Caller(None)
    assert tokens.caller(b"Bearer tok-a") == Caller("a")
    assert tokens.caller(b"Bearer tok:with:colons") == Caller("b")
    assert tokens.caller(b"Bearer tok-b") is None and tokens.caller(b"tok-a") is None
    assert parse_tokens("", "main", "ENV") == ()
    with pytest.raises(SetupError) as err:
        parse_tokens("a:s3cr3t", "s3cr3t", "ENV")
    assert "shares its token" in str(err.value) and "s3cr3t" not in str(err.value)


def test_callback_book_picks_another_tenants_latest_other_url() -> None:
    book = CallbackBook()
    assert book.elsewhere("a", "http://a/", 0) is None
    book.learn("a", "http://a/")
    assert book.elsewhere("a", "http://a/", 0) is None
    book.learn("b", "http://b/1")
    book.learn("b", "http://b/2")
    assert book.elsewhere("a", "http://a/", 7) == ("b", "http://b/2")
    book.learn("c", "http://a/")  # shares a's callback: no leak there
    assert book.elsewhere("a", "http://a/", 1) == ("b", "http://b/2")
    assert {book.elsewhere("b", "http://b/2", k) for k in range(2)} == {
        ("a", "http://a/"),
        ("c", "http://a/"),
    }


def test_fingerprint_ignores_key_order_not_content() -> None:
    one = {"id": "x", "payload": {"a": 1, "b": [1, 2]}}
    assert fingerprint(one) == fingerprint({"payload": {"b": [1, 2], "a": 1}, "id": "x"})
    assert fingerprint(one) != fingerprint({**one, "payload": {"a": 1, "b": [2, 1]}})


def test_prior_round_trips_and_says_when_to_queue_again() -> None:
    prior = Prior("f" * 32, 1_700_000_000_123_456_789)
    assert Prior.decode(prior.encode()) == prior == Prior.decode(prior.encode().encode())
    assert not queue_again(prior, prior.fingerprint, "")
    assert queue_again(prior, prior.fingerprint, AGAIN_IF_SAME)
    assert not queue_again(prior, "other", AGAIN_IF_SAME)
    assert queue_again(prior, "other", AGAIN_IF_CHANGED)


def test_ledger_keeps_the_first_send_until_its_ttl() -> None:
    ledger = Ledger(ttl_s=0.05)
    first, second = Prior("f1", 1), Prior("f2", 2)
    assert ledger.claim("m", first) is None
    assert ledger.claim("m", second) == first
    time.sleep(0.06)
    assert ledger.claim("m", second) is None
    assert ledger.claim("m", first) == second


def test_callback_book_offers_what_it_learned_once() -> None:
    book = CallbackBook()
    book.learn("a", "http://a/")
    book.learn("a", "http://a/")  # known already: not offered twice
    book.learn("b", "http://b/", shared=True)  # heard from another process
    assert book.take_unshared() == [("a", "http://a/")]
    assert book.take_unshared() == []
    book.give_back([("a", "http://a/")])  # sharing failed
    assert book.take_unshared() == [("a", "http://a/")]
    assert book.elsewhere("a", "http://a/", 0) == ("b", "http://b/")
