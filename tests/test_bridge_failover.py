"""A bridge survives the loss of its node (PROTOCOL.md, "Bridges"; server/bridges/failover.py):
two node processes on a real Redis, a webhook bridge on n0, a viewer on n1. When n0 is killed,
n1 takes the bridge over once its lease lapses (not before), drops the ids n0 took, and the
chat goes on reaching the viewer; when n0 was only frozen (a partition), it stops its run as
soon as it runs again and finds the lease is n1's; a bridge removed through a node that does
not run it stops on the node that does."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import httpx

from server.backends import open_backends
from server.bridges.lease import CURSORS_BOX
from tests.conftest import UNIT, running_server
from tests.nodes import Cluster, Node
from tests.redis_fixtures import room_commands
from tests.test_bridge_cluster import ROOM, SECRET, danmaku, post
from tests.test_bridge_webhook import signed
from tests.test_cluster import open_client

LEASE_S = 2.0
RENEW_S = 0.5
ENV = {
    "HUDONG_BRIDGES_WEBHOOK_SECRET": SECRET,
    "HUDONG_BRIDGES_LEASE_S": str(LEASE_S),
    "HUDONG_BRIDGES_RENEW_S": str(RENEW_S),
}
BID = "webhook:shop"


async def bridged_room(cluster: Cluster):
    """The room, a viewer on n1, and the bridge on n0 with one message taken."""
    await cluster.create_room(ROOM)
    viewer = await open_client(cluster.nodes[1].ws_url)
    await viewer.join(ROOM, token=await cluster.mint(ROOM, "viewer", "v1"))
    async with cluster.http(0) as http:
        r = await http.post(
            f"/api/v1/rooms/{ROOM}/bridges", json={"platform": "webhook", "channel": "shop"}
        )
        assert r.status_code == 201, r.text
        assert r.json()["node"] == "n0" and r.json()["lease_until"] > time.time() * 1000
    assert await post(cluster.nodes[0].base, "before", "m1") == 202
    assert await danmaku(viewer, 1) == ["before"]
    return viewer


async def saved_ids(redis_url: str, node: Node, want: str) -> None:
    """Wait until the bridge's cursor record in the store holds the id ``want``."""
    backends = open_backends(redis_url, prefix=node.prefix)
    try:
        for _ in range(int(100 * UNIT)):
            record = (await backends.store.records(ROOM, CURSORS_BOX)).get(BID, {})
            if want in record.get("seen", []):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the bridge's cursor record never held {want!r}")
    finally:
        await backends.broker.close()
        await backends.store.close()


async def taken_over(node: Node, text: str, message_id: str) -> float:
    """Post to ``node`` until it runs the bridge (202, not 404); the seconds it took."""
    start = time.monotonic()
    while (status := await post(node.base, text, message_id)) != 202:
        assert status == 404, status
        assert time.monotonic() - start < LEASE_S + RENEW_S + 10 * UNIT, "never taken over"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def listed(cluster: Cluster, node: int) -> dict:
    async with cluster.http(node) as http:
        (bridge,) = (await http.get(f"/api/v1/rooms/{ROOM}/bridges")).json()["bridges"]
    return bridge


async def takeovers(node: Node) -> float:
    """The node's ``hudong_bridge_takeovers_total`` of webhook bridges."""
    async with httpx.AsyncClient(base_url=node.base, timeout=10 * UNIT) as http:
        text = (await http.get("/metrics")).text
    lines = [ln for ln in text.splitlines() if ln.startswith("hudong_bridge_takeovers_total")]
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines if 'platform="webhook"' in ln)


async def test_a_killed_nodes_bridge_is_taken_over_without_repeats(shared_redis):
    async with Cluster(shared_redis.url, count=2, **ENV) as cluster:
        first, second = cluster.nodes
        viewer = await bridged_room(cluster)
        assert await takeovers(second) == 0
        await saved_ids(shared_redis.url, first, "m1")

        held_until = (await listed(cluster, 1))["lease_until"] / 1000  # n1 reads the store
        first.kill()  # SIGKILL: no goodbye, its lease stays in the store until it lapses
        took = await taken_over(second, "before", "m1")  # a retry of what n0 took
        # not before the lease lapsed (n0 may have renewed it once more before it died),
        # and within a lease and a renewal (and the machine's slack) after n0 died
        assert time.time() >= held_until
        assert took <= LEASE_S + RENEW_S + 5 * UNIT
        assert await post(second.base, "after", "m2") == 202
        assert await danmaku(viewer, 1) == ["after"]  # m1 was not delivered again

        bridge = await listed(cluster, 1)
        assert bridge["node"] == "n1" and bridge["status"]["state"] == "connected"
        assert await takeovers(second) == 1


async def test_a_partitioned_owner_stops_when_it_finds_its_lease_taken(shared_redis):
    async with Cluster(shared_redis.url, count=2, **ENV) as cluster:
        first, second = cluster.nodes
        viewer = await bridged_room(cluster)
        assert first.process is not None
        first.process.send_signal(signal.SIGSTOP)  # frozen: it renews nothing meanwhile
        try:
            await taken_over(second, "taken over", "m2")
        finally:
            first.process.send_signal(signal.SIGCONT)
        assert await danmaku(viewer, 1) == ["taken over"]

        # n0 runs again: at its next round it reads that the lease is n1's and stops
        start = time.monotonic()
        while await post(first.base, "from the old owner", "m3") != 404:
            assert time.monotonic() - start < 10 * UNIT, "n0 kept running the bridge"
            await asyncio.sleep(0.05)
        bridge = await listed(cluster, 0)
        assert bridge["node"] == "n1" and bridge["status"] == {"state": "elsewhere"}
        assert (await listed(cluster, 1))["status"]["state"] == "connected"
        assert await post(second.base, "still here", "m4") == 202
        texts = await danmaku(viewer, 1)
        while texts[-1] != "still here":  # what n0 took before it stopped comes first
            texts += await danmaku(viewer, 1)
        assert texts.count("still here") == 1 and "taken over" not in texts

        # removed through n0, which does not run it: n1 stops it at its next round
        async with cluster.http(0) as http:
            r = await http.delete(f"/api/v1/rooms/{ROOM}/bridges/webhook/shop")
            assert r.status_code == 204, r.text
        start = time.monotonic()
        while await post(second.base, "after the removal", "m5") != 404:
            assert time.monotonic() - start < 10 * UNIT, "n1 kept running a removed bridge"
            await asyncio.sleep(0.05)


# --- rooms without a bridge ---------------------------------------------------------------

BARE_LEASE_S = 1.2
BARE_RENEW_S = 0.2  # a room read without a bridge is read again 1.0 s later, not 0.2 s


async def test_rooms_without_a_bridge_are_read_less_and_a_new_bridge_is_still_taken_over(
    shared_redis,
):
    """A node reads a served room's bridges every renew_s while it has one, and only every
    lease_s - renew_s while it has none; a bridge added on another node that then stops at
    once is still taken over within a lease and a renewal."""
    prefix = f"bare{uuid.uuid4().hex[:6]}:"
    bridges = {
        "lease_s": BARE_LEASE_S,
        "renew_s": BARE_RENEW_S,
        "scan_all_s": 0.0,
        "webhook": {"secret": SECRET},
    }
    rooms = [f"r{n}" for n in range(6)]
    server = {"redis_url": shared_redis.url, "redis_prefix": prefix}
    async with (
        room_commands(shared_redis.url, prefix) as commands,
        running_server(server={**server, "node_id": "a"}, bridges=bridges) as a,
    ):

        def reads(room: str) -> int:
            return commands["HGETALL", room, "i:~bridges:rec"]

        for room in rooms:
            await a.create_room(room)
            viewer = await a.connect()
            await viewer.join(room)  # served here: its bridges are tended
        await asyncio.sleep(0.5)  # the first reads of the served rooms
        commands.clear()
        window = time.monotonic()
        await asyncio.sleep(3.0)
        window = time.monotonic() - window
        # each every BARE_LEASE_S - BARE_RENEW_S (1 s), not every round (0.2 s: 15)
        most = int(window / (BARE_LEASE_S - BARE_RENEW_S)) + 1
        assert all(reads(room) <= most for room in rooms), (commands, most)

        async with running_server(server={**server, "node_id": "b"}, bridges=bridges) as b:
            async with b.http() as http:
                r = await http.post(
                    f"/api/v1/rooms/{rooms[0]}/bridges",
                    json={"platform": "webhook", "channel": "shop"},
                )
                assert r.status_code == 201, r.text
                assert r.json()["node"] == "b"
        stopped = time.monotonic()  # b stopped: its lease lapses within BARE_LEASE_S
        path = f"/api/v1/rooms/{rooms[0]}/bridges/webhook/shop"
        runs = a.app.state.bridges.runs
        while (rooms[0], "webhook:shop") not in runs:
            took = time.monotonic() - stopped
            assert took < BARE_LEASE_S + BARE_RENEW_S + 5 * UNIT, "never taken over"
            await asyncio.sleep(0.02)
        raw, headers = signed({"sender": "u1", "text": "after", "id": "m1"}, secret=SECRET)
        async with a.http(None) as http:
            assert (await http.post(path, content=raw, headers=headers)).status_code == 202
        # and from now on the room with a bridge is read every round
        commands.clear()
        await asyncio.sleep(1.0)
        assert reads(rooms[0]) > max(reads(room) for room in rooms[1:]), commands
