"""Token lifecycle on one node (issue 15, acceptance 8; PROTOCOL.md, "Token
lifecycle"): expiry ends a session, tokens mint only shorter-lived lower roles,
revocation closes sessions and refuses joins and REST calls, and a deleted room's
tokens are refused in its re-created namesake. Plus the relay's gap detection and the
revocation list's bounds, with plain values."""

import asyncio
import time
from typing import Any

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed

from server.auth import Identity, incarnation_of
from server.backends.base import RoomRecord
from server.backends.memory import MemoryStore
from server.hub.relay import Relay
from server.metrics import Metrics
from server.rooms.trust import REVOKED_BOX, Trust, refusal
from tests.conftest import UNIT, running_server

ROOM = "trust"


async def closed_code(client, within_s: float) -> int | None:
    """The close code once the server closes ``client`` (None if it stays open)."""
    deadline = time.monotonic() + within_s * UNIT
    try:
        while time.monotonic() < deadline:
            await client.recv(timeout=max(0.05, deadline - time.monotonic()) / UNIT)
    except ConnectionClosed:
        return client.ws.close_code
    except TimeoutError:
        return None
    return None


async def mint(live, role: str, token: str | None = None, **fields: Any):
    async with live.http(token) if token else live.http() as http:
        return await http.post(f"/api/v1/rooms/{ROOM}/tokens", json={"role": role, **fields})


async def test_an_expired_token_ends_its_session_and_its_staff_role():
    async with running_server() as live:
        await live.create_room(ROOM)
        r = await mint(live, "moderator", user_id="mod", ttl_s=2)
        token = r.json()["token"]
        moderator = await live.connect()
        await moderator.join(ROOM, token=token)
        reply = await moderator.command("host", action="ban", user="someone")
        assert reply["type"] == "ack", reply  # staff while the token holds
        assert await closed_code(moderator, 4.0) == 4005  # token_expired
        again = await live.connect()
        reply = await again.command("join", room=ROOM, token=token)
        assert reply["code"] == "unauthorized" and "expired" in reply["message"], reply
        async with live.http(token) as http:
            assert (await http.get(f"/api/v1/rooms/{ROOM}/moderation")).status_code == 401


async def test_a_token_mints_only_lower_roles_that_expire_no_later_than_itself():
    async with running_server() as live:
        await live.create_room(ROOM)
        host = (await mint(live, "host", user_id="h", ttl_s=60)).json()
        # The case: a host token of 60 s minting a moderator token of 400 days.
        r = await mint(live, "moderator", host["token"], ttl_s=400 * 24 * 3600)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_field"
        assert "outlives" in r.json()["error"]["message"]
        r = await mint(live, "moderator", host["token"])  # the default fits the host's
        assert r.status_code == 201, r.text
        moderator = r.json()
        assert moderator["expires_at"] <= host["expires_at"]
        for minter, role in ((host, "host"), (moderator, "viewer"), (moderator, "moderator")):
            r = await mint(live, role, minter["token"])
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "forbidden"
        r = await mint(live, "host", ttl_s=400 * 24 * 3600)  # the admin is unrestricted
        assert r.status_code == 201, r.text


async def test_a_deleted_rooms_tokens_are_refused_in_its_namesake():
    async with running_server() as live:
        await live.create_room(ROOM)
        old_host = await live.mint(ROOM, "host", user_id="h")
        guest = await live.connect()
        old_guest = (await guest.join(ROOM))["token"]
        await guest.close()
        async with live.http() as http:
            assert (await http.delete(f"/api/v1/rooms/{ROOM}")).status_code == 204
        await live.create_room(ROOM)
        for token in (old_host, old_guest):
            client = await live.connect()
            reply = await client.command("join", room=ROOM, token=token)
            assert reply["code"] == "unauthorized" and "earlier room" in reply["message"], reply
        async with live.http(old_host) as http:
            r = await http.get(f"/api/v1/rooms/{ROOM}/interactions")
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        client = await live.connect()
        await client.join(ROOM, token=await live.mint(ROOM, "host", user_id="h"))


async def test_revoking_a_role_closes_its_sessions_and_spares_later_tokens():
    async with running_server() as live:
        await live.create_room(ROOM)
        host = await live.mint(ROOM, "host", user_id="h")
        moderator_token = await live.mint(ROOM, "moderator", user_id="m")
        moderator, viewer, host_client = [await live.connect() for _ in range(3)]
        await moderator.join(ROOM, token=moderator_token)
        await viewer.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="v"))
        await host_client.join(ROOM, token=host)
        async with live.http(host) as http:
            r = await http.post(f"/api/v1/rooms/{ROOM}/revocations", json={"role": "moderator"})
            assert r.status_code == 201, r.text
        assert await closed_code(moderator, 1.0) == 4006  # token_revoked
        assert (await host_client.command("ping"))["type"] == "pong"  # others stay
        assert (await viewer.command("ping"))["type"] == "pong"
        again = await live.connect()
        reply = await again.command("join", room=ROOM, token=moderator_token)
        assert reply["code"] == "unauthorized" and "revoked" in reply["message"], reply
        fresh = await live.connect()  # a moderator token minted after the revocation
        await fresh.join(ROOM, token=await live.mint(ROOM, "moderator", user_id="m"))
        async with live.http(host) as http:
            listing = (await http.get(f"/api/v1/rooms/{ROOM}/revocations")).json()
            r = await http.post(f"/api/v1/rooms/{ROOM}/revocations", json={"role": "host"})
            assert r.status_code == 403, r.text  # a host takes back lower roles only
        assert [e["role"] for e in listing["revocations"]] == ["moderator"]


async def test_revocations_are_dropped_once_the_tokens_would_have_expired():
    store = MemoryStore()
    await store.create_room(RoomRecord(ROOM, ROOM, 1000.0))
    now = [2000.0]
    trust = Trust(store, clock=lambda: now[0])
    short = f"{2060:x}.random"  # a token id names its token's expiry (server/auth.py)
    reply = await trust.revoke(ROOM, {"jti": short})
    assert reply["until"] == 2060 * 1000
    await trust.revoke(ROOM, {"role": "viewer"})
    now[0] = 2100.0  # the short token is gone: its entry with the next revocation
    reply = await trust.revoke(ROOM, {"jti": "other"})  # another's: kept up to 400 days
    assert reply["until"] == (2100 + 400 * 24 * 3600) * 1000
    assert set(await store.records(ROOM, REVOKED_BOX)) == {"role:viewer", "jti:other"}
    listed = await trust.listing(ROOM)
    assert [e.get("role") or e.get("jti") for e in listed["revocations"]] == ["other", "viewer"]
    with pytest.raises(Exception, match="either 'role' or 'jti'"):
        await trust.revoke(ROOM, {"role": "viewer", "jti": "x"})


def test_a_token_holds_only_in_its_incarnation_and_unrevoked():
    record = RoomRecord(ROOM, ROOM, 1000.5)
    inc = incarnation_of(record.created_at)

    def who(**kw: Any) -> Identity:
        fields = {"token_id": "t1", "issued_at": 1500.0, "expires_at": 9000.0, "incarnation": inc}
        return Identity("u", "U", "moderator", ROOM, **{**fields, **kw})

    assert refusal(who(), record, {}, 2000.0) is None
    assert refusal(who(incarnation=None), record, {}, 2000.0) is None  # a platform's token
    assert "earlier room" in str(refusal(who(incarnation=inc + 1), record, {}, 2000.0))
    assert "expired" in str(refusal(who(), record, {}, 9000.0))
    by_id = {"jti:t1": {"jti": "t1", "until": 9000.0}}
    assert "revoked" in str(refusal(who(), record, by_id, 2000.0))
    by_role = {"role:moderator": {"role": "moderator", "before": 1600.0, "until": 9e9}}
    assert "revoked" in str(refusal(who(), record, by_role, 2000.0))
    assert refusal(who(issued_at=1700.0), record, by_role, 2000.0) is None  # minted after
    assert refusal(who(), record, {"role:viewer": by_role["role:moderator"]}, 2000.0) is None


class _Broker:
    """A broker that hands the relay what a test feeds it."""

    on_resubscribed = None

    async def start(self, on_message) -> None:
        self.deliver = on_message

    async def close(self) -> None:
        pass


async def test_a_gap_in_a_nodes_relay_messages_rereads_the_room():
    gaps: list[Any] = []
    received: list[str] = []
    broker = _Broker()
    relay = Relay(
        broker,  # type: ignore[arg-type]
        MemoryStore(),
        "me",
        Metrics(),
        lambda room, message: received.append(room),
        enabled=True,
        replay_keep=10,
        on_gap=gaps.append,
    )
    await relay.start()

    def send(room: str, q: int, node: str = "other") -> None:
        broker.deliver(room, msgpack.packb({"n": node, "v": 1, "q": q, "e": []}))

    send("r", 1)
    send("r", 2)
    send("s", 1, node="third")
    assert gaps == []
    send("r", 4)  # 3 was lost
    assert gaps == [["r"]]
    send("r", 5)
    send("late", 7)  # followed after that node had sent to it: re-read once
    assert gaps == [["r"], ["late"]]
    assert received == ["r", "r", "s", "r", "r", "late"]  # nothing is dropped for it
    broker.on_resubscribed()  # the pub/sub connection came back: every room
    assert gaps[-1] is None
    await relay.stop()
    await asyncio.sleep(0)


async def test_a_resync_rereads_room_settings_bans_and_revocations_a_node_missed():
    """What another node changed and whose relay message this node lost (written to the
    store behind this node's back here) holds after a resync (the periodic one, or the
    one a broken pub/sub connection or a relay gap starts)."""
    async with running_server() as live:
        await live.create_room(ROOM)
        talker, bad, moderator = [await live.connect() for _ in range(3)]
        await talker.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="talker"))
        joined = await bad.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="bad"))
        r = await mint(live, "moderator", user_id="mod")
        await moderator.join(ROOM, token=r.json()["token"])
        store = live.app.state.rooms.store
        await store.update_room(ROOM, settings={"mode": "staff"})
        bad_id = joined["you"]["id"]  # a pseudonym (PROTOCOL.md, "Privacy")
        await store.apply(ROOM, "~moderation", bad_id, "k1", {"banned": True}, {})
        entry = {"jti": r.json()["jti"], "until": time.time() + 60}
        await store.apply(ROOM, REVOKED_BOX, "jti:" + r.json()["jti"], "k2", entry, {})
        assert (await talker.command("danmaku", text="missed"))["type"] == "ack"  # not seen yet
        live.hub.resync()
        assert await closed_code(bad, 2.0) == 4003
        assert await closed_code(moderator, 2.0) == 4006
        reply = await talker.command("danmaku", text="now?")
        assert reply["code"] == "danmaku_paused", reply


async def test_the_periodic_check_rereads_only_a_room_whose_version_moved(monkeypatch):
    """The 15 s safety net (``resync(check=True)``) reads each served room's record, and
    the rest only where the room's version moved since its last full read: a quiet room
    costs one read, and a ban written behind the node's back still closes its viewer."""
    async with running_server() as live:
        await live.create_room(ROOM)
        bad = await live.connect()
        joined = await bad.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="bad"))
        rooms = live.app.state.rooms
        store = rooms.store
        reads: list[str] = []
        interactions = store.interactions

        async def counted(room_id: str) -> Any:
            reads.append(room_id)
            return await interactions(room_id)

        monkeypatch.setattr(store, "interactions", counted)

        async def check(rereads: bool) -> None:
            reads.clear()
            await rooms.reload(ROOM, check=True)  # what the hub's check does per room
            if not rereads:  # nothing was marked to be read again
                await rooms.changes()
                assert reads == [] and not rooms.views.get(ROOM).stale, reads
                return
            deadline = time.monotonic() + 5 * UNIT
            while ROOM not in reads:  # the next state flush (or this one) reads it all
                assert time.monotonic() < deadline, "the room was not read again"
                await rooms.changes()
                await asyncio.sleep(0.01)

        await check(rereads=True)  # no full read yet since the room was first served
        await check(rereads=False)  # a quiet room: its record only
        await check(rereads=False)
        await store.apply(ROOM, "~moderation", joined["you"]["id"], "k1", {"banned": True}, {})
        await check(rereads=True)  # the version moved: a relay message may have been lost
        assert await closed_code(bad, 2.0) == 4003


def test_a_token_is_good_at_once_wherever_it_was_minted(monkeypatch):
    """A token minted in the last half millisecond of a second was once refused as "not
    yet valid (iat)" when used at once (its iat rounded up into the next second), and one
    minted by a node whose clock runs ahead of this one's is refused the same way. Its
    iat is cut to the millisecond, never after the moment it was made, and this node
    accepts it; its expiry still holds."""
    import jwt

    from server.auth import AuthError, Authority

    authority = Authority("admin-token-xxxxxxxx", "s" * 40)
    real = time.time
    now = float(int(real())) + 0.9996  # the last half millisecond of a second
    monkeypatch.setattr("server.auth.time.time", lambda: now)
    token, _ = authority.mint(ROOM, "host", "host-1", "Host", 60)
    iat = jwt.decode(token, options={"verify_signature": False})["iat"]
    assert iat <= now, (iat, now)
    monkeypatch.setattr("server.auth.time.time", lambda: real() + 2.0)  # a node 2 s ahead
    ahead, _ = authority.mint(ROOM, "host", "host-2", "Host", 60)
    monkeypatch.setattr("server.auth.time.time", real)
    assert authority.verify(ahead, ROOM).user_id == "host-2"
    monkeypatch.setattr("server.auth.time.time", lambda: real() - 120.0)  # long expired
    old, _ = authority.mint(ROOM, "host", "host-3", "Host", 60)
    monkeypatch.setattr("server.auth.time.time", real)
    with pytest.raises(AuthError, match="expired"):
        authority.verify(old, ROOM)
