"""One WebSocket connection: an asyncio protocol built on websockets' Sans-I/O layer.

uvicorn parses the HTTP request; when it sees a WebSocket upgrade it hands the
transport to the class named by its ``ws`` setting, which is this one
(ARCHITECTURE.md, "The hot path"). Owning the transport lets the hub write one
pre-framed batch to every connection of a room without going through ASGI
``send`` per viewer.

Reading goes through :class:`websockets.server.ServerProtocol`
(``receive_data`` -> ``events_received`` -> ``data_to_send``), which validates
framing (RFC 6455 section 5), answers pings and runs the closing handshake.
Messages for this connection alone (``hello``, ``ack``, ``error``, snapshots) go
through it as well; batches bypass it as shared bytes. That is safe because the only
extension, permessage-deflate (:mod:`.deflate`), is negotiated without context
takeover, so no compressor state runs from one message to the next, and the server
never fragments, so a frame written directly cannot interleave with one the protocol
object builds. ``deflate`` says whether this connection reads the shared compressed
batch frames.

Flow control is asyncio's: the transport calls :meth:`pause_writing` when its
buffer passes ``hub.write_buffer_high_bytes`` and :meth:`resume_writing` once it
falls under ``write_buffer_low_bytes``. While paused the connection receives no
stream batches (PROTOCOL.md, "Slow consumers").
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import NegotiationError
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.typing import Subprotocol

from protocol.codec import JSON, SUBPROTOCOLS, Codec, codec_for_subprotocol
from protocol.codes import CLOSE_BY_NAME
from protocol.messages import Command, CommandError, error
from server.hub.deflate import NEGOTIATION, shares_frames
from server.hub.quotas import client_address, proxies_of

if TYPE_CHECKING:
    from prometheus_client import Counter

    from server.auth import Identity
    from server.config import Settings
    from server.hub.arrivals import LeaveGate
    from server.hub.reads import Reads
    from server.moderation.ratelimit import TokenBucket
    from server.origins import Origins

log = logging.getLogger("hudong.connection")
# websockets logs every open and close at INFO; thousands of viewers make that noise.
ws_log = logging.getLogger("hudong.websocket")

CLOSE_BY_CODE = {c.code: c for c in CLOSE_BY_NAME.values()}

CLOSE_TIMEOUT_S = 3.0
_CLOSE_OPCODE = Opcode.CLOSE.value  # the low four bits of a close frame's first byte


def _select_subprotocol(
    protocol: ServerProtocol, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """The client's first choice among ours; none offered means hudong.v1.json."""
    if not offered:
        return None
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    raise NegotiationError(
        f"unsupported subprotocol {', '.join(offered)}; offer one of {', '.join(SUBPROTOCOLS)}"
    )


def _close_label(code: int | None) -> str:
    entry = CLOSE_BY_CODE.get(code) if code is not None else None
    if entry is not None:
        return entry.name
    return "going_away" if code == 1001 else "other"


def _forget_request(ws: ServerProtocol) -> None:
    """Let the upgrade request go: websockets' server parser keeps it (a local of its
    generator) for the connection's life, 16 of a connection's ~34 objects that the
    cyclic GC walks (a full collection with 5,000 viewers: 90-250 ms of stalled loop;
    BENCHMARKS.md, "Mass leave"). Swapped for the frame parser it runs next, only
    while that waits for a frame's first byte, as nothing of the stream is then held
    by the old one; otherwise left as it is."""
    inner: Any = ws.parser
    while getattr(inner, "gi_yieldfrom", None) is not None:
        inner = inner.gi_yieldfrom
    if getattr(inner, "gi_code", None) is not StreamReader.at_eof.__code__ or ws.reader.buffer:
        return
    fresh = WebSocketProtocol.parse(ws)
    next(fresh)
    old, ws.parser = ws.parser, fresh
    old.close()


class Handler(Protocol):
    """What a connection hands its events to (the hub); handed to it at creation, so a
    connection knows nothing of rooms."""

    settings: Settings
    server_name: str
    disconnects: Counter
    origins: Origins
    leave_gate: LeaveGate
    reads: Reads

    def now(self) -> float: ...
    def admission_refusal(self) -> str | None: ...
    def address_refusal(self, conn: Connection) -> str | None: ...
    def attach(self, conn: Connection) -> None: ...
    def note_paused(self, conn: Connection) -> None: ...
    def detach(self, conn: Connection) -> None: ...
    def receive(self, conn: Connection, data: bytes) -> None: ...
    async def handle_async(self, conn: Connection, command: Command) -> None: ...
    def reply_error(self, conn: Connection, command: Command, err: CommandError) -> None: ...
    def send_snapshot(self, conn: Connection) -> None: ...
    def flush_before_shutdown(self) -> None: ...


class Connection(asyncio.Protocol):
    """A viewer, host, moderator or screen connected to ``/ws``: reads and validates its
    frames, writes what is for it alone, and keeps its flow-control state."""

    __slots__ = (
        "address",
        "address_bucket",
        "audience",
        "bucket",
        "closing",
        "codec",
        "deflate",
        "fragments",
        "held",
        "hub",
        "identity",
        "inbox",
        "last_danmaku",
        "last_seen",
        "needs_snapshot",
        "opened_at",
        "paused",
        "paused_since",
        "peer",
        "proxies",
        "room",
        "server_state",
        "transport",
        "worker",
        "ws",
    )

    def __init__(
        self,
        config: Any = None,
        server_state: Any = None,
        app_state: dict[str, Any] | None = None,
        *,
        hub: Handler | None = None,
    ) -> None:
        if hub is None:
            if not app_state or "hub" not in app_state:
                raise RuntimeError("hudong's WebSocket protocol needs the app's lifespan to run")
            hub = app_state["hub"]
        assert hub is not None
        self.hub: Handler = hub
        self.server_state = server_state
        self.transport: asyncio.Transport | None = None
        self.peer = ""  # the peer's host, as the socket says
        self.proxies = proxies_of(config)  # whose X-Forwarded-For is believed
        # the client's address (IPv6: its /64): caps and danmaku shares
        self.address = ""
        self.address_bucket: TokenBucket | None = None  # shared by the address's connections
        self.ws = ServerProtocol(
            subprotocols=[Subprotocol(s) for s in SUBPROTOCOLS],
            select_subprotocol=_select_subprotocol,
            extensions=[NEGOTIATION] if hub.settings.hub.permessage_deflate else None,
            max_size=hub.settings.limits.max_frame_bytes,
            logger=ws_log,
        )
        self.codec: Codec = JSON
        self.deflate = False  # negotiated permessage-deflate: gets compressed batches
        self.room: Any = None  # the hub's LiveRoom once joined
        self.audience = ""  # which views it gets once joined (public, screen, staff)
        self.identity: Identity | None = None
        self.bucket: TokenBucket | None = None
        self.paused = False
        self.paused_since = 0.0
        self.needs_snapshot = False
        self.closing = False
        now = hub.now()
        self.opened_at = now
        self.last_seen = now
        self.last_danmaku = -1e9
        self.fragments: bytearray | None = None
        self.held: bytearray | None = None  # read while its close waits (LeaveGate)
        self.inbox: deque[Command] | None = None
        self.worker: asyncio.Task[None] | None = None

    # --- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not a subclass of asyncio.Transport but has its API.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (tuple, list)) and peer:
            self.peer = str(peer[0])
            self.address = client_address(self.peer)
        if self.server_state is not None:
            self.server_state.connections.add(self)
        hub = self.hub.settings.hub
        self.transport.set_write_buffer_limits(
            high=hub.write_buffer_high_bytes, low=hub.write_buffer_low_bytes
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.reads.take(self)  # reset with no close and no FIN: unread, unanswered
        if self.server_state is not None:
            self.server_state.connections.discard(self)
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()
        # Whatever state the protocol object is in (a peer's FIN moves it to CLOSED
        # without a closing handshake), the hub must forget this connection.
        self.hub.detach(self)
        self.ws.state = State.CLOSED

    def pause_writing(self) -> None:
        self.paused = True
        self.paused_since = self.hub.now()
        self.hub.note_paused(self)

    def resume_writing(self) -> None:
        self.paused = False
        if self.needs_snapshot and self.room is not None and not self.closing:
            self.needs_snapshot = False
            self.hub.send_snapshot(self)

    def eof_received(self) -> bool | None:
        unread = self.hub.reads.take(self)
        if unread is not None:  # what came before the FIN is read before it
            self._receive(unread)
        self.ws.receive_eof()
        self._flush()
        return None

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.hub.now()
        if self.held is not None:  # its close waits for its turn: keep what follows
            self.held += data
            return
        opened = self.ws.state is State.OPEN
        reads = self.hub.reads
        if (
            opened
            and data[0] & 0x0F == _CLOSE_OPCODE
            and self.transport is not None
            and not reads.holds(self)
        ):
            if not self.hub.leave_gate.admit():
                # A close frame in a burst of leaves: answered in a later slice, not
                # reading meanwhile (server/hub/arrivals.py, LeaveGate). A chunk that only
                # looks like one (the middle of a frame) is read in order all the same.
                self.held = bytearray(data)
                self.transport.pause_reading()
                self.hub.leave_gate.defer(self._answer_held)
                return
        elif opened and reads.came(self, data):
            return  # read with the others' in a later round (server/hub/reads.py)
        self._receive(data)

    def _answer_held(self) -> None:
        data, self.held = self.held, None
        transport = self.transport
        if data is None or transport is None or self.ws.state is State.CLOSED:
            return  # lost meanwhile: connection_lost forgot it
        self._receive(bytes(data))
        if not transport.is_closing():
            transport.resume_reading()

    def read_now(self, data: bytes) -> None:
        """Read what waited (server/hub/reads.py)."""
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
            elif isinstance(event, Request):
                self._handshake(event)
        self._flush()

    # --- uvicorn's server calls this on SIGTERM -----------------------------------------

    def shutdown(self) -> None:
        """Tell the client to reconnect elsewhere (1012), after the hub flushed its batches."""
        if self.ws.state is State.OPEN:
            self.hub.flush_before_shutdown()
            self.close("server_restart", "server shutting down; reconnect")
        elif self.transport is not None and self.ws.state is State.CONNECTING:
            self.transport.close()

    # --- sending ------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Encode and send a message meant for this connection alone."""
        if self.ws.state is not State.OPEN:
            return
        payload = self.codec.encode(message)
        if self.codec.binary:
            self.ws.send_binary(payload)
        else:
            self.ws.send_text(payload)
        self._flush()

    def close(self, name: str, reason: str = "", *, abort_after: float = CLOSE_TIMEOUT_S) -> None:
        """Start the closing handshake with a code of protocol/codes.py; abort if it stalls."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.hub.disconnects.labels(name).inc()
        self.hub.detach(self)  # no batch may follow the close frame
        if self.ws.state is State.OPEN:
            self.ws.send_close(CLOSE_BY_NAME[name].code, reason)
            self._flush()
        transport = self.transport
        asyncio.get_running_loop().call_later(abort_after, transport.abort)

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            else:
                # Sans-I/O's signal for end of stream: the closing handshake is done
                # (or the request was rejected), so close the TCP connection.
                transport.close()
                break
        state = self.ws.state
        if state is not State.OPEN and state is not State.CONNECTING and not self.closing:
            # The peer started the closing handshake, or websockets failed the
            # connection (1002, 1009): no batch may follow its close frame.
            self.closing = True
            code = self.ws.close_code
            self.hub.disconnects.labels(_close_label(code)).inc()
            self.hub.detach(self)
            if not transport.is_closing() or transport.get_write_buffer_size():
                # (closed with nothing left to write: gone at once, no timer needed)
                asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.abort)
        if state is State.CLOSED:
            transport.close()

    # --- receiving ----------------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        path = urlsplit(request.path).path
        headers = request.headers
        forbidden = self.hub.origins.refusal(headers.get("Origin"), headers.get("Host"))
        forwarded = headers.get_all("X-Forwarded-For")
        if forwarded and self.proxies is not None:  # behind a proxy: the client it names
            self.address = client_address(self.proxies.client(self.peer, forwarded))
        if path != "/ws":
            response = self.ws.reject(404, "Not Found: the WebSocket endpoint is /ws\n")
        elif forbidden is not None:
            response = self.ws.reject(403, forbidden + "\n")
        else:
            refusal = self.hub.admission_refusal()
            crowded = self.hub.address_refusal(self) if refusal is None else None
            if refusal is not None:
                response = self.ws.reject(503, refusal + "\n")
                response.headers["Retry-After"] = "5"
            elif crowded is not None:
                response = self.ws.reject(429, crowded + "\n")
                response.headers["Retry-After"] = "5"
            else:
                response = self.ws.accept(request)
        if response.status_code == 101:
            response.headers["Server"] = self.hub.server_name
        else:
            response.headers = Headers(
                [(k, v) for k, v in response.headers.raw_items() if k.lower() != "server"]
            )
            response.headers["Server"] = self.hub.server_name
        self.ws.send_response(response)
        if response.status_code == 101:
            chosen = response.headers.get("Sec-WebSocket-Protocol")
            self.codec = codec_for_subprotocol(chosen) or JSON
            self.deflate = shares_frames(self.ws.extensions)
            self.hub.attach(self)
            _forget_request(self.ws)

    def _on_frame(self, frame: Frame) -> None:
        if self.closing:
            return
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if self.fragments is not None:
                return  # websockets already failed the connection for this (1002)
            if (opcode is Opcode.BINARY) is not self.codec.binary:
                kind = "binary" if self.codec.binary else "text"
                self.close("unsupported_data", f"{self.codec.subprotocol} uses {kind} frames")
                return
            if not frame.fin:
                self.fragments = bytearray(frame.data)
                return
            data = bytes(frame.data)
        elif opcode is Opcode.CONT:
            if self.fragments is None:
                return
            self.fragments += frame.data
            if len(self.fragments) > self.hub.settings.limits.max_frame_bytes:
                self.close("message_too_big", "message over limits.max_frame_bytes")
                return
            if not frame.fin:
                return
            data = bytes(self.fragments)
            self.fragments = None
        else:
            return  # ping (answered by the protocol object), pong, close
        if not self.codec.binary:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                # RFC 6455 section 8.1: a text frame that is not UTF-8 fails the connection.
                self.close("invalid_payload", "text frame is not valid UTF-8")
                return
        try:
            self.hub.receive(self, data)
        except Exception:
            # A bug in handling one command must not take the connection down.
            log.exception("command failed on %s", self.describe())
            self.send(error(CommandError("internal_error", "internal error; nothing was changed")))

    # --- ordered handling of commands that wait on the store ------------------------------

    def enqueue(self, item: Command) -> None:
        if self.inbox is None:
            self.inbox = deque()
        self.inbox.append(item)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._drain_inbox())

    @property
    def busy(self) -> bool:
        return bool(self.inbox)

    async def _drain_inbox(self) -> None:
        inbox = self.inbox
        assert inbox is not None
        while inbox:
            item = inbox[0]
            try:
                await self.hub.handle_async(self, item)
            except CommandError as err:
                self.hub.reply_error(self, item, err)
            except Exception:
                log.exception("command failed")
                self.hub.reply_error(self, item, CommandError("internal_error", "internal error"))
            finally:
                inbox.popleft()
        # Done (no await since the check): a finished task kept here would keep its
        # coroutine and context, objects the GC walks, for every idle connection.
        self.worker = None

    def describe(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return f"{peer} {self.identity.user_id if self.identity else '-'}"
