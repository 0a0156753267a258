"""Limits an attacker can't get round (issue 15, "Limits"): a room's danmaku budget
shared fairly among client addresses, connections per viewer and per address, and caps
on what a room holds. Over real sockets; a second client address is 127.0.0.2, which
is loopback too."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.auth import Identity
from server.hub.quotas import client_address
from server.moderation.ratelimit import FairShare
from tests.conftest import UNIT, Client, LiveServer

ROOM = "caps"
HONEST = ("127.0.0.2", 0)


# --- the share, with the clock in hand ------------------------------------------------------


def test_one_address_gets_no_more_than_its_share_while_another_sends():
    budget = FairShare(100.0, 100, 0.0)
    # Alone, a sender may use the room's whole burst.
    assert sum(budget.take(0.0, "spam") == 0.0 for _ in range(150)) == 100
    # The room is empty now; the flood goes on, and from 0.2 s a second address sends.
    # Over those 2 s the room refills 200 danmaku: the flood gets 20 before the honest
    # sender comes, then half, and the honest sender all it asks.
    spam = honest = 0
    for step in range(1, 201):
        now = step / 100
        spam += sum(budget.take(now, "spam") == 0.0 for _ in range(20))
        if step % 20 == 0:
            honest += budget.take(now, "honest") == 0.0
    assert honest == 10
    assert 100 <= spam <= 115, spam


def test_without_fairness_the_flood_takes_everything():
    budget = FairShare(100.0, 100, 0.0, fair=False)
    for _ in range(150):
        budget.take(0.0, "spam")
    refused = 0
    for step in range(1, 201):
        now = step / 100
        for _ in range(20):
            budget.take(now, "spam")
        if step % 20 == 0:
            refused += budget.take(now, "honest") != 0.0
    assert refused == 10


def test_clients_are_counted_by_ipv4_address_or_ipv6_64():
    assert client_address("203.0.113.7") == "203.0.113.7"
    assert client_address("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_address("::ffff:198.51.100.4") == "198.51.100.4"
    assert client_address("fe80::1%eth0") == "fe80::/64"


def test_a_quiet_address_stops_counting_after_the_window():
    budget = FairShare(100.0, 100, 0.0)
    budget.take(0.0, "a")
    budget.take(0.0, "b")
    assert budget.active == 2
    budget.take(5.0, "a")
    assert budget.active == 1


# --- 400 connections from one address, and an honest viewer from another ------------------


async def _flood(srv: LiveServer, n: int) -> list[Client]:
    spammers = []
    for start in range(0, n, 50):
        batch = await asyncio.gather(*(srv.connect() for _ in range(start, min(n, start + 50))))
        await asyncio.gather(*(c.join(ROOM) for c in batch))
        spammers.extend(batch)
    for client in spammers:
        client.discard_incoming()
    return spammers


async def _spam(spammers: list[Client], stop: asyncio.Event) -> None:
    """Each spammer at its connection's whole rate (5/s), without ids (no acks), spread
    evenly: 20 every 10 ms, faster than the room's budget refills."""
    sent = 0
    while not stop.is_set():
        for start in range(0, len(spammers), 20):
            for client in spammers[start : start + 20]:
                # Each text new: the same one again would be refused as a repeat (the text
                # filter, before the budget), and this is about the budget.
                sent += 1
                await client.send({"op": "danmaku", "text": f"buy followers #{sent}"})
            await asyncio.sleep(0.01)


async def _honest_run(srv: LiveServer) -> tuple[list[dict[str, Any]], list[str]]:
    """The honest viewer's five answers, and the texts a watcher saw from it."""
    honest = await srv.connect(local_addr=HONEST)
    joined = await honest.join(ROOM)
    me = joined["you"]["id"]
    watcher = await srv.connect(local_addr=HONEST)
    await watcher.join(ROOM)
    spammers = await _flood(srv, 400)
    stop = asyncio.Event()
    flood = asyncio.get_running_loop().create_task(_spam(spammers, stop))
    try:
        await asyncio.sleep(0.5 * UNIT)  # the room's budget is used up by now
        replies = []
        for i in range(5):
            replies.append(await honest.command("danmaku", text=f"honest {i}"))
            await asyncio.sleep(0.2)
        seen: list[str] = []
        ok = sum(r["type"] == "ack" for r in replies)
        while len(seen) < ok:
            batch = await watcher.recv_type("batch")
            seen += [
                e["text"]
                for e in batch["events"]
                if e.get("type") == "danmaku" and e["user"]["id"] == me
            ]
    finally:
        stop.set()
        await flood
    return replies, seen


LIMITS = {"room_danmaku_per_s": 50.0, "room_danmaku_burst": 50}


async def test_400_connections_from_one_address_cannot_starve_an_honest_viewer(server_factory):
    async with server_factory(limits=LIMITS) as srv:
        await srv.create_room(ROOM)
        replies, seen = await _honest_run(srv)
        assert [r["type"] for r in replies] == ["ack"] * 5, replies
        assert seen == [f"honest {i}" for i in range(5)]
        # Everything accepted stayed within the room's budget (50/s, bursts of 50; the
        # run lasts well under 20 s), and most of the flood was refused.
        accepted = srv.metric("hudong_commands_total", op="danmaku", result="ok")
        refused = srv.metric("hudong_commands_total", op="danmaku", result="room_rate_limited")
        assert 5 < accepted < 50 + 50 * 20, accepted
        assert refused > accepted


async def test_without_fairness_the_flood_starves_the_honest_viewer(server_factory):
    # A smaller budget (5/s) than above, so that the flood's next frame takes every
    # token as soon as it is there, however the loop's turns fall.
    limits = {"room_danmaku_per_s": 5.0, "room_danmaku_burst": 5, "room_danmaku_fair": False}
    async with server_factory(limits=limits) as srv:
        await srv.create_room(ROOM)
        replies, _ = await _honest_run(srv)
        codes = [r.get("code") for r in replies]
        assert codes.count("room_rate_limited") >= 3, replies


# --- connections per viewer and per address ----------------------------------------------


async def test_one_guest_token_joins_on_at_most_five_connections(server_factory):
    async with server_factory() as srv:
        await srv.create_room(ROOM)
        first = await srv.connect()
        joined = await first.join(ROOM)
        token, me = joined["token"], joined["you"]["id"]
        for _ in range(4):
            await (await srv.connect()).join(ROOM, token=token)
        sixth = await srv.connect()
        reply = await sixth.command("join", room=ROOM, token=token)
        assert reply["type"] == "error", reply
        assert reply["code"] == "limit_reached"
        assert reply["cap"] == "connections_per_viewer" and reply["limit"] == 5
        # The refused connection stays open and may join as someone else ...
        assert (await sixth.join(ROOM))["you"]["id"] != me
        # ... and once one of the five leaves, the token gets in again.
        await first.close()
        for _ in range(50):
            again = await srv.connect()
            reply = await again.command("join", room=ROOM, token=token)
            if reply["type"] == "joined":
                break
            await again.close()
            await asyncio.sleep(0.05)
        assert reply["type"] == "joined", reply


async def test_a_viewers_connections_share_one_command_rate(server_factory):
    limits = {"viewer_commands_per_s": 0.5, "viewer_command_burst": 4}
    async with server_factory(limits=limits) as srv:
        await srv.create_room(ROOM)
        one = await srv.connect()
        token = (await one.join(ROOM))["token"]  # the join took 1 of 4
        two = await srv.connect()
        await two.join(ROOM, token=token)  # its own bucket; from now on, the shared one
        answers = []
        for client, text in zip((one, two, one, two), ("hi", "hello", "hey", "yo"), strict=True):
            answers.append((await client.command("danmaku", text=text))["type"])
        assert answers[:3] == ["ack"] * 3 and answers[3] == "error", answers


async def test_connections_per_address_when_capped(server_factory):
    async with server_factory(limits={"connections_per_address": 3}) as srv:
        held = [await srv.connect() for _ in range(3)]
        with pytest.raises(Exception) as refused:
            await srv.connect()
        assert "429" in str(refused.value)
        # Another address is not held to this one's count.
        other = await srv.connect(local_addr=HONEST)
        assert other is not None
        await held[0].close()
        for _ in range(50):
            try:
                await srv.connect()
                break
            except Exception:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("a freed place was not given again")


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(server_factory):
    """Through a proxy on 127.0.0.1 (uvicorn's default FORWARDED_ALLOW_IPS) every
    connection comes from the proxy; the node counts the client it names in
    X-Forwarded-For instead, the last one not a proxy (one the client wrote itself before
    it does not count). From an address not trusted, the header changes nothing."""

    def via(*hops: str) -> dict[str, Any]:
        return {"additional_headers": {"X-Forwarded-For": ", ".join(hops)}}

    async with server_factory(limits={"connections_per_address": 2}) as srv:
        await srv.connect(**via("203.0.113.5"))
        await srv.connect(**via("198.51.100.9, 203.0.113.5"))  # a hop the client made up
        with pytest.raises(Exception) as refused:
            await srv.connect(**via("203.0.113.5"))
        assert "429" in str(refused.value)
        for n in range(3):  # others behind the same proxy are not held to 203.0.113.5's count
            await srv.connect(**via(f"203.0.113.{10 + n}"))
        # 127.0.0.1 itself holds none of these places yet
        await srv.connect()
        await srv.connect()
        # 127.0.0.2 is no trusted proxy: its header is not believed
        await srv.connect(local_addr=HONEST, **via("203.0.113.20"))
        await srv.connect(local_addr=HONEST, **via("203.0.113.21"))
        with pytest.raises(Exception) as refused:
            await srv.connect(local_addr=HONEST, **via("203.0.113.22"))
        assert "429" in str(refused.value)


async def test_an_address_may_be_held_to_one_command_rate(server_factory):
    # 1 command/s, bursts of 2, for all the connections of 127.0.0.1 together.
    async with server_factory(limits={"commands_per_address_per_s": 1.0}) as srv:
        await srv.create_room(ROOM)
        one, two = await srv.connect(), await srv.connect()
        assert (await one.command("ping"))["type"] == "pong"
        assert (await two.command("ping"))["type"] == "pong"
        refused = await one.command("ping")
        assert refused["type"] == "error" and refused["code"] == "rate_limited", refused
        assert refused["retry_after_ms"] > 0
        # Another address has its own.
        other = await srv.connect(local_addr=HONEST)
        assert (await other.command("ping"))["type"] == "pong"


async def test_connections_per_address_are_not_capped_by_default(live):
    clients = [await live.connect() for _ in range(30)]
    assert len(clients) == 30


# --- what a room holds ----------------------------------------------------------------------


OPTIONS = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]


def _poll(i: int) -> dict[str, Any]:
    return {"id": f"p{i}", "question": f"Q{i}", "kind": "single", "options": OPTIONS}


async def test_the_101st_interaction_is_refused_over_rest_and_websocket(server_factory):
    async with server_factory() as srv:
        await srv.create_room(ROOM)
        async with srv.http() as http:
            for i in range(100):
                r = await http.post(
                    f"/api/v1/rooms/{ROOM}/interactions", json={"kind": "poll", "spec": _poll(i)}
                )
                assert r.status_code == 201, r.text
            r = await http.post(
                f"/api/v1/rooms/{ROOM}/interactions", json={"kind": "poll", "spec": _poll(100)}
            )
            assert r.status_code == 409, r.text
            error = r.json()["error"]
            assert error["code"] == "limit_reached" and error["limit"] == 100
            assert error["cap"] == "interactions_per_room"
            host = await srv.connect()
            await host.join(ROOM, token=await srv.mint(ROOM, "host"))
            reply = await host.command("host", action="create", kind="poll", spec=_poll(101))
            assert reply["type"] == "error" and reply["code"] == "limit_reached", reply
            # Nothing was created.
            r = await http.get(f"/api/v1/rooms/{ROOM}/interactions")
            ids = {v["id"] for v in r.json()["interactions"]}
            assert "p100" not in ids and "p101" not in ids and "p99" in ids


async def test_a_create_that_would_make_the_joined_snapshot_too_large_is_refused(server_factory):
    async with server_factory(limits={"max_joined_bytes": 6000}) as srv:
        await srv.create_room(ROOM)
        host = await srv.connect()
        await host.join(ROOM, token=await srv.mint(ROOM, "host"))
        made = 0
        for i in range(60):
            spec = {**_poll(i), "question": "x" * 200}
            reply = await host.command("host", action="create", kind="poll", spec=spec)
            if reply["type"] == "error":
                assert reply["code"] == "limit_reached" and reply["cap"] == "max_joined_bytes"
                break
            made += 1
        assert 0 < made < 60
        viewer = await srv.connect()
        joined = await viewer.join(ROOM)
        assert f"p{made}" not in joined["snapshot"]["interactions"]
        assert len(viewer.codec.encode(joined["snapshot"]["interactions"])) < 6000


# --- open questions and waiting posts per viewer; a bounded Q&A board ------------------------


async def _staged_board(srv: LiveServer) -> tuple[Client, Client]:
    await srv.create_room(ROOM)
    host = await srv.connect()
    await host.join(ROOM, token=await srv.mint(ROOM, "host"))
    spec = {"id": "b", "title": "Ask", "max_open_per_viewer": 3}
    assert (await host.command("host", action="create", kind="qa", spec=spec))["type"] == "ack"
    assert (await host.command("host", action="open", interaction="b"))["type"] == "ack"
    viewer = await srv.connect()
    await viewer.join(ROOM)
    return host, viewer


async def test_a_viewer_has_at_most_its_boards_cap_of_open_questions(live):
    host, viewer = await _staged_board(live)
    acks = [
        await viewer.command("ask", interaction="b", key=f"k{i}", text=f"question {i}")
        for i in range(3)
    ]
    assert [a["type"] for a in acks] == ["ack"] * 3, acks
    over = await viewer.command("ask", interaction="b", key="k3", text="one more")
    assert over["type"] == "error" and over["code"] == "limit_reached", over
    assert over["cap"] == "max_open_per_viewer" and over["limit"] == 3
    # A retry of an asked question is still acknowledged (as a duplicate) ...
    again = await viewer.command("ask", interaction="b", key="k0", text="question 0")
    assert again["type"] == "ack" and again["duplicate"] is True, again
    # ... another viewer may ask ...
    other = await live.connect()
    await other.join(ROOM)
    theirs = await other.command("ask", interaction="b", key="x", text="mine")
    assert theirs["type"] == "ack", theirs
    # ... and once the host answers one, the first viewer may ask again.
    async with live.http() as http:
        r = await http.get(f"/api/v1/rooms/{ROOM}/interactions/b")
        first = next(q for q in r.json()["questions"] if q["text"] == "question 0")
    reply = await host.command("host", action="answer", interaction="b", question=first["id"])
    assert reply["type"] == "ack", reply
    later = await viewer.command("ask", interaction="b", key="k4", text="now I may")
    assert later["type"] == "ack", later


async def test_a_flooded_board_lists_200_questions_and_counts_the_rest(live):
    await live.create_room(ROOM)
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))
    spec = {"id": "b", "title": "Ask", "max_open_per_viewer": 1000}
    await host.command("host", action="create", kind="qa", spec=spec)
    await host.command("host", action="open", interaction="b")
    # Straight through the room layer: 230 questions without 230 connections' rates.
    rooms = live.rooms
    asker = Identity("guest-flood", "flood", "viewer", ROOM, guest=True)
    await rooms.room(ROOM)
    for i in range(230):
        await rooms.participate(ROOM, asker, "ask", f"k{i}", {"interaction": "b", "text": f"q{i}"})
    async with live.http() as http:
        view = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/b")).json()
        assert len(view["questions"]) == 200 and view["more"] == 30
        rows = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/b/export")).json()["rows"]
        assert len(rows) == 230
    viewer = await live.connect()
    joined = await viewer.join(ROOM)
    board = joined["snapshot"]["interactions"]["b"]
    assert len(board["questions"]) == 200 and board["more"] == 30


async def test_a_viewer_has_at_most_five_posts_waiting_for_approval(live):
    await live.create_room(ROOM)
    viewer = await live.connect()
    await viewer.join(ROOM)
    acks = [await viewer.command("post", key=f"p{i}", text=f"post {i}") for i in range(5)]
    assert [a["status"] for a in acks] == ["pending"] * 5, acks
    over = await viewer.command("post", key="p5", text="one more")
    assert over["type"] == "error" and over["code"] == "limit_reached", over
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))
    approved = await host.command(
        "host", action="approve", interaction="wall", post=acks[0]["post"]
    )
    assert approved["type"] == "ack", approved
    later = await viewer.command("post", key="p6", text="after approval")
    assert later["type"] == "ack", later


# --- rooms and the records of minted tokens --------------------------------------------------


async def test_creating_a_room_past_max_rooms_is_refused(server_factory):
    async with server_factory(limits={"max_rooms": 3}) as srv:
        for i in range(3):
            await srv.create_room(f"r{i}")
        async with srv.http() as http:
            r = await http.post("/api/v1/rooms", json={"id": "one-more"})
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] == "limit_reached"
            assert (await http.get("/api/v1/rooms/one-more")).status_code == 404
            assert (await http.delete("/api/v1/rooms/r0")).status_code == 204
            assert (await http.post("/api/v1/rooms", json={"id": "one-more"})).status_code == 201


async def test_minted_token_records_on_redis_are_bounded_per_room(server_factory, shared_redis):
    import redis.asyncio as aioredis

    prefix = "caps-tokens:"
    server = {"redis_url": shared_redis.url, "redis_prefix": prefix, "node_id": "caps"}
    async with server_factory(server=server, limits={"tokens_kept_per_room": 10}) as srv:
        await srv.create_room(ROOM)
        tokens = [await srv.mint(ROOM, "viewer", user_id=f"u{i}") for i in range(25)]
        client = aioredis.from_url(shared_redis.url)
        try:
            keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}*token*")]
            sizes = {}
            for key in keys:
                kind = (await client.type(key)).decode()
                sizes[key.rsplit(":", 1)[-1]] = (
                    await client.hlen(key) if kind == "hash" else await client.zcard(key)
                )
        finally:
            await client.aclose()
        assert sizes == {"tokens": 10, "token_expiry": 10}, sizes
        # The tokens themselves still work: the record is not what admits them.
        viewer = await srv.connect()
        await viewer.join(ROOM, token=tokens[0])
