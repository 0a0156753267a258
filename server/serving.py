"""How a node serves HTTP: uvicorn's httptools protocol with the timeouts and the
connection cap it lacks (issue 15, "Limits"), and the uvicorn settings both
``hudong serve`` and the tests' servers use (:func:`uvicorn_config`).

uvicorn closes a kept-alive connection that stays idle (``timeout_keep_alive``) and
nothing else: a socket that connects and says nothing, sends half a request head, or
promises a body and stalls holds a file descriptor and a protocol object forever (250
such sockets were held 121 s, none closed). :func:`guarded_http` makes a subclass of
its protocol with one timer per connection:

- from the connection's start (and from the first byte of each later request on a
  kept-alive one) until the request head is complete: ``limits.http_header_timeout_s``;
- from the head until the whole body is in: ``limits.http_body_timeout_s``;
- between requests: uvicorn's own keep-alive timeout, ``limits.http_idle_timeout_s``.

A connection whose timer runs out is answered 408 (when nothing of a response was
sent yet and the application is not handling it) and closed. While the application
handles a request no timer runs: a slow answer is the node's, not the client's.

The cap: over ``limits.max_http_connections`` open HTTP connections (WebSockets are
handed to the hub at the upgrade and no longer count) a new connection is answered 503
at once and closed, before anything is read from it. uvicorn's ``limit_concurrency``
is not used: it counts WebSocket connections too, and would refuse viewers.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.config import LimitsSettings, Settings

# How long a connection answered before its body was in still takes (and drops) bytes.
LINGER_S = 2.0


def _plain(status: str, text: str, *extra: str) -> bytes:
    """A whole HTTP response that closes the connection."""
    body = text.encode()
    head = [f"HTTP/1.1 {status}", "content-type: text/plain; charset=utf-8", *extra]
    head += [f"content-length: {len(body)}", "connection: close", "", ""]
    return "\r\n".join(head).encode() + body


BUSY = _plain(
    "503 Service Unavailable",
    "too many open HTTP connections (limits.max_http_connections); retry later\n",
    "retry-after: 5",
)
TOO_SLOW = _plain(
    "408 Request Timeout", "the request did not arrive in time (limits.http_*_timeout_s)\n"
)


class GuardedHttp(HttpToolsProtocol):
    """An HTTP connection held to the header and body timeouts, under the node's cap on
    open HTTP connections (the subclass :func:`guarded_http` makes sets the limits)."""

    header_timeout_s: ClassVar[float] = 10.0
    body_timeout_s: ClassVar[float] = 30.0
    max_connections: ClassVar[int] = 10000
    open: ClassVar[set[GuardedHttp]] = set()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.open) >= self.max_connections:
            transport.write(BUSY)
            transport.close()
            self.transport = transport
            return
        super().connection_made(transport)
        self.open.add(self)
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        if self not in self.open:
            return  # refused by the cap: nothing of uvicorn's was set up
        self.open.discard(self)
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a later request on a kept-alive connection
            self._arm(self.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            return  # the hub's connection takes over (its own join timeout)
        self._arm(self.body_timeout_s)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        cycle = self.cycle  # the one just answered, unless a pipelined one is queued
        if cycle.response_complete and cycle.more_body and not self.transport.is_closing():
            self._linger()
            return
        super().on_response_complete()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a body already answered: thrown away unread
        super().data_received(data)

    def _linger(self) -> None:
        """Close a connection answered before its body was in (a 413, a 401): end our
        side now, throw away what the client still sends for :data:`LINGER_S`, then
        close. Closing at once would reset the connection while the client still
        writes, and a reset can destroy the answer before the client reads it
        (RFC 9112 section 9.6); reading on would let it send 200 MB."""
        self._lingering = True
        self._disarm()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()  # uvicorn paused it while the body waited unread
        self._deadline = self.loop.call_later(LINGER_S, self.transport.close)

    def handle_websocket_upgrade(self) -> None:
        self.open.discard(self)
        self._disarm()
        super().handle_websocket_upgrade()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            # Between responses, or the application waits for the body: it sees a
            # disconnect, and the client this 408 (uvicorn drops what comes after).
            self.transport.write(TOO_SLOW)
        self.transport.close()


def guarded_http(limits: LimitsSettings) -> type[GuardedHttp]:
    """A :class:`GuardedHttp` for one server, with its limits and its own set of open
    connections."""

    class Guarded(GuardedHttp):
        """An HTTP connection held to this server's limits."""

        header_timeout_s = limits.http_header_timeout_s
        body_timeout_s = limits.http_body_timeout_s
        max_connections = limits.max_http_connections
        open: ClassVar[set[GuardedHttp]] = set()

    return Guarded


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for a node: our HTTP and WebSocket protocols and timeouts
    (``hudong serve`` and the tests' servers both use them)."""
    from server.hub import Connection

    return {
        "http": guarded_http(settings.limits),
        "ws": Connection,
        "timeout_keep_alive": max(1, math.ceil(settings.limits.http_idle_timeout_s)),
    }
