"""The `hudong` command, heartbeats and graceful shutdown, on real processes and sockets."""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import UNIT, free_port
from tests.rawclient import RawClient


def _hudong_command() -> list[str]:
    exe = shutil.which("hudong", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "server"]


async def _start(port: int, env: dict[str, str]) -> subprocess.Popen:
    # The node keeps its secret in its data directory: never the user's own.
    data = tempfile.mkdtemp(prefix="hudong-lifecycle-")
    proc = subprocess.Popen(
        [*_hudong_command(), "serve", "--port", str(port)],
        env={**os.environ, "XDG_DATA_HOME": data, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    async with httpx.AsyncClient() as http:
        for _ in range(int(150 * UNIT)):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(f"hudong serve exited: {proc.stdout.read()}")
            await asyncio.sleep(0.1)
    proc.kill()
    out, _ = proc.communicate()
    raise AssertionError(f"hudong serve did not answer /healthz: {out}")


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20 * UNIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


async def test_serve_starts_on_the_embedded_default_and_prints_a_token(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUDONG_")}
    env["XDG_DATA_HOME"] = str(tmp_path)  # the default data directory, in a temp dir
    proc = subprocess.Popen(
        [*_hudong_command(), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(int(150 * UNIT)):
                try:
                    health = await http.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert health.status_code == 200
            assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
            metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            for name in (
                "hudong_connections",
                "hudong_rooms",
                "hudong_commands_total",
                "hudong_frames_out_total",
                "hudong_tick_duration_seconds_bucket",
                "hudong_drops_total",
                "hudong_event_loop_lag_seconds",
            ):
                assert name in metrics or name.rsplit("_", 1)[0] in metrics, name
    finally:
        code, out = _stop(proc)
    assert code == 0, out
    token = re.search(r"admin token \(generated.*\): (\S+)", out)
    assert token and len(token.group(1)) >= 32, out
    assert f"ws://127.0.0.1:{port}/ws" in out
    secret = tmp_path / "hudong" / "secret"
    assert f"kept in {secret}" in out and len(secret.read_text().strip()) >= 32


async def test_serve_refuses_a_bad_setting_with_a_clear_message():
    proc = subprocess.run(
        [*_hudong_command(), "serve", "--port", str(free_port())],
        env={**os.environ, "HUDONG_HUB_TICK_MS": "soon"},
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
    )
    assert proc.returncode == 2
    assert "hub.tick_ms: expected int, got 'soon'" in proc.stderr


async def test_sigterm_delivers_pending_batches_then_closes_with_1012():
    port = free_port()
    admin = "lifecycle-admin-token"
    proc = await _start(port, {"HUDONG_ADMIN_TOKEN": admin, "HUDONG_HUB_TICK_MS": "1000"})
    try:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {admin}"}) as http:
            r = await http.post(f"http://127.0.0.1:{port}/api/v1/rooms", json={"id": "bye"})
            assert r.status_code == 201
        viewers = [
            await connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["hudong.v1.json"])
            for _ in range(10)
        ]
        for ws in viewers:
            await ws.recv()  # hello
            await ws.send('{"op":"join","id":1,"room":"bye"}')
            assert '"joined"' in await ws.recv()
        await viewers[0].send('{"op":"danmaku","id":2,"text":"last words"}')
        assert '"ack"' in await viewers[0].recv()
        # The tick is 1 s, so the danmaku is still pending when SIGTERM arrives.
        proc.send_signal(signal.SIGTERM)
        for ws in viewers:
            received = []
            try:
                while True:
                    received.append(await asyncio.wait_for(ws.recv(), 10 * UNIT))
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1012
            assert any("last words" in m for m in received), received
        code, out = _stop(proc)
        assert code == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


async def test_silent_connections_are_reaped_and_live_ones_kept(server_factory):
    hub = {"heartbeat_s": 1.0, "heartbeat_timeout_s": 2.5}
    async with server_factory(hub=hub) as srv:
        await srv.create_room("hb")
        alive = await srv.connect()  # websockets answers pings by itself
        await alive.join("hb")
        silent = await RawClient.connect(srv.port)
        await silent.send({"op": "join", "room": "hb"})
        await silent.message_of_type("joined")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 * UNIT
        while silent.closed_code is None and not silent.eof and loop.time() < deadline:
            await silent.pump(timeout=deadline - loop.time(), answer_pings=False)
        assert silent.closed_code == 4009
        assert srv.metric("hudong_disconnects_total", reason="heartbeat_timeout") == 1
        assert (await alive.command("ping"))["type"] == "pong"
        silent.abort()


async def test_connection_that_never_joins_is_closed_with_4001(server_factory):
    async with server_factory(limits={"join_timeout_s": 1.0}) as srv:
        idle = await RawClient.connect(srv.port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 * UNIT
        while idle.closed_code is None and loop.time() < deadline:
            await idle.pump(timeout=deadline - loop.time())
        assert idle.closed_code == 4001
        idle.abort()


async def test_viewer_that_drops_tcp_without_a_close_frame_is_forgotten(live):
    """A FIN with no WebSocket close (a phone losing its app) must not stall the room."""
    await live.create_room("fin")
    watcher = await live.connect()
    await watcher.join("fin")
    host = await live.connect()
    await host.join("fin", token=await live.mint("fin", "host"))
    leaving = []
    for _ in range(5):
        raw = await RawClient.connect(live.port)
        await raw.send({"op": "join", "room": "fin"})
        await raw.message_of_type("joined")
        leaving.append(raw)
    assert len(live.hub.connections) == 7
    for raw in leaving:
        raw.writer.close()  # FIN, no close frame
    for k in range(20):
        await host.send({"op": "danmaku", "text": f"still here {k}"})
        await asyncio.sleep(0.01)
    got = []
    while len(got) < 20:
        message = await watcher.recv()
        if message["type"] == "batch":
            got.extend(e["text"] for e in message["events"])
    assert got == [f"still here {k}" for k in range(20)]
    assert len(live.hub.connections) == 2
    assert len(live.hub.live["fin"]) == 2
