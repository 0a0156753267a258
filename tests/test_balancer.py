"""A rolling restart behind the real load balancer (issue 17): Debian's HAProxy, run with
deploy/haproxy.cfg (its addresses moved to loopback), in front of two hudong nodes on one
redis-server. Viewers connect only through HAProxy; one node is drained with SIGTERM
while they vote, and its viewers reconnect through HAProxy to the other node."""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from protocol.codec import JSON
from tests.balancer_kit import require_haproxy
from tests.conftest import ADMIN, UNIT, Client, free_port
from tests.nodes import Cluster
from tests.redis_fixtures import redis_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
VIEWERS = 200
POLL = "p"
OPTIONS = ("a", "b", "c")


def balancer_config(port: int, nodes: list[int]) -> str:
    """deploy/haproxy.cfg with its listening address and servers on loopback; every
    timeout, check and retry setting as shipped."""
    cfg = (ROOT / "deploy" / "haproxy.cfg").read_text("utf-8")
    cfg = re.sub(r"\nresolvers docker\n(    .*\n)+", "\n", cfg)
    cfg = cfg.replace(" resolvers docker init-addr last,libc,none", "")
    cfg = re.sub(r"\n    server hudong-\d .*", "", cfg)
    servers = "".join(f"\n    server hudong-{i} 127.0.0.1:{p}" for i, p in enumerate(nodes))
    cfg = cfg.replace("\n    bind :8080\n", f"\n    bind 127.0.0.1:{port}\n")
    cfg = cfg.replace("\nfrontend stats\n", f"{servers}\n\nfrontend stats\n")
    cfg = cfg.replace("\n    bind :8404\n", f"\n    bind 127.0.0.1:{free_port()}\n")
    assert f"127.0.0.1:{port}" in cfg and cfg.count("127.0.0.1:") == len(nodes) + 2
    return cfg


async def test_a_drained_node_loses_no_viewer_and_no_vote_behind_haproxy():
    haproxy = require_haproxy()  # skips loudly here, fails in CI
    with redis_server() as redis:
        async with Cluster(redis.url, count=2) as cluster:
            port = free_port()
            with (
                tempfile.NamedTemporaryFile("w", suffix=".cfg") as cfg,
                tempfile.TemporaryFile() as log,
            ):
                cfg.write(balancer_config(port, [n.port for n in cluster.nodes]))
                cfg.flush()
                proxy = subprocess.Popen([haproxy, "-db", "-f", cfg.name], stdout=log, stderr=log)
                try:
                    await drain_behind(cluster, port)
                except BaseException:
                    log.seek(0)
                    print(log.read().decode(errors="replace")[-3000:])
                    print(cluster.nodes[0].output(), cluster.nodes[1].output())
                    raise
                finally:
                    proxy.terminate()
                    proxy.wait(10)


async def drain_behind(cluster: Cluster, port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    ws_url = f"ws://127.0.0.1:{port}/ws"
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10 * UNIT
    ) as http:
        for _ in range(100):  # HAProxy up and a node answering through it
            try:
                if (await http.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        assert (await http.post("/api/v1/rooms", json={"id": "show"})).status_code == 201
        spec = {
            "id": POLL,
            "question": "Which?",
            "kind": "single",
            "options": [{"id": o, "label": o} for o in OPTIONS],
        }
        r = await http.post("/api/v1/rooms/show/interactions", json={"kind": "poll", "spec": spec})
        assert r.status_code == 201, r.text
        r = await http.post(
            f"/api/v1/rooms/show/interactions/{POLL}/actions", json={"action": "open"}
        )
        assert r.status_code == 200, r.text
        tokens = []
        for i in range(VIEWERS):
            r = await http.post(
                "/api/v1/rooms/show/tokens", json={"role": "viewer", "user_id": f"v{i}"}
            )
            tokens.append(r.json()["token"])

    start = asyncio.Event()
    stop = asyncio.Event()
    acked: dict[int, dict] = {}
    closes: list[int] = []
    views: dict[int, dict] = {}
    joined = [0]

    async def open_and_join(i: int) -> Client:
        ws = await connect(
            ws_url,
            subprotocols=["hudong.v1.json"],
            open_timeout=10 * UNIT,
            compression=None,
            ping_interval=None,
        )
        client = Client(ws, JSON)
        assert (await client.recv())["type"] == "hello"
        reply = await client.join("show", token=tokens[i])
        views[i] = dict(reply["snapshot"]["interactions"][POLL])
        return client

    async def viewer(i: int) -> None:
        """What the JS client does: vote with one idempotency key, and after a close that
        says reconnect, come back (through the balancer), join and send it again."""
        option = OPTIONS[i % 3]
        client = await open_and_join(i)
        joined[0] += 1
        await start.wait()
        await asyncio.sleep(random.uniform(0, 3))
        while True:
            try:
                if i not in acked:
                    await client.send(
                        {"op": "vote", "id": 7, "interaction": POLL, "key": "k", "option": option}
                    )
                while not (stop.is_set() and i in acked):
                    try:
                        message = await client.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    if message.get("id") == 7:
                        assert message["type"] == "ack", message
                        acked[i] = message
                    elif message["type"] == "state" and POLL in message["interactions"]:
                        views[i] = dict(message["interactions"][POLL])
                return
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                closes.append(code)
                assert code == 1012, f"viewer {i} closed with {code}"
                await asyncio.sleep(random.uniform(0, 0.5))  # the client's full jitter
                client = await open_and_join(i)

    tasks = [asyncio.create_task(viewer(i)) for i in range(VIEWERS)]
    while joined[0] < VIEWERS:
        done = [t for t in tasks if t.done()]
        for t in done:
            t.result()
        await asyncio.sleep(0.1)
    start.set()
    await asyncio.sleep(1.0)  # some votes are in, more are coming
    drained = cluster.nodes[0]
    drained.process.terminate()  # SIGTERM
    assert await asyncio.to_thread(drained.process.wait, 20 * UNIT) == 0
    deadline = asyncio.get_running_loop().time() + 60 * UNIT
    while len(acked) < VIEWERS:
        for t in [t for t in tasks if t.done()]:
            t.result()
        assert asyncio.get_running_loop().time() < deadline, f"{len(acked)} acked"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # state is coalesced every 250 ms: let the last one arrive
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30 * UNIT)

    # the drained node's viewers (about half, by leastconn) were told to reconnect
    assert 0 < len(closes) < VIEWERS and set(closes) == {1012}
    expected = {o: sum(1 for i in range(VIEWERS) if OPTIONS[i % 3] == o) for o in OPTIONS}
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10 * UNIT
    ) as http:
        view = (await http.get(f"/api/v1/rooms/show/interactions/{POLL}")).json()
    results = view["results"]
    # every acknowledged vote counted once
    assert {o["id"]: o["count"] for o in results["options"]} == expected
    assert results["voters"] == VIEWERS
    # and every viewer, wherever it ended, sees the same poll
    first = views[0]
    assert all(v == first for v in views.values())
    assert {o["id"]: o["count"] for o in first["results"]["options"]} == expected
