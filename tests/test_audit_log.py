"""The room's audit log (issue 15, acceptance 4): a scripted event over REST and the
WebSocket, after which every host, moderator and admin action is in the log exactly
once, with the right actor and target, and nothing a viewer did is; filters, paging
and both exports. On the memory backend and on Redis, where the log is read from
another node than the one that ran the actions."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.conftest import Client, LiveServer, running_server

ROOM = "launch"
LOG = f"/api/v1/rooms/{ROOM}/audit-log"


@contextlib.asynccontextmanager
async def nodes(
    backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """(the node that runs the event, the node the log is read from)."""
    if backend == "memory":
        async with running_server() as live:
            yield live, live
        return
    url = request.getfixturevalue("shared_redis").url
    prefix = f"au{uuid.uuid4().hex[:8]}:"
    async with (
        running_server(server={"redis_url": url, "redis_prefix": prefix, "node_id": "a"}) as a,
        running_server(server={"redis_url": url, "redis_prefix": prefix, "node_id": "b"}) as b,
    ):
        yield a, b


async def acked(client: Client, op: str, **fields: Any) -> dict[str, Any]:
    reply = await client.command(op, **fields)
    assert reply["type"] == "ack", reply
    return reply


async def rest(live: LiveServer, token: str | None, method: str, path: str, **body: Any) -> Any:
    async with live.http(token) if token else live.http() as http:
        r = await http.request(method, f"/api/v1/rooms/{ROOM}{path}", json=body or None)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def mint(live: LiveServer, token: str | None, role: str, user: str) -> str:
    reply = await rest(live, token, "POST", "/tokens", role=role, user_id=user, name=user.title())
    return str(reply["token"])


async def joined(live: LiveServer, token: str) -> Client:
    client = await live.connect()
    await client.join(ROOM, token=token)
    return client


async def scripted_event(live: LiveServer) -> list[tuple[str, str, dict[str, Any], str]]:
    """Run the event; the entries it must leave: (action, actor id, target, result)."""
    expected: list[tuple[str, str, dict[str, Any], str]] = []

    def expect(action: str, actor: str, result: str = "ok", **target: Any) -> None:
        expected.append((action, actor, target, result))

    await live.create_room(ROOM)
    expect("room.create", "admin", room=ROOM)
    host_token = await mint(live, None, "host", "host-1")
    expect("token.mint", "admin", user="host-1", token_role="host")
    mod_token = await mint(live, host_token, "moderator", "mod-1")
    expect("token.mint", "host-1", user="mod-1", token_role="moderator")
    fans = {}
    for fan in ("fan-1", "fan-2", "fan-3"):
        fans[fan] = await mint(live, None, "viewer", fan)
        expect("token.mint", "admin", user=live.viewer_id(fan), token_role="viewer")
    await rest(live, host_token, "PATCH", "", settings={"mode": "slow", "slow_mode_s": 1})
    expect("room.update", "host-1", room=ROOM, settings=["mode", "slow_mode_s"])

    host = await joined(live, host_token)
    mod = await joined(live, mod_token)
    fan1, fan2, _fan3 = [await joined(live, fans[f]) for f in fans]
    spec = {
        "id": "p1",
        "question": "Which?",
        "kind": "single",
        "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
    }
    await acked(host, "host", action="create", kind="poll", spec=spec)
    expect("interaction.create", "host-1", interaction="p1")
    await acked(host, "host", action="open", interaction="p1")
    expect("interaction.open", "host-1", interaction="p1")
    await acked(fan1, "vote", interaction="p1", key="v1", option="a")  # not an entry
    await fan1.send({"op": "danmaku", "text": "666"})  # nor is this
    await rest(live, mod_token, "POST", "/interactions/p1/actions", action="close")
    expect("interaction.close", "mod-1", interaction="p1")
    await rest(live, None, "POST", "/interactions/p1/actions", action="reveal")
    expect("interaction.reveal", "admin", interaction="p1")

    async with live.http(mod_token) as http:  # viewers' ids and names: who took them
        r = await http.get(f"/api/v1/rooms/{ROOM}/interactions/p1/export?format=csv")
    assert r.status_code == 200 and live.viewer_id("fan-1") in r.text, r.text
    expect("interaction.export", "mod-1", interaction="p1")

    draw = {"id": "d1", "title": "Lucky", "winners": 1}
    await rest(live, host_token, "POST", "/interactions", kind="draw", spec=draw)
    expect("interaction.create", "host-1", interaction="d1")
    for fan in (fan1, fan2):
        await acked(fan, "enter", interaction="d1", key="e1")
    await acked(mod, "host", action="run", interaction="d1")
    expect("interaction.run", "mod-1", interaction="d1")

    await acked(mod, "host", action="mute", user=live.viewer_id("fan-2"), duration_s=60)
    expect("moderation.mute", "mod-1", user=live.viewer_id("fan-2"))
    await rest(live, host_token, "POST", "/moderation", action="ban", user=live.viewer_id("fan-3"))
    expect("moderation.ban", "host-1", user=live.viewer_id("fan-3"))
    await acked(mod, "host", action="retract", event="n1.7")
    expect("moderation.retract", "mod-1", event="n1.7")
    await rest(
        live, mod_token, "POST", "/moderation", action="unmute", user=live.viewer_id("fan-2")
    )
    expect("moderation.unmute", "mod-1", user=live.viewer_id("fan-2"))
    await acked(host, "host", action="unban", user=live.viewer_id("fan-3"))
    expect("moderation.unban", "host-1", user=live.viewer_id("fan-3"))

    post = await acked(fan1, "post", key="w1", text="Great show")
    await acked(mod, "host", action="approve", interaction="wall", post=post["post"])
    expect("interaction.approve", "mod-1", interaction="wall", post=post["post"])

    refused = await mod.command("host", action="open", interaction="nope")
    assert refused.get("code") == "unknown_target", refused
    expect("interaction.open", "mod-1", "unknown_target", interaction="nope")

    words = [{"word": "badword", "action": "reject"}]
    await rest(live, mod_token, "PUT", "/blocklist", words=words)
    expect("room.blocklist", "mod-1", room=ROOM)
    await rest(live, host_token, "POST", "/revocations", role="screen")
    expect("token.revoke", "host-1", role="screen")
    return expected


async def read_log(live: LiveServer, token: str | None = None, **query: str) -> Any:
    async with live.http(token) if token else live.http() as http:
        r = await http.get(LOG, params=query)
    assert r.status_code == 200, r.text
    return r.json() if query.get("format") != "csv" else r.text


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_every_staff_action_of_an_event_is_in_the_log_once(backend, request):
    async with nodes(backend, request) as (live, reader):
        expected = await scripted_event(live)
        entries = (await read_log(reader, format="json"))["entries"]
        got = [(e["action"], e["actor"]["id"], e["target"], e["result"]) for e in entries]
        for action, actor, target, result in expected:
            matching = [
                g
                for g in got
                if g[:2] == (action, actor) and g[3] == result and target.items() <= g[2].items()
            ]
            assert len(matching) == 1, (action, actor, target, matching, got)
        assert len(entries) == len(expected), got  # no viewer's vote, entry or danmaku
        node = live.hub.settings.server.node_id or None
        assert all(e["node"] for e in entries) and (
            node is None or {e["node"] for e in entries} == {node}
        )
        roles = {e["actor"]["id"]: e["actor"]["role"] for e in entries}
        assert roles == {"admin": "admin", "host-1": "host", "mod-1": "moderator"}
        names = {e["actor"]["id"]: e["actor"]["name"] for e in entries}
        assert names["mod-1"] == "Mod-1"
        run = next(e for e in entries if e["action"] == "interaction.run")
        assert run["detail"] == {"winners": [live.viewer_id("fan-1")]} or run["detail"] == {
            "winners": [live.viewer_id("fan-2")]
        }
        mute = next(e for e in entries if e["action"] == "moderation.mute")
        assert mute["detail"] == {"duration_s": 60}  # over the WebSocket: not its command id
        update = next(e for e in entries if e["action"] == "room.update")
        assert update["detail"]["settings"] == {"mode": "slow", "slow_mode_s": 1}
        assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)

        # Filters: by actor (id or role), action (or its group), target, time.
        by_mod = (await read_log(reader, actor="mod-1"))["entries"]
        assert {e["actor"]["id"] for e in by_mod} == {"mod-1"}
        assert len(by_mod) == sum(1 for x in expected if x[1] == "mod-1")
        assert (await read_log(reader, actor="moderator"))["entries"] == by_mod
        moderation = (await read_log(reader, action="moderation"))["entries"]
        assert sorted(e["action"] for e in moderation) == sorted(
            x[0] for x in expected if x[0].startswith("moderation.")
        )
        assert [
            e["action"] for e in (await read_log(reader, action="moderation.ban"))["entries"]
        ] == ["moderation.ban"]
        p1 = (await read_log(reader, target="p1"))["entries"]
        assert [e["action"] for e in p1] == [
            "interaction.export",
            "interaction.reveal",
            "interaction.close",
            "interaction.open",
            "interaction.create",
        ]
        middle = entries[len(entries) // 2]["at"]
        later = (await read_log(reader, since=str(middle), limit="1000"))["entries"]
        earlier = (await read_log(reader, until=str(middle), limit="1000"))["entries"]
        assert len(later) + len(earlier) == len(entries)
        assert all(e["at"] >= middle for e in later) and all(e["at"] < middle for e in earlier)

        # Paging: newest first, three at a time, the cursor walks the whole log once.
        walked: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {"limit": "3", **({"before": cursor} if cursor else {})}
            page = await read_log(reader, **query)
            walked.extend(page["entries"])
            assert len(page["entries"]) <= 3
            cursor = page["next"]
            if cursor is None:
                break
        assert walked == entries[::-1]

        # CSV: a header and one row per entry, the same ids in the same order.
        text = await read_log(reader, format="csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["id"] for r in rows] == [e["id"] for e in entries]
        assert rows[0]["action"] == "room.create" and rows[0]["actor_role"] == "admin"
        csv_mod = await read_log(reader, format="csv", actor="mod-1")
        assert len(csv_mod.splitlines()) == len(by_mod) + 1

        # Staff read it; viewers do not.
        host_token = await mint(live, None, "host", "host-2")
        assert (await read_log(reader, host_token, limit="1"))["entries"]
        async with reader.http(await mint(live, None, "viewer", "fan-9")) as http:
            refused = await http.get(LOG)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


async def test_the_log_keeps_the_newest_entries_of_its_bound():
    async with running_server(limits={"audit_log_keep": 5}) as live:
        await live.create_room(ROOM)
        for i in range(8):
            await rest(live, None, "POST", "/moderation", action="ban", user=f"u{i}")
        entries = (await read_log(live, format="json"))["entries"]
        assert [e["target"]["user"] for e in entries] == ["u3", "u4", "u5", "u6", "u7"]
        page = await read_log(live, limit="2")
        older = await read_log(live, limit="2", before=page["next"])
        assert [e["target"]["user"] for e in older["entries"]] == ["u5", "u4"]


async def test_a_deleted_room_and_a_node_s_degrade_floor_are_in_the_node_s_log(caplog):
    """What has no room to keep it (the room is gone; the node is no room's) is logged
    by the node, one JSON line on ``hudong.audit``."""
    caplog.set_level(logging.INFO, logger="hudong.audit")
    async with running_server(server={"node_id": "n7"}) as live:
        await live.create_room(ROOM)
        async with live.http() as http:
            assert (await http.put("/api/v1/degrade", json={"floor": 1})).status_code == 200
            assert (await http.delete(f"/api/v1/rooms/{ROOM}")).status_code == 204
    lines = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "hudong.audit"]
    assert [(x["room"], x["action"], x["actor"]["role"]) for x in lines] == [
        (ROOM, "room.create", "admin"),
        (None, "node.degrade_floor", "admin"),
        (ROOM, "room.delete", "admin"),
    ]
    assert lines[1]["detail"] == {"floor": 1} and {x["node"] for x in lines} == {"n7"}
