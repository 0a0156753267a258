"""Trust across nodes (issue 15, acceptance 7 and 8): moderation, room settings,
closed interactions and token revocations reach a node that lost relay messages, and
a revocation reaches every node within a second. Real hudong processes on a real
redis-server; the pub/sub connections are dropped with ``CLIENT KILL TYPE pubsub``."""

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from websockets.exceptions import ConnectionClosed

from tests.conftest import UNIT
from tests.nodes import Cluster
from tests.test_cluster import open_client

pytestmark = pytest.mark.slow

ROOM = "trust"
POLL = {
    "id": "p",
    "question": "Which?",
    "kind": "single",
    "options": [{"id": c, "label": c.upper()} for c in "ab"],
}
DEADLINE_S = 5.0


async def drop_pubsub(url: str) -> int:
    """``CLIENT KILL TYPE pubsub``: every node's pub/sub connection is dropped; what is
    published before a node has subscribed again is lost to it."""
    client = aioredis.from_url(url)
    try:
        return int(await client.client_kill_filter(_type="pubsub"))
    finally:
        await client.aclose()


async def until(check, what: str, deadline: float) -> None:
    """Call ``check`` (an async predicate) until it holds, failing at ``deadline``."""
    while True:
        if await check():
            return
        assert time.monotonic() < deadline, f"not within {DEADLINE_S} s: {what}"
        await asyncio.sleep(0.1)


async def closed_with(client, code: int, deadline: float) -> bool:
    try:
        while time.monotonic() < deadline:
            await client.recv(timeout=max(0.1, deadline - time.monotonic()))
    except ConnectionClosed:
        return client.ws.close_code == code
    except TimeoutError:
        return False
    return False


async def test_moderation_settings_and_closes_survive_lost_relay_messages(shared_redis):
    async with Cluster(shared_redis.url, count=2) as cluster:
        await cluster.create_room(ROOM)
        async with cluster.http(0) as http:
            r = await http.post(
                f"/api/v1/rooms/{ROOM}/interactions", json={"kind": "poll", "spec": POLL}
            )
            assert r.status_code == 201, r.text
            r = await http.post(
                f"/api/v1/rooms/{ROOM}/interactions/p/actions", json={"action": "open"}
            )
            assert r.status_code == 200, r.text
        node2 = cluster.nodes[1].ws_url
        viewers, ids = {}, {}  # ids: as the wire shows them (pseudonyms)
        for user in ("bad", "loud", "voter", "talker"):
            viewers[user] = await open_client(node2)
            joined = await viewers[user].join(ROOM, token=await cluster.mint(ROOM, "viewer", user))
            ids[user] = joined["you"]["id"]
        assert (await viewers["talker"].command("danmaku", text="hello"))["type"] == "ack"

        # Phase 1: drop the pub/sub connections, then at once ban, mute and close the
        # poll through node 1 (their relay messages are lost to node 2 while it
        # subscribes again).
        async with cluster.http(0) as http:
            assert await drop_pubsub(shared_redis.url) >= 2  # one per node
            moderation = f"/api/v1/rooms/{ROOM}/moderation"
            answers = await asyncio.gather(
                http.post(moderation, json={"action": "ban", "user": ids["bad"]}),
                http.post(moderation, json={"action": "mute", "user": ids["loud"]}),
                http.post(f"/api/v1/rooms/{ROOM}/interactions/p/actions", json={"action": "close"}),
            )
            assert [r.status_code for r in answers] == [200] * 3, [r.text for r in answers]
        deadline = time.monotonic() + DEADLINE_S * UNIT

        assert await closed_with(viewers["bad"], 4003, deadline), "the banned viewer stayed"
        again = await open_client(node2)
        reply = await again.command(
            "join", room=ROOM, token=await cluster.mint(ROOM, "viewer", "bad")
        )
        assert reply["code"] == "banned", reply
        await again.close()

        async def muted() -> bool:
            reply = await viewers["loud"].command("danmaku", text="still here")
            return reply.get("code") == "muted"

        await until(muted, "the muted viewer's danmaku are refused on node 2", deadline)

        async def vote_refused() -> bool:
            reply = await viewers["voter"].command(
                "vote", interaction="p", option="a", key=f"k{time.monotonic()}"
            )
            return reply.get("code") == "not_open"

        await until(vote_refused, "a vote on the closed poll is refused on node 2", deadline)

        # Phase 2: staff-only mode, set just after the pub/sub connections dropped again.
        async with cluster.http(0) as http:
            assert await drop_pubsub(shared_redis.url) >= 2
            r = await http.patch(f"/api/v1/rooms/{ROOM}", json={"settings": {"mode": "staff"}})
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + DEADLINE_S * UNIT

        async def paused() -> bool:
            reply = await viewers["talker"].command("danmaku", text="may I?")
            return reply.get("code") == "danmaku_paused"

        await until(paused, "staff-only mode applies on node 2", deadline)
        for user in ("loud", "voter", "talker"):
            await viewers[user].close()


async def test_a_revoked_token_is_refused_on_every_node_within_a_second(shared_redis):
    async with Cluster(shared_redis.url, count=2) as cluster:
        await cluster.create_room(ROOM)
        async with cluster.http(0) as http:
            r = await http.post(f"/api/v1/rooms/{ROOM}/tokens", json={"role": "moderator"})
            assert r.status_code == 201, r.text
            moderator, jti = r.json()["token"], r.json()["jti"]
        sessions = []
        for node in cluster.nodes:
            client = await open_client(node.ws_url)
            await client.join(ROOM, token=moderator)
            sessions.append(client)
        async with cluster.http(0) as http:
            r = await http.post(f"/api/v1/rooms/{ROOM}/revocations", json={"jti": jti})
            assert r.status_code == 201, r.text
        revoked_at = time.monotonic()
        deadline = revoked_at + 1.0 * UNIT
        for client in sessions:  # open sessions on both nodes are closed
            assert await closed_with(client, 4006, deadline), "a revoked session stayed open"
        for i, node in enumerate(cluster.nodes):
            client = await open_client(node.ws_url)
            reply = await client.command("join", room=ROOM, token=moderator)
            assert reply["code"] == "unauthorized" and "revoked" in reply["message"], reply
            await client.close()
            async with cluster.http(i) as http:
                http.headers["Authorization"] = f"Bearer {moderator}"
                r = await http.get(f"/api/v1/rooms/{ROOM}/interactions")
                assert r.status_code == 401, r.text
