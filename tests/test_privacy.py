"""Privacy (issue 15; PROTOCOL.md, "Privacy") end to end, over real sockets on a real
redis-server and on the embedded SQLite store: a viewer's outside id is never stored,
only its keyed hash; the admin exports one viewer's data and erases it, and then
nothing in the store names the viewer: on Redis every key is SCANned and every value
read, on SQLite every row of every table; the tallies lose the viewer's vote."""

import asyncio
import re
import uuid

import pytest

from server.auth import Authority
from server.interactions.base import PRESENCE_BOX
from tests.conftest import UNIT, running_server
from tests.test_contract_viewers import everything

ROOM = "privacy"
SUB = "bili:4242123"  # an integrator's (a platform's) id for the viewer
NAME = "Alice Zhang 张三"


async def host_op(host, action, **fields):
    reply = await host.command("host", action=action, **fields)
    assert reply["type"] == "ack", reply
    return reply


async def acked(client, op, **fields):
    reply = await client.command(op, **fields)
    assert reply["type"] == "ack", reply
    return reply


@pytest.fixture(params=["redis", "embedded"])
async def node(request, tmp_path):
    if request.param == "redis":
        url = request.getfixturevalue("shared_redis").url
        server = {"redis_url": url, "redis_prefix": f"p{uuid.uuid4().hex[:8]}:"}
    else:
        server = {"redis_url": f"sqlite://{tmp_path / 'hudong.db'}"}
    async with running_server(server=server) as live:
        yield live


async def stage(live):
    """A room where the viewer (by its platform id) and Bob vote, the viewer asks a
    question, sends danmaku and is muted; then both leave."""
    await live.create_room(ROOM)
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))
    options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
    poll = {"id": "p", "question": "Which?", "kind": "single", "options": options}
    await host_op(host, "create", kind="poll", spec=poll)
    await host_op(host, "open", interaction="p")
    await host_op(host, "create", kind="qa", spec={"id": "ask", "title": "Ask"})
    await host_op(host, "open", interaction="ask")
    async with live.http() as http:
        r = await http.post(
            f"/api/v1/rooms/{ROOM}/tokens", json={"role": "viewer", "user_id": SUB, "name": NAME}
        )
    assert r.status_code == 201, r.text
    minted = r.json()
    pseudonym = minted["user_id"]
    assert pseudonym.startswith("p-") and SUB not in pseudonym and minted["sub"] == SUB
    viewer = await live.connect()
    joined = await viewer.join(ROOM, token=minted["token"])
    assert joined["you"]["id"] == pseudonym and joined["you"]["name"] == NAME
    bob = await live.connect()
    await bob.join(ROOM, name="Bob")
    await acked(viewer, "vote", interaction="p", option="a", key="v1")
    await acked(bob, "vote", interaction="p", option="a", key="v1")
    await acked(viewer, "ask", interaction="ask", key="q1", text="退款怎么办 refund?")
    await acked(viewer, "danmaku", text="hello from Alice")
    await acked(bob, "danmaku", text="hi all")
    await host_op(host, "mute", user=pseudonym, duration_s=600)
    await viewer.close()
    await bob.close()
    # the relay flushed the danmaku to the replay, presence notes are written
    for _ in range(100):
        if len(await live.hub.store.replay(ROOM, 10)) == 2:
            break
        await asyncio.sleep(0.05)
    await live.hub.presence_notes.settled()
    await asyncio.sleep(0.3 * UNIT)
    await live.hub.presence_notes.settled()
    return host, pseudonym


async def tally(live):
    async with live.http() as http:
        r = await http.get(f"/api/v1/rooms/{ROOM}/interactions/p")
    assert r.status_code == 200, r.text
    return r.json()


async def test_export_then_erase_leaves_no_record_of_the_viewer(node):
    live = node
    _, pseudonym = await stage(live)
    held = await everything(live.hub.store)
    # pseudonymous at rest: the platform id is nowhere, the name and pseudonym are
    assert SUB.encode() not in held and b"4242123" not in held
    assert pseudonym.encode() in held and NAME.encode() in held
    before = await tally(live)

    async with live.http() as http:
        r = await http.get(f"/api/v1/viewers/{SUB}", params={"external": "true"})
        assert r.status_code == 200, r.text
        exported = r.json()
        assert exported["user_id"] == pseudonym
        data = exported["rooms"][ROOM]
        assert data["records"]["p"][pseudonym]["option"] == "a"
        questions = [r for box in data["records"].values() for r in box.values()]
        assert any("退款怎么办" in str(q) for q in questions)
        assert any("muted_until" in str(q) for q in questions)  # moderation record
        assert [e["text"] for e in data["danmaku"]] == ["hello from Alice"]
        assert [t["user_id"] for t in data["tokens"]] == [pseudonym]
        assert data["idempotency_keys"] >= 2
        # the same by the pseudonym, in the one room
        same = await http.get(f"/api/v1/rooms/{ROOM}/viewers/{pseudonym}")
        assert same.json()["rooms"][ROOM]["danmaku"] == data["danmaku"]

        r = await http.delete(f"/api/v1/viewers/{pseudonym}")
        assert r.status_code == 200, r.text
        erased = r.json()["rooms"][ROOM]
        assert erased["danmaku"] == 1 and erased["tokens"] == 1 and erased["records"] == 3
        assert erased["audit_entries"] == 2  # her token minted, her mute: the id left both
        after = await http.get(f"/api/v1/viewers/{pseudonym}")
        assert after.json()["rooms"] == {}

    # a late joiner's snapshot has Bob's danmaku, not hers (retracted on every node)
    late = await live.connect()
    recent = (await late.join(ROOM))["snapshot"]["recent"]
    assert [e["text"] for e in recent] == ["hi all"], recent
    await late.close()
    await live.hub.presence_notes.settled()
    held = await everything(live.hub.store)
    for trace in (SUB, "4242123", pseudonym, NAME, "Alice", "退款怎么办"):
        assert trace.encode() not in held, trace
    assert b"Bob" in held and b"hi all" in held  # the others' data stays
    # the tally lost the viewer's vote and kept Bob's (withdrawn, not kept anonymously)
    counts = (before["results"], (await tally(live))["results"])
    assert [(r["voters"], r["options"][0]["count"]) for r in counts] == [(2, 2), (1, 1)]


async def test_only_the_admin_reads_or_erases_a_viewers_data(node):
    live = node
    await live.create_room(ROOM)
    host = await live.mint(ROOM, "host")
    async with live.http(token=None) as anon:
        assert (await anon.get("/api/v1/viewers/someone")).status_code == 401
    async with live.http(token=host) as http:
        r = await http.delete(f"/api/v1/rooms/{ROOM}/viewers/someone")
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    async with live.http() as http:
        r = await http.get("/api/v1/rooms/nope/viewers/someone")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "room_not_found")
        r = await http.get(f"/api/v1/viewers/{'x' * 200}")
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field")


async def test_joins_and_leaves_leave_no_pile_of_records(node):
    """300 anonymous viewers join and leave: the presence box keeps no record of those
    who left and no idempotency key of any join or leave (issue 15: 30,000 entries
    after 15,000 joins)."""
    live = node
    await live.create_room(ROOM)
    for _ in range(6):
        clients = [await live.connect() for _ in range(50)]
        for client in clients:
            await client.join(ROOM)
        for client in clients:
            await client.close()
        live.clients.clear()
    for _ in range(3):
        await asyncio.sleep(0.2 * UNIT)
        await live.hub.presence_notes.settled()
    store = live.hub.store
    assert await store.records(ROOM, PRESENCE_BOX) == {}
    # The embedded store counts unique viewers by id, in a table of its own (erased with
    # a viewer's data; Redis keeps a HyperLogLog, which names no one). Its counts go
    # to the store every 2 s, so whether it has them yet depends on the machine's speed.
    held = await everything(store, without=("viewers",))
    at = held.find(b"guest-")
    assert at < 0, held[max(0, at - 300) : at + 200]  # no record, no key names any of them
    conn = getattr(store, "conn", None)
    if conn is not None:  # on Redis: no presence key is left but the (empty) count's
        keys = [k async for k in conn.client.scan_iter(match=conn.prefix + "*presence*")]
        assert not any(k.endswith(b":done") or k.endswith(b":rec") for k in keys), keys


async def test_retention_drops_what_is_past_it_and_keeps_the_counts(node):
    """A room keeping everything one second: a second later the retention pass has
    dropped the danmaku, the question, the vote's record and the viewer's name; the
    poll still counts the vote."""
    live = node
    await live.create_room(
        ROOM, danmaku_retention_s=1, content_retention_s=1, personal_retention_s=1
    )
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))
    options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
    poll = {"id": "p", "question": "Which?", "kind": "single", "options": options}
    await host_op(host, "create", kind="poll", spec=poll)
    await host_op(host, "open", interaction="p")
    await host_op(host, "create", kind="qa", spec={"id": "ask", "title": "Ask"})
    await host_op(host, "open", interaction="ask")
    viewer = await live.connect()
    await viewer.join(ROOM, token=await live.mint(ROOM, "viewer", user_id=SUB, name=NAME))
    await acked(viewer, "vote", interaction="p", option="a", key="v1")
    await acked(viewer, "ask", interaction="ask", key="q1", text="退款怎么办 refund?")
    await acked(viewer, "danmaku", text="hello from Alice")
    await viewer.close()
    for _ in range(100):
        if await live.hub.store.replay(ROOM, 10):
            break
        await asyncio.sleep(0.05)
    await live.hub.presence_notes.settled()
    held = await everything(live.hub.store)
    assert NAME.encode() in held and b"hello from Alice" in held
    await asyncio.sleep(2.1)  # the retention is a second; held records' times are in s
    assert await live.app.state.retention.once() >= 3
    held = await everything(live.hub.store)
    for trace in (NAME, "Alice", "退款怎么办"):
        assert trace.encode() not in held, trace
    results = (await tally(live))["results"]
    assert results["options"][0]["count"] == 1  # the count stays, not who cast it
    async with live.http() as http:
        board = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/ask")).json()
    assert board["questions"] == []


def test_pseudonyms_are_keyed_stable_and_only_for_viewers_ids_from_outside():
    secret, other = "s" * 40, "t" * 40
    authority = Authority("admin-token-xxxxxxxx", secret)
    token, _ = authority.mint(ROOM, "viewer", SUB, "Alice", 60)
    viewer = authority.verify(token, ROOM)
    assert viewer.user_id == authority.pseudonym(SUB) == Authority("a" * 20, secret).pseudonym(SUB)
    assert re.fullmatch(r"p-[0-9a-f]{24}", viewer.user_id)
    assert Authority("a" * 20, other).pseudonym(SUB) != viewer.user_id  # keyed by the secret
    assert authority.pseudonym("bili:4242124") != viewer.user_id
    # guests' random ids and staff ids stay as they are
    guest, _ = authority.mint(ROOM, "viewer", "guest-0a1b2c3d4e", "观众 3d4e", 60, guest=True)
    assert authority.verify(guest, ROOM).user_id == "guest-0a1b2c3d4e"
    host, _ = authority.mint(ROOM, "host", "host-1", "Host", 60)
    assert authority.verify(host, ROOM).user_id == "host-1"
    # without a name, a viewer is named by its pseudonym, never by the outside id
    nameless, _ = authority.mint(ROOM, "viewer", SUB, "", 60)
    assert authority.verify(nameless, ROOM).name == viewer.user_id
    # server.pseudonymous_ids = false keeps outside ids
    plain = Authority("admin-token-xxxxxxxx", secret, pseudonymous=False)
    assert plain.verify(token, ROOM).user_id == SUB
