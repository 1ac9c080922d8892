"""Contract v1.1 tenants: whose bearer token a request carries, and each tenant's callback
URLs as seen in its messages (where the leak fault sends another tenant's receipts)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from .config import SetupError
from .messages import MAX_TENANT_BYTES

_MAX_TENANTS_KEPT = 4096
_MAX_URLS_PER_TENANT = 8


def parse_tokens(text: str, main_token: str, env_name: str) -> tuple[tuple[str, bytes], ...]:
    """``tenant:token,tenant2:token2`` as (tenant, token) pairs; SetupError names the
    tenant or the entry's position, never a token."""
    pairs: list[tuple[str, bytes]] = []
    tenants: set[str] = set()
    tokens: set[str] = {main_token}
    for n, entry in enumerate((part.strip() for part in text.split(",")), 1):
        if not entry:
            continue
        tenant, sep, token = entry.partition(":")
        tenant, token = tenant.strip(), token.strip()
        if not sep or not tenant or not token:
            raise SetupError(f"{env_name}: entry {n} is not tenant:token")
        if len(tenant.encode()) > MAX_TENANT_BYTES:
            raise SetupError(f"{env_name}: tenant {tenant!r} is over {MAX_TENANT_BYTES} bytes")
        if tenant in tenants:
            raise SetupError(f"{env_name}: tenant {tenant!r} is listed twice")
        if token in tokens:
            raise SetupError(f"{env_name}: tenant {tenant!r} shares its token with another")
        tenants.add(tenant)
        tokens.add(token)
        pairs.append((tenant, token.encode()))
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: ``tenant`` None for the target's own token."""

    tenant: str | None


class Tokens:
    """``caller(authorization)``: the Caller a header value authenticates, or None (401)."""

    def __init__(self, main_token: bytes, tenant_tokens: Iterable[tuple[str, bytes]]) -> None:
        self._known = [(b"Bearer " + main_token, None)]
        self._known += [(b"Bearer " + token, tenant) for tenant, token in tenant_tokens]

    def caller(self, given: bytes) -> Caller | None:
        found: Caller | None = None
        for expected, tenant in self._known:  # every one compared: no early exit
            if hmac.compare_digest(given, expected):
                found = Caller(tenant)
        return found


class CallbackBook:
    """The callback URLs each tenant's messages named, latest last (bounded). In Redis mode
    consumer processes share what they learn (RedisBroker.share_callbacks)."""

    def __init__(self) -> None:
        self._urls: dict[str, dict[str, None]] = {}
        self._unshared: list[tuple[str, str]] = []

    def learn(self, tenant: str, url: str, *, shared: bool = False) -> None:
        """``tenant`` named ``url``; ``shared``: heard from another process."""
        urls = self._urls.get(tenant)
        if urls is None:
            if len(self._urls) >= _MAX_TENANTS_KEPT:
                return
            urls = self._urls[tenant] = {}
        if url in urls:
            del urls[url]
        elif not shared:
            self._unshared.append((tenant, url))
        urls[url] = None
        while len(urls) > _MAX_URLS_PER_TENANT:
            del urls[next(iter(urls))]

    def take_unshared(self) -> list[tuple[str, str]]:
        """The (tenant, url) pairs learned here since the last call."""
        out, self._unshared = self._unshared, []
        return out

    def give_back(self, pairs: list[tuple[str, str]]) -> None:
        """Pairs ``take_unshared`` returned that could not be shared: offered again."""
        self._unshared[:0] = pairs

    def elsewhere(self, tenant: str, own_url: str, key: int) -> tuple[str, str] | None:
        """Another tenant and its latest callback URL that is not ``own_url`` (picked by
        ``key`` among them), or None when no other tenant is known."""
        choices = []
        for other in sorted(self._urls):
            if other != tenant:
                urls = [url for url in self._urls[other] if url != own_url]
                if urls:
                    choices.append((other, urls[-1]))
        return choices[key % len(choices)] if choices else None
