"""Shared fixtures: a real hudong node on a loopback port, and protocol clients.

Every test talks to the server over real sockets. ``UNIT`` scales every timeout
(set HUDONG_TEST_UNIT=3 on a slow machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from protocol.codec import JSON, MSGPACK, Codec, codec_for_subprotocol
from protocol.delta import HeldViews
from server.app import create_app
from server.config import Settings
from server.hub import Hub
from server.rooms.service import RoomService
from server.serving import uvicorn_options

# The browser tests' fixtures (node, browser, pages), for every test module.
pytest_plugins = ["tests.browser_kit"]

UNIT = float(os.environ.get("HUDONG_TEST_UNIT", "1"))
# One TLS context for every HTTP client of the tests (``verify=TLS``): each httpx client
# builds its own otherwise, reading the CA bundle, about 50 ms of CPU for each of the
# thousands made (a token minted, a room created), where the nodes speak plain HTTP.
TLS = ssl.create_default_context()
ADMIN = "test-admin-token"
# Signs room tokens in tests; HS256 wants at least 32 bytes.
SECRET = "test-secret-0123456789abcdefghijklmnop"


def require_tool(tool: str, what: str) -> str:
    """The path of ``tool``; without it ``what`` cannot run: a loud skip here, a failure
    in CI (CI=true), where .ci/run installs every tool."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed: {what} cannot run"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"!!! {message} (they run in CI)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """One protocol client: a websockets connection plus the codec it negotiated."""

    def __init__(self, ws: ClientConnection, codec: Codec) -> None:
        self.ws = ws
        self.codec = codec
        self.next_id = 0
        self.online: int | None = None  # the count of the last ``online`` message
        # Views kept current from snapshots and state messages (protocol/delta.py);
        # with ``apply_deltas``, a state message is handed on with ``interactions`` the
        # whole views it changed, as before deltas, and a gap asks for a snapshot.
        self.held = HeldViews()
        self.apply_deltas = True

    async def send(self, message: dict[str, Any]) -> None:
        data = self.codec.encode(message)
        await self.ws.send(data if self.codec.binary else data.decode())

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def recv(self, timeout: float = 5.0, *, online: bool = False) -> dict[str, Any]:
        """The next message. ``online`` messages come whenever the room's count moves,
        like heartbeats: unless ``online`` is set they are noted in :attr:`online` and
        passed over, so a test reads the messages it is about."""
        while True:
            data = await asyncio.wait_for(self.ws.recv(), timeout * UNIT)
            raw = data if isinstance(data, bytes) else data.encode()
            message: dict[str, Any] = self.codec.decode(raw)
            if message.get("type") == "online" and not online:
                self.online = message["online"]
                continue
            return await self._follow(message)

    async def _follow(self, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("type")
        if kind in ("joined", "snapshot") and isinstance(message.get("snapshot"), dict):
            self.held.snapshot(message["snapshot"])
        elif kind == "state":
            changed = self.held.state(message)
            if changed is None:
                await self.send({"op": "snapshot"})
            elif self.apply_deltas:
                message = {k: v for k, v in message.items() if k != "patches"}
                message["interactions"] = changed
        return message

    async def recv_type(self, type_: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of ``type_``, skipping batches and others before it."""
        while True:
            message = await self.recv(timeout, online=type_ == "online")
            if message.get("type") == type_:
                return message

    async def command(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a command with a fresh id and return the reply that carries that id."""
        self.next_id += 1
        cid = self.next_id
        await self.send({"op": op, "id": cid, **fields})
        while True:
            message = await self.recv()
            if message.get("id") == cid and message.get("type") != "batch":
                return message

    async def join(self, room: str, **fields: Any) -> dict[str, Any]:
        reply = await self.command("join", room=room, **fields)
        assert reply["type"] == "joined", reply
        return reply

    def discard_incoming(self) -> None:
        """Read and drop everything from now on (a sender that is not under test as a reader)."""

        async def discard() -> None:
            with contextlib.suppress(Exception):
                async for _ in self.ws:
                    pass

        self._discard = asyncio.get_running_loop().create_task(discard())

    async def close(self) -> None:
        await self.ws.close()


@dataclass
class LiveServer:
    port: int
    app: Any
    server: uvicorn.Server
    clients: list[Client] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    @property
    def rooms(self) -> RoomService:
        rooms: RoomService = self.app.state.rooms
        return rooms

    def http(self, token: str | None = ADMIN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=10 * UNIT, verify=TLS)

    async def create_room(self, room_id: str, **settings: Any) -> dict[str, Any]:
        async with self.http() as http:
            r = await http.post("/api/v1/rooms", json={"id": room_id, "settings": settings})
            assert r.status_code == 201, r.text
            data: dict[str, Any] = r.json()
            return data

    async def mint(self, room_id: str, role: str, **fields: Any) -> str:
        async with self.http() as http:
            r = await http.post(f"/api/v1/rooms/{room_id}/tokens", json={"role": role, **fields})
            assert r.status_code == 201, r.text
            token: str = r.json()["token"]
            return token

    async def connect(self, subprotocol: str | None = "hudong.v1.json", **kw: Any) -> Client:
        offer = [subprotocol] if subprotocol else None
        ws = await connect(
            self.ws_url,
            subprotocols=offer,
            open_timeout=10 * UNIT,
            compression=None,
            max_size=None,
            ping_interval=None,
            **kw,
        )
        codec = codec_for_subprotocol(ws.subprotocol) or JSON
        client = Client(ws, codec)
        self.clients.append(client)
        hello = await client.recv()
        assert hello["type"] == "hello", hello
        return client

    def viewer_id(self, sub: str) -> str:
        """The id a viewer token minted for ``sub`` has on this node (its pseudonym)."""
        authority = self.app.state.authority
        return str(authority.viewer_id(sub, "viewer", guest=False))

    def metric(self, name: str, **labels: str) -> float:
        value = self.hub.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else float(value)


class _Server(uvicorn.Server):
    """uvicorn's server, looking for ``should_exit`` every 10 ms instead of every 100 ms:
    each test that stops its node waited up to that long (the suite stops about a
    thousand)."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_server(**sections: dict[str, Any]) -> AsyncIterator[LiveServer]:
    port = free_port()
    settings = Settings().replace(
        # the port too: the QR codes' links name the node's own address
        server={"admin_token": ADMIN, "secret": SECRET, "port": port},
        # Tests read reports and exports often, all from 127.0.0.1: their rate per client
        # has tests of its own (test_heavy_requests.py).
        limits={"heavy_requests_per_s": 1000.0, "heavy_request_burst": 1000},
    )
    if sections:
        settings = settings.replace(**sections)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=2,
        backlog=2048,
        **uvicorn_options(settings),
    )
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    assert server.started, "the test server did not start"
    live = LiveServer(port, app, server)
    try:
        yield live
    finally:
        # All at once: a client that stopped reading (its queue full) never reads the
        # close frame, so its close waits the whole second; one after the other, the 20
        # senders of test_fanout.py cost 20 s.
        await asyncio.gather(*(_close(client) for client in live.clients))
        server.should_exit = True
        await asyncio.wait_for(task, 15 * UNIT)


async def _close(client: Client) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.ws.close(), 1)
    # a close that timed out leaves the socket open: never leave it to the GC
    client.ws.transport.abort()


@pytest.fixture
async def live() -> AsyncIterator[LiveServer]:
    async with running_server() as server:
        yield server


@pytest.fixture
def server_factory() -> Callable[..., contextlib.AbstractAsyncContextManager[LiveServer]]:
    return running_server


__all__ = ["ADMIN", "JSON", "MSGPACK", "SECRET", "UNIT", "Client", "LiveServer", "running_server"]


from tests.redis_fixtures import shared_cluster, shared_redis  # noqa: E402,F401  (session fixtures)


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test():
    """Collect after every test, so a socket a test leaked warns in that test, not in
    whichever test the garbage collector happens to run in later. What survives is then
    frozen, so the next test's collection walks only what that test made: a walk of the
    whole heap took 40-80 ms a test. A hub started in a test leaves a frozen heap frozen
    (server/hub/collector.py)."""
    yield
    gc.collect()
    gc.freeze()
