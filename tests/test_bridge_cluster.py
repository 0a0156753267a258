"""Bridges on nodes sharing Redis (PROTOCOL.md, "Bridges"): a webhook bridge runs on the
node that took it, its danmaku reach a viewer on another node through the relay, the other
node lists it as elsewhere, and the node restarted under the same node id resumes it from
the store."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

from server.bridges.webhook import signature
from tests.conftest import UNIT
from tests.nodes import Cluster
from tests.test_cluster import open_client

ROOM = "stage"
SECRET = "the cluster's webhook secret"


async def post(base: str, text: str, message_id: str) -> int:
    raw = orjson.dumps({"sender": "u1", "name": "Ann", "text": text, "id": message_id})
    ts = str(int(time.time()))
    headers = {"X-Hudong-Timestamp": ts, "X-Hudong-Signature": signature(SECRET, ts, raw)}
    async with httpx.AsyncClient(base_url=base, timeout=10 * UNIT) as http:
        r = await http.post(
            f"/api/v1/rooms/{ROOM}/bridges/webhook/shop", content=raw, headers=headers
        )
    return r.status_code


async def danmaku(client: Any, want: int) -> list[str]:
    got: list[str] = []
    while len(got) < want:
        message = await client.recv(timeout=10)
        if message["type"] == "batch":
            got.extend(e["text"] for e in message["events"] if e["type"] == "danmaku")
    return got


async def test_a_bridge_feeds_every_node_and_resumes_on_its_restarted_node(shared_redis):
    async with Cluster(shared_redis.url, count=2, HUDONG_BRIDGES_WEBHOOK_SECRET=SECRET) as cluster:
        await cluster.create_room(ROOM)
        runner, other = cluster.nodes
        viewer = await open_client(other.ws_url)
        await viewer.join(ROOM, token=await cluster.mint(ROOM, "viewer", "v1"))
        async with cluster.http(0) as http:
            r = await http.post(
                f"/api/v1/rooms/{ROOM}/bridges", json={"platform": "webhook", "channel": "shop"}
            )
            assert r.status_code == 201, r.text
            assert r.json()["node"] == "n0"
        assert await post(runner.base, "from the shop", "m1") == 202
        assert await post(other.base, "wrong node", "m2") == 404  # it runs on n0 only
        assert await danmaku(viewer, 1) == ["from the shop"]
        async with cluster.http(1) as http:
            (listed,) = (await http.get(f"/api/v1/rooms/{ROOM}/bridges")).json()["bridges"]
        assert listed["status"] == {"state": "elsewhere"}

        runner.stop()
        await runner.start()  # the same node id: it resumes its bridges
        for _ in range(int(100 * UNIT)):
            if await post(runner.base, "after the restart", "m3") == 202:
                break
            await asyncio.sleep(0.05)
        assert await danmaku(viewer, 1) == ["after the restart"]
