"""permessage-deflate over real sockets (server/hub/deflate.py): clients that offer it and
clients that do not get the same messages; batches are compressed frames (RSV1) for the
first, plain for the others; compressed client frames are read; the setting turns it off."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame, Opcode
from websockets.typing import ExtensionParameter

from loadtest.chinese import nicknames, storm
from protocol.codec import JSON, MSGPACK, Codec, codec_for_subprotocol
from tests.conftest import UNIT, LiveServer

# One connection sends the storm of many senders: their repeats are not its spam.
LIMITS = {"viewer_commands_per_s": 1000.0, "viewer_command_burst": 1000, "duplicate_window_s": 0.0}
HUB = {"degrade_auto": False}  # the clients share the server's loop here
COUNT = 40


class Seen:
    """Every data frame a client received, as it was on the wire: (RSV1, bytes, the
    message's type)."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.frames: list[tuple[bool, int, str]] = []
        self.response: Sequence[ExtensionParameter] = ()
        self.inflated = 0  # bytes of the batches' messages once inflated

    def batches(self) -> list[tuple[bool, int]]:
        return [(rsv1, size) for rsv1, size, type_ in self.frames if type_ == "batch"]


class RecordingDeflate(PerMessageDeflate):
    """The client's permessage-deflate, noting each frame before it is inflated."""

    seen: Seen

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        decoded = super().decode(frame, max_size=max_size)
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            type_ = self.seen.codec.decode(bytes(decoded.data))["type"]
            self.seen.frames.append((frame.rsv1, len(frame.data), type_))
            if type_ == "batch":
                self.seen.inflated += len(decoded.data)
        return decoded


class Recording(ClientPerMessageDeflateFactory):
    """Offers permessage-deflate as browsers do (``client_max_window_bits``), and records."""

    def __init__(self, seen: Seen, **offer: Any) -> None:
        super().__init__(client_max_window_bits=True, **offer)
        self.seen = seen

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> PerMessageDeflate:
        self.seen.response = list(params)
        ext = super().process_response_params(params, accepted_extensions)
        recording = RecordingDeflate(
            ext.remote_no_context_takeover,
            ext.local_no_context_takeover,
            ext.remote_max_window_bits,
            ext.local_max_window_bits,
        )
        recording.seen = self.seen
        return recording


class Viewer:
    """A websockets client reading batches, with or without compression."""

    def __init__(self, ws: ClientConnection, seen: Seen | None) -> None:
        self.ws = ws
        self.seen = seen
        self.codec: Codec = codec_for_subprotocol(ws.subprotocol) or JSON

    @classmethod
    async def open(cls, srv: LiveServer, codec: Codec, *, deflate: bool, **offer: Any) -> Viewer:
        seen = Seen(codec) if deflate else None
        ws = await connect(
            srv.ws_url,
            subprotocols=[codec.subprotocol],  # type: ignore[list-item]
            compression=None,
            extensions=[Recording(seen, **offer)] if seen is not None else None,
            open_timeout=10 * UNIT,
            ping_interval=None,
        )
        viewer = cls(ws, seen)
        assert (await viewer.recv())["type"] == "hello"
        return viewer

    async def send(self, message: dict[str, Any]) -> None:
        data = self.codec.encode(message)
        await self.ws.send(data if self.codec.binary else data.decode())

    async def recv(self) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(), 10 * UNIT)
        return self.codec.decode(data if isinstance(data, bytes) else data.encode())

    async def join(self, room: str, **fields: Any) -> dict[str, Any]:
        await self.send({"op": "join", "id": 1, "room": room, **fields})
        while True:
            message = await self.recv()
            if message.get("id") == 1:
                assert message["type"] == "joined", message
                return message

    async def danmaku(self, count: int) -> list[dict[str, Any]]:
        """The danmaku events of the batches until ``count`` arrived."""
        got: list[dict[str, Any]] = []
        while len(got) < count:
            message = await self.recv()
            if message["type"] == "batch":
                got.extend(e for e in message["events"] if e["type"] == "danmaku")
        return got


async def _storm(srv: LiveServer, room: str, viewers: list[Viewer]) -> list[list[dict[str, Any]]]:
    """COUNT realistic Chinese danmaku from a compressing sender, sent in one burst, and
    what every viewer received of them."""
    sender = await Viewer.open(srv, JSON, deflate=True)
    await sender.join(room, name=nicknames()[0])
    readers = [asyncio.create_task(v.danmaku(COUNT)) for v in viewers]
    for _, text in itertools.islice(storm(), COUNT):
        await sender.send({"op": "danmaku", "text": text})
    got = await asyncio.wait_for(asyncio.gather(*readers), 30 * UNIT)
    await sender.ws.close()
    return got


async def test_compressing_and_plain_viewers_get_the_same_danmaku(server_factory):
    async with server_factory(limits=LIMITS, hub=HUB) as srv:
        await srv.create_room("zh")
        viewers = [
            await Viewer.open(srv, codec, deflate=deflate)
            for codec in (JSON, MSGPACK)
            for deflate in (True, False)
        ]
        for viewer in viewers:
            await viewer.join("zh")
        got = await _storm(srv, "zh", viewers)

        texts = [text for _, text in itertools.islice(storm(), COUNT)]
        assert [e["text"] for e in got[0]] == texts
        assert got[0] == got[1] == got[2] == got[3]
        for viewer in viewers:
            if viewer.seen is None:
                assert "Sec-WebSocket-Extensions" not in viewer.ws.response.headers  # type: ignore[union-attr]
                continue
            header = viewer.ws.response.headers["Sec-WebSocket-Extensions"]  # type: ignore[union-attr]
            assert "server_no_context_takeover" in header, header
            assert "client_no_context_takeover" in header, header
            assert any(rsv1 for rsv1, _ in viewer.seen.batches()), "no batch came compressed"
            # The burst makes batches of several danmaku: compressed, they are far smaller.
            wire = sum(size for _, size in viewer.seen.batches())
            assert wire * 2 < viewer.seen.inflated, (wire, viewer.seen.inflated)
        for viewer in viewers:
            await viewer.ws.close()


async def test_a_client_that_asks_for_a_smaller_server_window_gets_plain_batches(server_factory):
    """The shared frame is compressed with a 32 KiB window: a client that can only keep
    1 KiB (``server_max_window_bits=10``) must never get it, yet reads every message."""
    async with server_factory(limits=LIMITS, hub=HUB) as srv:
        await srv.create_room("w")
        small = await Viewer.open(srv, JSON, deflate=True, server_max_window_bits=10)
        full = await Viewer.open(srv, JSON, deflate=True)
        for viewer in (small, full):
            await viewer.join("w")
        got = await _storm(srv, "w", [small, full])
        assert got[0] == got[1] and len(got[0]) == COUNT
        assert ("server_max_window_bits", "10") in small.seen.response  # type: ignore[union-attr]
        assert any(rsv1 for rsv1, _ in full.seen.batches())  # type: ignore[union-attr]
        # its own messages (hello, joined) are compressed for it alone; batches are plain
        assert small.seen.batches()  # type: ignore[union-attr]
        assert not any(rsv1 for rsv1, _ in small.seen.batches())  # type: ignore[union-attr]
        assert any(rsv1 for rsv1, _, type_ in small.seen.frames if type_ == "joined")  # type: ignore[union-attr]


async def test_a_compressed_message_over_the_frame_limit_closes_with_1009(server_factory):
    """A small compressed frame that inflates past limits.max_frame_bytes is refused
    before it is inflated in full."""
    async with server_factory(limits=LIMITS, hub=HUB) as srv:
        client = await Viewer.open(srv, JSON, deflate=True)
        await client.ws.send("x" * 1_000_000)
        await asyncio.wait_for(client.ws.wait_closed(), 10 * UNIT)
        assert client.ws.close_code == 1009


async def test_the_setting_turns_compression_off(server_factory):
    async with server_factory(limits=LIMITS, hub={**HUB, "permessage_deflate": False}) as srv:
        await srv.create_room("off")
        viewer = await Viewer.open(srv, JSON, deflate=True)
        await viewer.join("off")
        assert "Sec-WebSocket-Extensions" not in viewer.ws.response.headers  # type: ignore[union-attr]
        got = await _storm(srv, "off", [viewer])
        assert len(got[0]) == COUNT
        assert viewer.seen.frames == []  # type: ignore[union-attr]  (nothing negotiated)


def test_the_micro_benchmark_measures_what_the_node_sends(capsys):
    """loadtest/deflatebench.py (BENCHMARKS.md, "Wire bytes") compresses as the node does:
    its 20-danmaku batches shrink as the table says, and the storm is the same each run."""
    from loadtest import deflatebench

    assert list(itertools.islice(storm(7), 50)) == list(itertools.islice(storm(7), 50))
    assert (
        deflatebench.main(["--sizes", "20", "--levels", "6", "--batches", "5", "--repeat", "1"])
        == 0
    )
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    plain = {r[0]: float(r[3]) for r in rows if r[2] == "plain"}
    zipped = {r[0]: float(r[5]) for r in rows if r[2] == "l6"}
    assert plain["json"] > 150 and zipped["json"] < 50  # B per danmaku, plain vs level 6
