"""Many nodes serve one room (ARCHITECTURE.md, "Deployment shapes"): real hudong
processes on a real redis-server or Redis Cluster that the tests start themselves."""

import asyncio
import random
import time
from collections import defaultdict

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from protocol.codec import JSON, codec_for_subprotocol
from tests.conftest import UNIT, Client
from tests.nodes import Cluster
from tests.redis_fixtures import redis_server

pytestmark = pytest.mark.slow


async def open_client(url, subprotocol="hudong.v1.json"):
    ws = await connect(
        url,
        subprotocols=[subprotocol],
        open_timeout=10 * UNIT,
        compression=None,
        ping_interval=None,
        max_size=None,
    )
    client = Client(ws, codec_for_subprotocol(ws.subprotocol) or JSON)
    assert (await client.recv())["type"] == "hello"
    return client


async def collect(client, expected, into):
    while len(into) < expected:
        message = await client.recv(timeout=30)
        if message["type"] == "batch":
            into.extend(message["events"])


@pytest.mark.parametrize("backend", ["redis", "cluster"])
async def test_viewers_on_every_node_get_every_danmaku(request, backend):
    url = (
        request.getfixturevalue("shared_redis").url
        if backend == "redis"
        else (request.getfixturevalue("shared_cluster"))
    )
    async with Cluster(url) as cluster:
        await cluster.create_room("live")
        viewers = []
        for i in range(60):
            node = cluster.nodes[i % 3]
            client = await open_client(node.ws_url, ("hudong.v1.json", "hudong.v1.msgpack")[i % 2])
            await client.join("live")
            viewers.append(client)
        senders = []
        for i, node in enumerate(cluster.nodes):
            sender = await open_client(node.ws_url)
            await sender.join("live", token=await cluster.mint("live", "host", f"host{i}"))
            sender.discard_incoming()
            senders.append(sender)
        events = defaultdict(list)
        tasks = [asyncio.create_task(collect(v, 150, events[i])) for i, v in enumerate(viewers)]

        async def send(i, sender):
            for k in range(50):
                await sender.send({"op": "danmaku", "text": f"n{i}-{k}"})
                await asyncio.sleep(0.01)

        await asyncio.gather(*(send(i, s) for i, s in enumerate(senders)))
        await asyncio.wait_for(asyncio.gather(*tasks), 60 * UNIT)
        for i in range(len(viewers)):
            by_sender = defaultdict(list)
            for event in events[i]:
                node, k = event["text"][1:].split("-")
                by_sender[node].append(int(k))
            assert {n: ks for n, ks in by_sender.items()} == {
                str(n): list(range(50)) for n in range(3)
            }, f"viewer {i}"


async def test_redis_outage_loses_no_acknowledged_command():
    """Redis stops for 5 s while viewers keep checking in with retries; afterwards every
    acknowledged check-in counts exactly once, /readyz went 503 and back, no node restarted."""
    with redis_server() as redis:
        redis.stop()
        redis.extra = ["--appendonly", "yes", "--appendfsync", "always"]  # acks must survive
        redis.start()
        async with Cluster(redis.url) as cluster:
            await cluster.create_room("vote")
            pids = [node.process.pid for node in cluster.nodes]
            tokens = [await cluster.mint("vote", "viewer", f"v{i}") for i in range(60)]
            viewers = []
            for i, token in enumerate(tokens):
                client = await open_client(cluster.nodes[i % 3].ws_url)
                await client.join("vote", token=token)
                client.discard_incoming_except_replies = True
                viewers.append(client)
            acked = {}
            refused_while_down = 0

            async def check_in(i, client):
                nonlocal refused_while_down
                await asyncio.sleep(random.uniform(0, 7))
                cid = 1000 + i
                key = f"checkin-{i}"
                while True:
                    await client.send({"op": "checkin", "id": cid, "key": key})
                    try:
                        while True:
                            reply = await client.recv(timeout=5)
                            if reply.get("id") == cid:
                                break
                    except TimeoutError:
                        continue  # no answer: send the same command again
                    if reply["type"] == "ack":
                        acked[i] = reply
                        return
                    assert reply["code"] == "store_unavailable", reply
                    refused_while_down += 1
                    await asyncio.sleep(reply["retry_after_ms"] / 1000)

            readiness = defaultdict(list)

            async def watch_readiness():
                while True:
                    for node in cluster.nodes:
                        try:
                            readiness[node.name].append(await node.ready_status())
                        except Exception:
                            readiness[node.name].append(0)
                    await asyncio.sleep(0.2)

            watcher = asyncio.create_task(watch_readiness())
            workers = [asyncio.create_task(check_in(i, c)) for i, c in enumerate(viewers)]
            await asyncio.sleep(1.0)
            redis.stop()
            await asyncio.sleep(5.0)
            redis.start()
            await asyncio.wait_for(asyncio.gather(*workers), 60 * UNIT)
            await asyncio.sleep(2.5)  # a couple of health checks after the last command
            watcher.cancel()

            assert len(acked) == 60
            assert refused_while_down > 0, "the outage did not overlap the check-ins"
            # exactly once: one record per viewer, and the count says 60
            fresh = await open_client(cluster.nodes[1].ws_url)
            snapshot = (await fresh.join("vote"))["snapshot"]
            assert snapshot["interactions"]["checkin"]["count"] == 60
            assert max(a["count"] for a in acked.values()) == 60
            assert sum(not a["already"] for a in acked.values()) == 60
            for node in cluster.nodes:
                statuses = readiness[node.name]
                assert 503 in statuses, f"{node.name} never reported not ready"
                first_down = statuses.index(503)
                assert 200 in statuses[first_down:], f"{node.name} did not become ready again"
                assert statuses[-1] == 200
            assert [node.process.pid for node in cluster.nodes] == pids
            assert all(node.alive for node in cluster.nodes)


async def test_viewers_of_a_killed_node_reconnect_elsewhere_and_resync(shared_redis):
    async with Cluster(shared_redis.url) as cluster:
        await cluster.create_room("stage")
        doomed, survivors = cluster.nodes[0], cluster.nodes[1:]
        stayers = []
        for i in range(20):
            client = await open_client(survivors[i % 2].ws_url)
            joined = await client.join(
                "stage", token=await cluster.mint("stage", "viewer", f"s{i}")
            )
            stayers.append((client, joined["snapshot"]))
        gate = asyncio.Semaphore(20)

        async def mover(i):
            async with gate:
                token = await cluster.mint("stage", "viewer", f"m{i}")
                client = await open_client(doomed.ws_url)
                await client.join("stage", token=token)
                return client, token

        movers = await asyncio.gather(*(mover(i) for i in range(300)))
        # Some state and some stream before the crash.
        for i in range(10):
            reply = await movers[i][0].command("checkin", key=f"k{i}")
            assert reply["type"] == "ack"
        host = await open_client(survivors[0].ws_url)
        await host.join("stage", token=await cluster.mint("stage", "host", "host"))
        for k in range(20):
            await host.send({"op": "danmaku", "text": f"before {k}"})

        async def follow(client, snapshot):
            """Keep a stayer's view current from state messages and batches."""
            view = {
                "interactions": dict(snapshot["interactions"]),
                "recent": [e["id"] for e in snapshot["recent"]],
                "version": snapshot["version"],
            }
            while True:
                message = await client.recv(timeout=60)
                if message["type"] == "state":
                    view["interactions"].update(message["interactions"])
                    view["version"] = max(view["version"], message["version"])
                elif message["type"] == "batch":
                    view["recent"] = (view["recent"] + [e["id"] for e in message["events"]])[-50:]
                follow.views[id(client)] = view

        follow.views = {}
        followers = [asyncio.create_task(follow(c, s)) for c, s in stayers]
        await asyncio.sleep(1.5)  # state is coalesced every 250 ms; let it all arrive

        doomed.kill()
        killed_at = time.monotonic()

        async def reconnect(i, client, token):
            try:
                while True:
                    await client.recv(timeout=30)
            except (ConnectionClosed, TimeoutError):
                pass
            target = survivors[i % 2]
            fresh = await open_client(target.ws_url)
            joined = await fresh.join("stage", token=token)
            return time.monotonic() - killed_at, joined["snapshot"]

        results = await asyncio.wait_for(
            asyncio.gather(*(reconnect(i, c, t) for i, (c, t) in enumerate(movers))), 60 * UNIT
        )
        await asyncio.sleep(0.5)
        for task in followers:
            task.cancel()
        worst = max(delay for delay, _ in results)
        assert worst < 10, f"the slowest viewer took {worst:.1f} s to resync"
        expected = next(iter(follow.views.values()))
        for view in follow.views.values():
            assert view == expected, [
                (k, view[k], expected[k]) for k in view if view[k] != expected[k]
            ]
        assert expected["interactions"]["checkin"]["count"] == 10
        for _, snapshot in results:
            got = {
                "interactions": snapshot["interactions"],
                "recent": [e["id"] for e in snapshot["recent"]][-50:],
                "version": snapshot["version"],
            }
            assert got == expected


async def test_moderation_and_the_wall_hold_across_nodes(shared_redis):
    """A ban, a mute, a retract and a pending post made through one node hold on the
    other: moderation lives in the store, nodes learn of it through the relay."""
    async with Cluster(shared_redis.url, count=3) as cluster:
        await cluster.create_room("live")
        a, b, c = (node.ws_url for node in cluster.nodes)
        host = await open_client(a)
        await host.join("live", token=await cluster.mint("live", "host", "host"))
        troll = await open_client(b)
        joined = await troll.join("live", token=await cluster.mint("live", "viewer", "troll"))
        troll_id = joined["you"]["id"]  # its pseudonym (PROTOCOL.md, "Privacy")
        loud = await open_client(b)
        joined = await loud.join("live", token=await cluster.mint("live", "viewer", "loud"))
        loud_id = joined["you"]["id"]

        posted = await loud.command("post", key="p1", text="from node b")
        assert posted["status"] == "pending", posted
        while True:  # the host on node a sees the queue of node b's post
            message = await host.recv_type("state", timeout=10)
            wall = message["interactions"].get("wall")
            if wall and [p["text"] for p in wall["queue"]] == ["from node b"]:
                break

        sent = await loud.command("danmaku", text="spoiler")
        assert sent["type"] == "ack", sent
        ack = await host.command("host", action="retract", event=sent["event"])
        assert ack["type"] == "ack", ack
        while True:
            batch = await loud.recv_type("batch", timeout=10)
            if any(e["type"] == "retract" for e in batch["events"]):
                break

        muted = await host.command("host", action="mute", user=loud_id, duration_s=60)
        assert muted["type"] == "ack", muted
        banned = await host.command("host", action="ban", user=troll_id)
        assert banned["type"] == "ack", banned
        with pytest.raises(ConnectionClosed):
            while True:
                await troll.recv(timeout=10)
        assert troll.ws.close_code == 4003
        deadline = time.monotonic() + 10 * UNIT
        while True:  # node b learns of the mute within a state flush
            reply = await loud.command("danmaku", text="still here?")
            if reply.get("code") == "muted":
                break
            assert time.monotonic() < deadline, reply
            await asyncio.sleep(0.1)
        late = await open_client(c)  # node c opens the room: the replay comes from Redis
        joined = await late.join("live")
        assert "spoiler" not in [e.get("text") for e in joined["snapshot"]["recent"]]
        assert sent["event"] not in [e["id"] for e in joined["snapshot"]["recent"]]


async def test_a_viewer_who_moves_between_nodes_takes_part_once(shared_redis):
    """The console's participant and unique-viewer counts are one over all nodes, not
    the nodes' sums."""
    async with Cluster(shared_redis.url, count=3) as cluster:
        await cluster.create_room("live")
        a, b, c = (node.ws_url for node in cluster.nodes)
        lurkers = []  # keep the room open on every node (an empty room closes there)
        for url in (a, b, c):
            lurkers.append(await open_client(url))
            await lurkers[-1].join("live")
        for url, user in ((a, "mover"), (b, "mover"), (c, "other")):
            client = await open_client(url)
            await client.join("live", token=await cluster.mint("live", "viewer", user))
            assert (await client.command("danmaku", text=f"hi from {user}"))["type"] == "ack"
            await client.ws.close()
        deadline = time.monotonic() + 15 * UNIT
        async with cluster.http(1) as http:
            while True:  # every node reports within 2 s
                stats = (await http.get("/api/v1/rooms/live/stats")).json()
                if stats["danmaku_per_min"] == 3 and stats["participants"] >= 2:
                    await asyncio.sleep(2.5)  # one more round of reports: still 2
                    stats = (await http.get("/api/v1/rooms/live/stats")).json()
                    break
                assert time.monotonic() < deadline, stats
                await asyncio.sleep(0.2)
        assert stats["participants"] == 2, stats
        # Unique viewers too: 3 lurkers, "mover" on two nodes once, "other".
        assert stats["unique_viewers"] == 5, stats
