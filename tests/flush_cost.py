"""The CPU of one state flush (``RoomService.changes``) in a room of K interactions, M
open, with 50 contributions to the open ones before each flush (200/s at about 4
flushes a second; each from a viewer of its own, so that none is refused), on the
memory store, in one process: no sockets, no load tool.

    python3 -m tests.flush_cost 50 10 400      # K, M, flushes
    python3 -m tests.flush_cost 50 10 100 -p   # and the flushes' cProfile

The room is the one ``python -m loadtest many`` makes (loadtest/many.py). Prints the
flush's CPU time per flush and that of a whole round (contributions and flush).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from typing import Any

from loadtest.many import CLOSED_ORDER, OPEN_ORDER, QA_QUESTIONS, Target, _spec
from protocol.codec import JSON
from protocol.delta import merge_patch
from protocol.messages import state
from server.auth import Authority, Identity
from server.backends.base import RoomRecord
from server.backends.memory import MemoryStore
from server.interactions.kind import Audience
from server.interactions.registry import Registry
from server.rooms.service import RoomService
from tests.conftest import SECRET
from tests.test_room_service import Outbox

ROOM = "r"
PER_FLUSH = 50
VIEWERS = 1_000_000  # every contribution from a viewer of its own: none is refused


def viewer(i: int | str) -> Identity:
    return Identity(f"v{i}", f"n{i}", "viewer", ROOM)


async def build(k: int, m: int) -> tuple[RoomService, list[Target]]:
    store = MemoryStore()
    await store.create_room(RoomRecord(ROOM, "Room", 0.0, 1, {}))
    rooms = RoomService(
        store, Registry(), Authority("admin-token-xxxxxxxx", SECRET), node_id="n1", shared=False
    )
    rooms.bind(Outbox())
    await rooms.enter(await rooms.room(ROOM), viewer("host"))
    targets = []
    for i in range(m):
        what = OPEN_ORDER[i] if i < len(OPEN_ORDER) else "single"
        iid = "checkin" if what == "checkin" else f"open{i}-{what}"
        if what != "checkin":
            kind, spec = _spec(what, iid)
            await rooms.host(ROOM, "create", {"kind": kind, "spec": spec})
        if what == "quiz":
            await rooms.host(ROOM, "ask", {"interaction": iid, "question": "q1"})
        elif what not in ("draw", "checkin"):
            await rooms.host(ROOM, "open", {"interaction": iid})
        if what == "qa":
            for q in range(QA_QUESTIONS):
                fields = {"interaction": iid, "text": f"Q{q}?"}
                await rooms.participate(ROOM, viewer("asker"), "ask", f"s{q}", fields)
        targets.append(Target(iid, what))
    for j in range(k - m):
        what = CLOSED_ORDER[j % len(CLOSED_ORDER)]
        kind, spec = _spec(what, f"closed{j}-{what}")
        await rooms.host(ROOM, "create", {"kind": kind, "spec": spec})
    await rooms.changes()
    served = rooms.views.get(ROOM)
    assert served is not None
    for n, t in enumerate(targets):
        if t.what == "qa":
            questions = served.views[Audience.PUBLIC][t.iid]["questions"]
            targets[n] = Target(t.iid, t.what, tuple(q["id"] for q in questions))
    return rooms, targets


class WireSizes:
    """The public state message's JSON bytes per flush: as sent (a patch where shorter
    than the view), with every changed view whole (as before deltas), and with a patch
    for every changed view that a patch can say."""

    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms
        self.held = dict(rooms.snapshot_views(ROOM, Audience.PUBLIC)[1])
        self.sent = self.whole = self.patched = 0

    def note(self, changes: list[Any]) -> None:
        for change in changes:
            delta = change.deltas.get(Audience.PUBLIC)
            if delta is None:
                continue
            _, now = self.rooms.snapshot_views(ROOM, Audience.PUBLIC)
            ids = [*delta.interactions, *delta.patches]
            message = state(ROOM, delta.base, delta.version, delta.interactions, delta.patches)
            self.sent += len(JSON.encode(message))
            views = {i: now[i] for i in ids}
            self.whole += len(JSON.encode(state(ROOM, delta.base, delta.version, views)))
            patches = {i: merge_patch(self.held[i], now[i]) for i in ids if i in self.held}
            always = {i: p for i, p in patches.items() if p is not None}
            rest = {i: now[i] for i in ids if i not in always}
            self.patched += len(JSON.encode(state(ROOM, 0, delta.version, rest, always)))
            self.held.update(views)

    def report(self, flushes: int) -> str:
        return (
            f"public state message per flush: {self.sent / flushes:.0f} B as sent, "
            f"{self.whole / flushes:.0f} B with whole views, "
            f"{self.patched / flushes:.0f} B with a patch wherever one can say the change"
        )


async def main(k: int, m: int, flushes: int, profile: bool) -> None:
    rooms, targets = await build(k, m)
    seq = 0

    async def contribute() -> None:
        nonlocal seq
        for _ in range(PER_FLUSH):
            who, n = seq % VIEWERS, seq // VIEWERS
            cmd = targets[(who + n) % len(targets)].command(who, n)
            op = cmd.pop("op")
            await rooms.participate(ROOM, viewer(who), op, f"k{seq}", cmd)
            seq += 1

    for _ in range(20):  # warm up
        await contribute()
        await rooms.changes()
    prof = cProfile.Profile()
    flush_s = 0.0
    sizes = WireSizes(rooms)
    start = time.process_time()
    for _ in range(flushes):
        await contribute()
        t = time.process_time()
        if profile:
            prof.enable()
        changes = await rooms.changes()
        if profile:
            prof.disable()
        flush_s += time.process_time() - t
        sizes.note(changes)
    whole = time.process_time() - start
    print(
        f"K={k} M={m}: {flushes} flushes, flush CPU {1000 * flush_s / flushes:.2f} ms each; "
        f"{1000 * whole / flushes:.2f} ms per round of {PER_FLUSH} contributions and a flush"
    )
    print(sizes.report(flushes))
    if profile:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "-p"]
    k, m, flushes = (int(a) for a in (args + ["50", "10", "400"][len(args) :]))
    asyncio.run(main(k, m, flushes, "-p" in sys.argv))
