"""Which callback addresses the target may call: exact HOST:PORT endpoints and, opted into,
whole IP networks or host names (any port)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from deliverydags.run.settings import ConfigError

from .config import SetupError

_CACHE_MAX = 4096
_DEFAULT_PORT = {"http": 80, "https": 443}
ALLOW_FLAG = "--allow-callback"
NOTHING_ALLOWED = f"no callback address allowed ({ALLOW_FLAG} HOST:PORT): every message is 400"


def _host(text: str) -> str:
    """A host as compared: IP literals normalized, names lowercased without a final dot."""
    text = text.strip("[]")
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text.lower().rstrip(".")


def parse_endpoint(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT``) as (host, port), or None when ``text`` is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        return None  # a bare IPv6 address, not HOST:PORT
    return _host(host), int(port)


def endpoint_of(url: str) -> str:
    """The ``HOST:PORT`` a callback URL reaches (the scheme's port when it names none)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORT.get(parts.scheme)
    except ValueError:
        port = None
    if port is None or not parts.hostname:
        # Not echoed: a user's own callback URL may carry a token.
        raise ConfigError("the collector URL (DELIVERYDAGS_COLLECTOR_URL) is not http(s)://HOST")
    host = parts.hostname
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def callback_args(collector_url: str) -> list[str]:
    """The reference target's flags that let it POST receipts to ``collector_url`` only."""
    return [ALLOW_FLAG, endpoint_of(collector_url)]


class Allowlist:
    """``check(url)`` returns an error text, or None when the URL may be called.

    Host names are matched as written, never resolved: a name is trusted only when
    it is listed, so DNS cannot steer the target to an address nobody allowed.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self._endpoints: set[tuple[str, int]] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._names: set[str] = set()
        for entry in entries:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            endpoint = parse_endpoint(entry)
            if endpoint is not None:
                self._endpoints.add(endpoint)
            elif "/" in entry or ":" in entry or not entry:
                raise SetupError(f"bad --callback-allow entry {entry!r}")
            else:
                self._names.add(_host(entry))
        self._cache: dict[str, str | None] = {}

    @property
    def empty(self) -> bool:
        return not (self._endpoints or self._networks or self._names)

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
            port = parts.port or _DEFAULT_PORT.get(parts.scheme)
        except ValueError:
            return "callback_url is not a valid URL"
        if parts.scheme not in _DEFAULT_PORT or not host:
            return "callback_url must be an http(s) URL with a host"
        host = _host(host)
        if (host, port) in self._endpoints:
            return None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            allowed = host in self._names
        else:
            allowed = any(address in net for net in self._networks)
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return None if allowed else f"callback_url address {where} is not on the allowlist"
