"""Which callback hosts the target may call: IP networks and exact host names."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from .config import SetupError

_CACHE_MAX = 4096


class Allowlist:
    """``check(url)`` returns an error text, or None when the URL may be called.

    Host names are matched as written, never resolved: a name is trusted only when
    it is listed, so DNS cannot steer the target to an address nobody allowed.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._names: set[str] = set()
        for entry in entries:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if "/" in entry or not entry:
                    raise SetupError(f"bad --callback-allow entry {entry!r}") from None
                self._names.add(entry.lower().rstrip("."))
        self._cache: dict[str, str | None] = {}

    def check(self, url: str) -> str | None:
        # Senders reuse one callback URL for a whole run, so the verdict is cached.
        try:
            return self._cache[url]
        except KeyError:
            pass
        verdict = self._judge(url)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[url] = verdict
        return verdict

    def _judge(self, url: str) -> str | None:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            return "callback_url is not a valid URL"
        if parts.scheme not in ("http", "https") or not host:
            return "callback_url must be an http(s) URL with a host"
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            allowed = host.rstrip(".") in self._names
        else:
            allowed = any(address in net for net in self._networks)
        return None if allowed else f"callback_url host {host!r} is not on the allowlist"
