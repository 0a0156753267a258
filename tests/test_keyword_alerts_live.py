"""Keyword alerts on a live node (PROTOCOL.md, "Keyword alerts"): watch lists over REST,
viewers' danmaku over real sockets, the alert on the staff connections only, the
Prometheus metric, and acknowledging."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson

from tests.conftest import UNIT, Client, LiveServer, running_server

ROOM = "launch"
WATCH = {
    "id": "refund",
    "name": "退款 / 投诉",
    "terms": ["退款", "投诉"],
    "pairs": [["BrandX", "差"]],
    "threshold": 3,
    "window_s": 60,
}


async def member(live: LiveServer, role: str, user_id: str) -> tuple[Client, str]:
    token = await live.mint(ROOM, role, user_id=user_id, name=user_id.title())
    client = await live.connect()
    await client.join(ROOM, token=token)
    return client, token


async def alert_notice(client: Client, until: Any = lambda a: True) -> dict[str, Any]:
    """The ``alert`` of the next keyword_alert notice that satisfies ``until``."""
    deadline = asyncio.get_running_loop().time() + 5 * UNIT
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, "no keyword_alert notice arrived"
        message = await client.recv(left / UNIT)
        if message["type"] == "notice" and message.get("kind") == "keyword_alert":
            alert: dict[str, Any] = message["alert"]
            if until(alert):
                return alert


async def until_pong(client: Client) -> list[dict[str, Any]]:
    """Everything the client received before the answer to a ping sent now."""
    await client.send({"op": "ping", "id": 999})
    seen = []
    while True:
        message = await client.recv()
        if message["type"] == "pong":
            return seen
        seen.append(message)


def metrics_line(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not on /metrics")


async def test_a_spike_of_watch_listed_danmaku_alerts_staff_and_can_be_acknowledged(live):
    await live.create_room(ROOM)
    host_token = await live.mint(ROOM, "host", user_id="host-1", name="Host")
    async with live.http(host_token) as http:
        answer = await http.put(
            f"/api/v1/rooms/{ROOM}/alerts/watchlists", json={"watchlists": [WATCH]}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["watchlists"][0]["terms"] == ["退款", "投诉"]
        assert answer.json()["alerts"] == []

    host, _ = await member(live, "host", "host-1")
    moderator, moderator_token = await member(live, "moderator", "mod-1")
    viewers = [(await member(live, "viewer", f"fan-{i}"))[0] for i in range(3)]
    # Watch lists are private: not in any snapshot, nor in the room a viewer can read.
    joined = await (await live.connect()).join(ROOM)
    assert "退款" not in orjson.dumps(joined).decode()

    async with live.http() as admin:
        before = metrics_line((await admin.get("/metrics")).text, "hudong_keyword_alerts_total")
    assert before == 0.0

    sent = ["主播好棒 666", "我要退款!", "ＢｒａｎｄＸ 的客服太差了", "投诉 怎么没人管"]
    for viewer, text in zip([viewers[0], *viewers], sent, strict=True):
        reply = await viewer.command("danmaku", text=text)
        assert reply["type"] == "ack", reply

    for staff in (host, moderator):
        alert = await alert_notice(staff)
        assert alert["watch"] == "refund"
        assert alert["name"] == "退款 / 投诉"
        assert alert["count"] == 3
        assert alert["acked"] is None
        assert [s["text"] for s in alert["samples"]] == sent[1:]
        assert [s["user"] for s in alert["samples"]] == ["fan-0", "fan-1", "fan-2"]
    # Viewers never get it (a notice is sent before anything that follows it).
    for viewer in viewers:
        got = await until_pong(viewer)
        assert not [m for m in got if m.get("kind") == "keyword_alert"], got

    async with live.http() as admin:
        text = (await admin.get("/metrics")).text
    assert metrics_line(text, "hudong_keyword_alerts_total") == 1.0
    assert metrics_line(text, "hudong_keyword_alerts_active") == 1.0

    async with live.http(moderator_token) as http:
        listed = (await http.get(f"/api/v1/rooms/{ROOM}/alerts")).json()
        assert listed["active"] == 1
        assert [a["id"] for a in listed["alerts"]] == [alert["id"]]
        acked = await http.post(f"/api/v1/rooms/{ROOM}/alerts/{alert['id']}/ack")
        assert acked.status_code == 200, acked.text
        assert acked.json()["acked"]["user"] == "mod-1"
        assert acked.json()["acked"]["role"] == "moderator"

    seen = await alert_notice(host, lambda a: a["acked"] is not None)
    assert seen["id"] == alert["id"]
    assert seen["acked"]["name"] == "Mod-1"
    assert live.metric("hudong_keyword_alerts_active") == 0.0

    async with live.http(host_token) as http:
        again = await http.post(f"/api/v1/rooms/{ROOM}/alerts/{alert['id']}/ack")
        assert again.json()["acked"]["user"] == "mod-1"  # the first acknowledgement stays
        listed = (await http.get(f"/api/v1/rooms/{ROOM}/alerts")).json()
        assert listed["active"] == 0
        assert listed["alerts"][0]["acked"]["user"] == "mod-1"
        log = (await http.get(f"/api/v1/rooms/{ROOM}/audit-log?action=alerts")).json()
    # the audit log names who set the lists and each acknowledgement (the repeat too)
    kept = [(e["action"], e["actor"]["role"], e["target"]) for e in log["entries"]]
    assert ("alerts.ack", "host", {"alert": alert["id"]}) in kept
    assert ("alerts.ack", "moderator", {"alert": alert["id"]}) in kept
    assert [k[0] for k in kept].count("alerts.watchlists") == 1, kept


async def test_only_staff_read_and_set_watch_lists_and_bad_ones_change_nothing(live):
    await live.create_room(ROOM)
    viewer = await live.mint(ROOM, "viewer", user_id="fan")
    screen = await live.mint(ROOM, "screen", user_id="wall")
    host = await live.mint(ROOM, "host", user_id="host-1")
    path = f"/api/v1/rooms/{ROOM}/alerts"
    for token in (viewer, screen):
        async with live.http(token) as http:
            assert (await http.get(path)).status_code == 403
            put = await http.put(f"{path}/watchlists", json={"watchlists": [WATCH]})
            assert put.status_code == 403
            assert (await http.post(f"{path}/a-123/ack")).status_code == 403
    async with live.http(None) as http:
        assert (await http.get(path)).status_code == 401
    async with live.http(host) as http:
        ok = await http.put(f"{path}/watchlists", json={"watchlists": [WATCH]})
        assert ok.status_code == 200
        for bad in (
            {"watchlists": [{**WATCH, "threshold": 0}]},
            {"watchlists": [{**WATCH, "terms": [], "pairs": []}]},
            {"watchlists": "refund"},
            {"lists": []},
        ):
            answer = await http.put(f"{path}/watchlists", json=bad)
            assert answer.status_code == 400, bad
            assert answer.json()["error"]["code"] == "invalid_field"
        assert (await http.get(path)).json()["watchlists"][0]["threshold"] == 3
        missing = await http.post(f"{path}/a-nothere/ack")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "unknown_target"
        assert (await http.get("/api/v1/rooms/nowhere/alerts")).status_code in (401, 404)
        cleared = await http.put(f"{path}/watchlists", json={"watchlists": []})
        assert cleared.json()["watchlists"] == []


async def test_watch_lists_set_while_viewers_are_in_the_room_apply_at_once(live):
    await live.create_room(ROOM)
    host, host_token = await member(live, "host", "host-1")
    viewer, _ = await member(live, "viewer", "fan")
    one = {"id": "scam", "terms": ["scam"], "threshold": 1, "window_s": 10}
    async with live.http(host_token) as http:
        r = await http.put(f"/api/v1/rooms/{ROOM}/alerts/watchlists", json={"watchlists": [one]})
        assert r.status_code == 200
    assert (await viewer.command("danmaku", text="this is a SCAM"))["type"] == "ack"
    alert = await alert_notice(host)
    assert (alert["watch"], alert["count"]) == ("scam", 1)


async def test_a_spike_spread_over_two_nodes_alerts_staff_on_both_once(shared_redis):
    """Two nodes on one Redis: viewers on both spike a list (two matches on one node,
    one on the other: neither alone reaches the threshold of 3). One alert, raised once,
    reaches the host on node 1 and the moderator on node 2; the host acknowledges it on
    node 1, and node 2's moderator sees that."""
    prefix = f"al{uuid.uuid4().hex[:8]}:"
    shared = {"redis_url": shared_redis.url, "redis_prefix": prefix}
    async with (
        running_server(server={**shared, "node_id": "n1"}) as one,
        running_server(server={**shared, "node_id": "n2"}) as two,
    ):
        await one.create_room(ROOM)
        host_token = await one.mint(ROOM, "host", user_id="host-1", name="Host")
        async with one.http(host_token) as http:
            r = await http.put(
                f"/api/v1/rooms/{ROOM}/alerts/watchlists", json={"watchlists": [WATCH]}
            )
            assert r.status_code == 200
        host = await one.connect()
        await host.join(ROOM, token=host_token)
        far = await two.connect()
        await far.join(ROOM, token=await two.mint(ROOM, "moderator", user_id="mod-2"))
        far_viewer = await two.connect()
        await far_viewer.join(ROOM)
        senders = [
            (await member(one, "viewer", "fan-0"))[0],
            (await member(two, "viewer", "fan-1"))[0],
            (await member(one, "viewer", "fan-2"))[0],
        ]
        texts = ["退款!", "投诉", "要退款"]
        for sender, text in zip(senders, texts, strict=True):
            assert (await sender.command("danmaku", text=text))["type"] == "ack"
        alert = await alert_notice(host)
        seen = await alert_notice(far)
        assert seen["id"] == alert["id"]
        assert sorted(s["text"] for s in seen["samples"]) == sorted(texts)
        async with one.http(host_token) as http:
            listed = (await http.get(f"/api/v1/rooms/{ROOM}/alerts")).json()
        assert [a["id"] for a in listed["alerts"]] == [alert["id"]]  # raised once
        total = one.metric("hudong_keyword_alerts_total") + two.metric(
            "hudong_keyword_alerts_total"
        )
        assert total == 1.0
        async with one.http(host_token) as http:
            r = await http.post(f"/api/v1/rooms/{ROOM}/alerts/{alert['id']}/ack")
            assert r.status_code == 200
        acked = await alert_notice(far, lambda a: a["acked"] is not None)
        assert acked["acked"]["user"] == "host-1"
        active = one.metric("hudong_keyword_alerts_active") + two.metric(
            "hudong_keyword_alerts_active"
        )
        assert active == 0.0
        got = await until_pong(far_viewer)
        assert not [m for m in got if m.get("kind") == "keyword_alert"], got


async def test_wall_posts_and_questions_count_like_danmaku(live):
    await live.create_room(ROOM)
    host, host_token = await member(live, "host", "host-1")
    viewer, _ = await member(live, "viewer", "fan")
    watch = {"id": "refund", "terms": ["退款"], "threshold": 2, "window_s": 60}
    async with live.http(host_token) as http:
        r = await http.put(f"/api/v1/rooms/{ROOM}/alerts/watchlists", json={"watchlists": [watch]})
        assert r.status_code == 200
    reply = await viewer.command("post", key="p1", text="怎么退款?")
    assert reply["type"] == "ack", reply
    assert (await viewer.command("danmaku", text="退款退款"))["type"] == "ack"
    alert = await alert_notice(host)
    assert [s["text"] for s in alert["samples"]] == ["怎么退款?", "退款退款"]


async def test_a_node_that_missed_the_mark_tells_its_staff_at_the_resync(live):
    """Another node stored an alert, and its relay message was lost: the periodic resync
    re-reads the room's alerts, and the staff here hear of it then (once)."""
    await live.create_room(ROOM)
    host, _ = await member(live, "host", "host-1")
    record = {
        "id": "a-refund-1",
        "watch": "refund",
        "name": "Refunds",
        "count": 12,
        "threshold": 10,
        "window_s": 60,
        "normal": 1.5,
        "at": 1_000,
        "node": "elsewhere",
        "samples": [{"user": "u", "name": "U", "text": "退款", "ts": 1_000}],
        "acked": None,
    }
    await live.rooms.store.apply(ROOM, "~alerts", record["id"], "k1", record, {})
    live.rooms.resync()
    assert await alert_notice(host) == record
    live.rooms.resync()  # nothing new: nothing told
    for _ in range(500):  # the re-read has finished
        if not live.rooms.alerts._tasks:
            break
        await asyncio.sleep(0.01)
    got = await until_pong(host)
    assert not [m for m in got if m.get("kind") == "keyword_alert"], got
