"""What one client may hold on this node (PROTOCOL.md, "Limits"; issue 15): WebSocket
connections per client address, and per viewer identity per room, with one command
rate shared by all the connections of a viewer in a room (and, when set, one shared by
all the connections of an address).

A client address is the peer's IP address as the node sees it (an IPv6 one by its /64:
:func:`client_address`), for these caps and for a room's danmaku shares
(:class:`~server.moderation.ratelimit.FairShare`). Behind a reverse proxy it is the
address the proxy names in ``X-Forwarded-For``, when the peer is one of the proxies
uvicorn trusts (``FORWARDED_ALLOW_IPS``: :class:`Proxies`), as for an HTTP request.
The counts are this node's: with several nodes a client could hold the cap on each.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from server.config import LimitsSettings
from server.moderation.ratelimit import TokenBucket


def client_address(host: str) -> str:
    """The address a client is counted by: an IPv4 address as it is, an IPv6 one by its
    /64 (one host usually holds a whole /64, and could take a new address per
    connection), ``::ffff:a.b.c.d`` as ``a.b.c.d``."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


async def _unchanged(scope: Any, receive: Any, send: Any) -> None:
    return None


class Proxies:
    """The proxies whose ``X-Forwarded-For`` names a WebSocket's client: uvicorn's
    ``forwarded_allow_ips`` (``FORWARDED_ALLOW_IPS``; default 127.0.0.1 and ::1), read by
    uvicorn's own ProxyHeadersMiddleware, so that a WebSocket counts by the address an
    HTTP request through the same proxy gets (our WebSocket protocol is not an ASGI app,
    so the middleware never sees its upgrade)."""

    def __init__(self, trusted: str | tuple[str, ...]) -> None:
        hosts = trusted if isinstance(trusted, str) else list(trusted)
        self._middleware = ProxyHeadersMiddleware(_unchanged, trusted_hosts=hosts)

    def client(self, peer: str, forwarded: Sequence[str]) -> str:
        """The client's host: from ``forwarded`` (the X-Forwarded-For headers) when
        ``peer`` is a trusted proxy, else ``peer``."""
        if not forwarded:
            return peer
        headers = [(b"x-forwarded-for", v.encode("latin-1", "replace")) for v in forwarded]
        scope: dict[str, Any] = {"type": "websocket", "client": (peer, 0), "headers": headers}
        step = self._middleware(scope, _unchanged, _unchanged)  # type: ignore[arg-type]
        try:  # it awaits nothing but the app, which returns at once: one step ends it
            step.send(None)
        except StopIteration:
            return str(scope["client"][0])
        step.close()
        raise RuntimeError("uvicorn's ProxyHeadersMiddleware did not finish in one step")


@functools.lru_cache(maxsize=8)
def trusted_proxies(trusted: str | tuple[str, ...]) -> Proxies:
    """One :class:`Proxies` per setting (the middleware remembers its trust checks)."""
    return Proxies(trusted)


def proxies_of(config: Any) -> Proxies | None:
    """The proxies of a uvicorn ``Config`` (None: none, or its ``proxy_headers`` is off)."""
    if config is None or not getattr(config, "proxy_headers", False):
        return None
    trusted = getattr(config, "forwarded_allow_ips", "127.0.0.1")
    return trusted_proxies(trusted if isinstance(trusted, str) else tuple(trusted))


class _Viewer:
    """A viewer's connections to one room on this node, and the bucket they share."""

    __slots__ = ("bucket", "connections")

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self.connections = 0


class Quotas:
    """Counts connections per client address and per (room, viewer), refuses those over
    their cap, and keeps the command buckets that a viewer's connections in a room, and
    an address's connections, share."""

    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self._addresses: dict[str, int] = {}
        self._address_buckets: dict[str, TokenBucket] = {}
        # (room id, user id) -> its connections here and the bucket they share
        self._viewers: dict[tuple[str, str], _Viewer] = {}

    # --- client addresses ---------------------------------------------------------------

    def address_refusal(self, address: str) -> str | None:
        """Why a new connection from ``address`` is refused (None: it may come in)."""
        cap = self.limits.connections_per_address
        if cap and self._addresses.get(address, 0) >= cap:
            return (
                f"too many connections from {address or 'this address'}: "
                f"at most {cap} (limits.connections_per_address)"
            )
        return None

    def opened(self, address: str, now: float) -> TokenBucket | None:
        """Count a connection from ``address`` in; the command bucket all connections of
        the address share (None: ``limits.commands_per_address_per_s`` is off)."""
        self._addresses[address] = self._addresses.get(address, 0) + 1
        rate = self.limits.commands_per_address_per_s
        if not rate:
            return None
        bucket = self._address_buckets.get(address)
        if bucket is None:
            bucket = TokenBucket(rate, max(1, round(2 * rate)), now)
            self._address_buckets[address] = bucket
        return bucket

    def closed(self, address: str) -> None:
        left = self._addresses.get(address, 0) - 1
        if left > 0:
            self._addresses[address] = left
        else:
            self._addresses.pop(address, None)
            self._address_buckets.pop(address, None)

    def connections_from(self, address: str) -> int:
        return self._addresses.get(address, 0)

    # --- viewers in rooms ---------------------------------------------------------------

    def viewer_refusal(self, room_id: str, user_id: str) -> str | None:
        """Why one more connection of the viewer ``user_id`` may not join ``room_id``."""
        cap = self.limits.connections_per_viewer
        entry = self._viewers.get((room_id, user_id))
        if cap and entry is not None and entry.connections >= cap:
            return (
                f"this viewer has {cap} connections to room {room_id!r} already: at most "
                f"{cap} (limits.connections_per_viewer); close one first"
            )
        return None

    def viewer_joined(self, room_id: str, user_id: str, own: TokenBucket) -> TokenBucket:
        """Count a viewer's connection in; the command bucket all its connections share
        (the first connection's own, ``own``, which its join was taken from)."""
        entry = self._viewers.get((room_id, user_id))
        if entry is None:
            entry = self._viewers[(room_id, user_id)] = _Viewer(own)
        entry.connections += 1
        return entry.bucket

    def viewer_left(self, room_id: str, user_id: str) -> None:
        key = (room_id, user_id)
        entry = self._viewers.get(key)
        if entry is None:
            return
        entry.connections -= 1
        if entry.connections <= 0:
            del self._viewers[key]
