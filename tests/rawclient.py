"""A WebSocket client whose reading the test controls: it can stop reading entirely
(a stuck phone), read later, or never answer pings. Built on websockets' Sans-I/O
client so the frames it sends are well-formed."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from protocol.codec import JSON, Codec
from protocol.delta import HeldViews


class RawClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: ClientProtocol,
        codec: Codec,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.codec = codec
        self.pending: list[Any] = []
        self.closed_code: int | None = None
        self.eof = False
        # Views kept current (protocol/delta.py): a state message is queued with
        # ``interactions`` the whole views it changed; a gap is counted in held.gaps
        # and the message queued as it came, for the test to ask for a snapshot.
        self.held = HeldViews()

    @classmethod
    async def connect(
        cls, port: int, *, rcvbuf: int | None = None, codec: Codec = JSON, path: str = "/ws"
    ) -> RawClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the window the server sees is small from the start.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=16384)
        protocol = ClientProtocol(
            parse_uri(f"ws://127.0.0.1:{port}{path}"),
            subprotocols=[codec.subprotocol],
            max_size=None,
        )
        protocol.send_request(protocol.connect())
        client = cls(reader, writer, protocol, codec)
        await client._flush()
        while True:
            data = await asyncio.wait_for(reader.read(65536), 10)
            if not data:
                raise ConnectionError("closed during handshake")
            protocol.receive_data(data)
            events = protocol.events_received()
            if events and isinstance(events[0], Response):
                if events[0].status_code != 101:
                    raise ConnectionError(f"handshake refused: {events[0].status_code}")
                client._take(events[1:])
                return client

    async def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)
        await self.writer.drain()

    def _take(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, Frame):
                if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                    self.pending.append(self._follow(self.codec.decode(bytes(event.data))))
                elif event.opcode is Opcode.CLOSE:
                    self.closed_code = Close.parse(bytes(event.data)).code

    def _follow(self, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("type")
        if kind in ("joined", "snapshot") and isinstance(message.get("snapshot"), dict):
            self.held.snapshot(message["snapshot"])
        elif kind == "state":
            changed = self.held.state(message)
            if changed is not None:
                message = {k: v for k, v in message.items() if k != "patches"}
                message["interactions"] = changed
        return message

    async def send(self, message: dict[str, Any]) -> None:
        data = self.codec.encode(message)
        if self.codec.binary:
            self.protocol.send_binary(data)
        else:
            self.protocol.send_text(data)
        await self._flush()

    async def pump(self, timeout: float = 5.0, *, answer_pings: bool = True) -> bool:
        """Read once (up to 64 KiB); False at end of stream. Pongs are sent unless told not."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except (ConnectionResetError, BrokenPipeError):
            self.eof = True
            return False
        if not data:
            self.eof = True
            self.protocol.receive_eof()
            return False
        self.protocol.receive_data(data)
        self._take(self.protocol.events_received())
        if answer_pings:
            await self._flush()
        else:
            self.protocol.data_to_send()  # drop the automatic pongs
        return True

    async def next_message(self, timeout: float = 5.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.pending:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self.pump(remaining):
                raise TimeoutError("no message")
        message: dict[str, Any] = self.pending.pop(0)
        return message

    async def message_of_type(self, type_: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            message = await self.next_message(timeout)
            if message.get("type") == type_:
                return message

    def abort(self) -> None:
        self.writer.transport.abort()
