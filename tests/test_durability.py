"""The embedded default keeps what it acknowledged (issue 14, target 2): ``kill -9`` of
``hudong serve`` in the middle of a vote burst, then a restart on the same data
directory. Every acknowledged vote is there, once; a retry of any vote (same key) counts
nothing twice; and the links minted before the kill still work."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from loadtest.rest import AdminApi
from tests.browser_kit import ADMIN, start_node, stop_node
from tests.conftest import UNIT, free_port

VOTERS = 200
OPTIONS = ("a", "b", "c")


async def _open(port: int, room: str, token: str) -> tuple[Any, dict[str, Any]]:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws",
        subprotocols=[Subprotocol("hudong.v1.json")],
        ping_interval=None,
        open_timeout=20 * UNIT,
    )
    await ws.recv()  # hello
    await ws.send(orjson.dumps({"op": "join", "id": 1, "room": room, "token": token}).decode())
    while True:
        reply = orjson.loads(await ws.recv())
        if reply.get("id") == 1:
            assert reply["type"] == "joined", reply
            return ws, reply


async def _vote(ws: Any, i: int) -> dict[str, Any]:
    await ws.send(
        orjson.dumps(
            {"op": "vote", "id": 2, "interaction": "p", "key": f"k{i}", "option": OPTIONS[i % 3]}
        ).decode()
    )
    while True:
        reply: dict[str, Any] = orjson.loads(await ws.recv())
        if reply.get("id") == 2:
            return reply


def _tallies(api: AdminApi) -> Counter[str]:
    status, view = api.view("r", "p")
    assert status == 200, view
    return Counter({o["id"]: o["count"] for o in view["results"]["options"] if o["count"]})


async def test_kill_9_in_a_vote_burst_loses_no_acknowledged_vote(tmp_path):
    port = free_port()
    # The secret is not given: the node keeps the one it makes in the data directory.
    env = {"HUDONG_DATA_DIR": str(tmp_path), "HUDONG_SECRET": ""}
    node = start_node(port, name="durability-a", **env)
    api = AdminApi(node.base, ADMIN)
    api.expect(201, "room", "POST", "/api/v1/rooms", {"id": "r", "title": "Launch"})
    api.create(
        "r",
        "poll",
        {
            "id": "p",
            "question": "Which?",
            "kind": "single",
            "options": [{"id": o, "label": o} for o in OPTIONS],
        },
    )
    api.act("r", "p", "open")
    minted = [
        api.expect(
            201,
            "token",
            "POST",
            "/api/v1/rooms/r/tokens",
            {"role": "viewer", "user_id": f"u{i}", "name": f"Viewer {i}"},
        )
        for i in range(VOTERS)
    ]
    tokens = [m["token"] for m in minted]
    # the viewers' ids are pseudonyms of u0, u1, …, the same after the restart (the kept
    # secret derives them; PROTOCOL.md, "Privacy")
    ids = [m["user_id"] for m in minted]
    assert all(i.startswith("p-") for i in ids) and len(set(ids)) == VOTERS
    sockets = [(await _open(port, "r", t))[0] for t in tokens]

    acked: dict[int, str] = {}
    killed = asyncio.Event()

    async def vote(i: int) -> None:
        try:
            reply = await _vote(sockets[i], i)
        except Exception:  # the node died under this vote: not acknowledged
            return
        if reply["type"] == "ack" and not killed.is_set():
            acked[i] = OPTIONS[i % 3]
            if len(acked) >= VOTERS // 3:
                killed.set()
                os.kill(node.process.pid, signal.SIGKILL)

    await asyncio.gather(*(vote(i) for i in range(VOTERS)))
    assert killed.is_set(), f"only {len(acked)} votes acknowledged before the burst ended"
    node.process.wait(10)
    node.log.close()
    for ws in sockets:
        await ws.close()

    node = start_node(port, name="durability-b", **env)
    try:
        api = AdminApi(node.base, ADMIN)
        after_kill = _tallies(api)
        want = Counter(acked.values())
        # Every acknowledged vote is there (and votes in flight at the kill may be too).
        assert all(after_kill[o] >= want[o] for o in OPTIONS), (after_kill, want)
        assert sum(after_kill.values()) <= VOTERS
        # The tokens minted before the kill still join, and every viewer's retry (same
        # key) is answered without counting twice: acknowledged ones are duplicates.
        for i, token in enumerate(tokens):
            ws, joined = await _open(port, "r", token)
            assert joined["you"]["id"] == ids[i], joined
            reply = await _vote(ws, i)
            assert reply["type"] == "ack", reply
            if i in acked:
                assert reply["duplicate"] is True, (i, reply)
            await ws.close()
        assert _tallies(api) == Counter(OPTIONS[i % 3] for i in range(VOTERS))
    finally:
        stop_node(node)
