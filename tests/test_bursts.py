"""Bursts of joins and leaves: every viewer of a burst is answered as one alone would be,
the node stays at level 0 or 1, and the per-viewer work is done in bounded portions
(server/hub/arrivals.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from loadtest import wire
from loadtest.viewers import Client, ClientStats
from protocol.codec import JSON
from server.auth import Identity
from server.hub.arrivals import JoinGate, LeaveGate, PresenceNotes
from server.hub.degrade import DegradeLevel
from server.interactions.base import PRESENCE_BOX
from tests.conftest import UNIT

ROOT = Path(__file__).resolve().parent.parent

# Target 5 is 5,000 viewers in 2 s on a node of its own; a test node shares its loop
# and its core with the test, so the test sends a fifth of that.
BURST = 1000
OVER_S = 2.0
POLL = {
    "id": "p",
    "question": "Pick one",
    "kind": "single",
    "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
}


class Joiner(Client):
    """A cheap viewer (the load tool's) that keeps what its ``joined`` said."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.joined: dict[str, Any] | None = None

    def _handshake(self, payload: bytes) -> None:
        msg: dict[str, Any] = JSON.decode(payload)
        if msg.get("type") == "joined":
            self.joined = {
                "id": msg["you"]["id"],
                "role": msg["you"]["role"],
                "poll": msg["snapshot"]["interactions"]["p"]["status"]["phase"],
                "degrade": msg["snapshot"]["degrade"],
            }
        super()._handshake(payload)


def burst(port: int, n: int, over: float) -> None:
    """In a process of its own, so that the node's loop does only the node's work:
    ``n`` viewers connect and join within ``over`` seconds, evenly (the load tool's
    connect scenario, smaller); what each ``joined`` said goes to stdout as one JSON
    line; at a line on stdin they all close at once."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stats = ClientStats()
        join = {"op": "join", "id": 1, "room": "r"}

        async def viewer() -> Joiner:
            _, client = await loop.create_connection(
                lambda: Joiner("127.0.0.1", port, join, stats), "127.0.0.1", port
            )
            await asyncio.wait_for(client.ready, 60)
            return client

        started = loop.time()
        tasks = []
        for i in range(n):
            await asyncio.sleep(max(0.0, started + i * over / n - loop.time()))
            tasks.append(loop.create_task(viewer()))
        viewers = await asyncio.gather(*tasks)
        print(json.dumps([v.joined for v in viewers]), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        stats.closing = True
        bye = wire.client_frame(wire.OP_CLOSE, (1001).to_bytes(2, "big"))
        for v in viewers:
            v.send(bye)
            v.abort()

    asyncio.run(main())


async def online_reaches(host: Any, count: int) -> None:
    """Read the host's ``online`` messages until one says ``count``."""
    while host.online != count:
        message = await host.recv_type("online", timeout=30)
        host.online = message["online"]


async def present(live: Any) -> int:
    """Viewers in the room's presence box (the draws' entrants from presence)."""
    counters = await live.hub.store.counters("r", PRESENCE_BOX)
    return int(counters.get("n", 0))


async def test_a_burst_of_joins_all_joined_and_the_level_stays_at_most_1(live):
    await live.create_room("r")
    host = await live.connect()
    await host.join("r", token=await live.mint("r", "host"))
    assert (await host.command("host", action="create", kind="poll", spec=POLL))["type"] == "ack"
    await host.command("host", action="open", interaction="p")
    hub = live.hub
    assert hub.settings.hub.degrade_auto
    clients = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"from tests.test_bursts import burst; burst({live.port}, {BURST}, {OVER_S})",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        limit=2**24,  # the joined summaries come as one line
    )
    assert clients.stdin is not None and clients.stdout is not None
    try:
        line = await asyncio.wait_for(clients.stdout.readline(), 120 * UNIT)
        joined = json.loads(line)
        assert len(joined) == BURST
        assert all(j["role"] == "viewer" and j["poll"] == "open" for j in joined)
        assert all(j["degrade"] <= 1 for j in joined)
        assert len({j["id"] for j in joined}) == BURST  # each its own guest
        assert hub.online("r") == BURST
        await online_reaches(host, BURST)  # what the host sees
        # Presence follows, in rounds: every viewer is in the box.
        await asyncio.wait_for(hub.presence_notes.settled(), 30 * UNIT)
        assert await present(live) == BURST

        clients.stdin.write(b"leave\n")  # all at once
        await clients.stdin.drain()
        assert await asyncio.wait_for(clients.wait(), 60 * UNIT) == 0
        await online_reaches(host, 0)
        await asyncio.wait_for(hub.presence_notes.settled(), 30 * UNIT)
        assert await present(live) == 0
    finally:
        if clients.returncode is None:
            clients.kill()
            await clients.wait()
    assert hub.level <= DegradeLevel.BUSY
    for level in ("2", "3"):
        assert live.metric("hudong_degrade_changes_total", level=level) == 0


class Leaver(Client):
    """A viewer that closes with 1001 and keeps the close code the node answered."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def _closed(self, why: str) -> None:
        if not self.answer.done():
            self.answer.set_result(why)
        super()._closed(why)


async def test_a_burst_of_leaves_is_answered_in_slices_each_as_one_alone(live):
    """Closes past a slice's share wait for later slices (not reading meanwhile), and
    each is then answered as a lone one: its close frame back, the viewer forgotten,
    the presence box and the online count following."""
    await live.create_room("r")
    host = await live.connect()
    await host.join("r", token=await live.mint("r", "host"))
    hub = live.hub
    hub.leave_gate = gate = LeaveGate(per_slice=5, slice_s=0.05)
    loop = asyncio.get_running_loop()
    stats = ClientStats()
    join = {"op": "join", "id": 1, "room": "r"}
    viewers = []
    for _ in range(40):
        _, client = await loop.create_connection(
            lambda: Leaver("127.0.0.1", live.port, join, stats), "127.0.0.1", live.port
        )
        await asyncio.wait_for(client.ready, 30 * UNIT)
        viewers.append(client)
    await online_reaches(host, 40)
    stats.closing = True
    bye = wire.client_frame(wire.OP_CLOSE, (1001).to_bytes(2, "big"))
    for v in viewers:
        v.send(bye)  # all in one turn of the loop; each keeps its socket open
    answers = await asyncio.wait_for(asyncio.gather(*(v.answer for v in viewers)), 30 * UNIT)
    assert answers == ["1001"] * 40  # every close answered with its own code
    assert gate.deferred >= 40 - 2 * gate.per_slice  # most waited for a later slice
    assert gate.waiting == 0
    await online_reaches(host, 0)
    assert hub.online("r") == 0 and len(hub.connections) == 1  # the host
    await asyncio.wait_for(hub.presence_notes.settled(), 30 * UNIT)
    assert await present(live) == 0


# --- the parts, without sockets ------------------------------------------------------------


async def test_join_gate_lets_a_slice_through_then_the_rest_in_order():
    gate = JoinGate(per_slice=3, slice_s=3600)  # the next slice only when released here
    passed: list[int] = []

    async def join(i: int) -> None:
        await gate.turn()
        passed.append(i)

    tasks = [asyncio.get_running_loop().create_task(join(i)) for i in range(8)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert passed == [0, 1, 2]
    assert gate.waiting == 5
    tasks[4].cancel()  # a connection that went away gives up its place
    await asyncio.sleep(0)
    gate._release()
    for _ in range(3):
        await asyncio.sleep(0)
    assert passed == [0, 1, 2, 3, 5, 6]
    gate._release()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert passed == [0, 1, 2, 3, 5, 6, 7]
    gate.close()


async def test_presence_notes_keep_the_latest_per_user_and_write_in_bounded_rounds():
    written: list[tuple[str, str, bool]] = []
    in_flight = 0
    most = 0
    release = asyncio.Event()

    async def note(room_id: str, identity: Identity, present: bool) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await release.wait()
        written.append((room_id, identity.user_id, present))
        in_flight -= 1

    notes = PresenceNotes(note, per_round=4, pause_s=0)
    users = [Identity(f"u{i}", f"U{i}", "viewer", "r", guest=True) for i in range(10)]
    for user in users:
        notes.add("r", user, True)
    notes.add("r", users[0], False)  # joined and left before its note was written
    notes.start()
    for _ in range(5):
        await asyncio.sleep(0)
    assert in_flight == 4  # one round at a time
    release.set()
    await asyncio.wait_for(notes.settled(), 10 * UNIT)
    assert len(notes) == 0
    assert most == 4
    assert sorted(written) == sorted(
        [("r", "u0", False)] + [("r", f"u{i}", True) for i in range(1, 10)]
    )
    await notes.stop()


async def test_leave_gate_answers_a_slice_at_once_then_the_rest_in_order():
    gate = LeaveGate(per_slice=2, slice_s=3600)  # the next slice only when released here
    answered: list[int] = []
    for i in range(5):
        if gate.admit():
            answered.append(i)
        else:
            gate.defer(lambda i=i: answered.append(i))
    assert answered == [0, 1] and gate.waiting == 3 and gate.deferred == 3
    assert not gate.admit()  # while some wait, a newcomer queues behind them
    gate._release()
    assert answered == [0, 1, 2, 3] and gate.waiting == 1
    gate.close()  # shutting down: the rest answered now
    assert answered == [0, 1, 2, 3, 4] and gate.waiting == 0


async def test_a_joined_connection_keeps_no_upgrade_request_and_still_reads(live):
    """websockets' server parser would keep the upgrade request (and its headers: about
    16 objects the GC walks per viewer) for the connection's life; the node swaps it
    for the frame parser after the handshake, and frames are read as before."""
    from websockets.http11 import Request

    await live.create_room("r")
    viewer = await live.connect()
    await viewer.join("r")
    conns = [c for c in live.hub.connections if c.identity is not None]
    assert len(conns) == 1
    conn = conns[0]
    parsers = [conn.ws.parser]  # the parser and the generators it delegates to
    while parsers[-1].gi_yieldfrom is not None:
        parsers.append(parsers[-1].gi_yieldfrom)
    held = [v for p in parsers if p.gi_frame is not None for v in p.gi_frame.f_locals.values()]
    assert held and not any(isinstance(v, Request) for v in held)
    assert (await viewer.command("ping"))["type"] == "pong"  # still reads frames
