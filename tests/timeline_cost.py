"""The CPU of one read of a room's timeline after a long event (GET …/timeline, and the
cockpit polls it every 5 s), in one process: no sockets, no load tool. The room's
``~timeline`` box holds a day of minutes from three nodes (4,320 records), as it does
after 24 hours on three nodes; each round reads and merges it (:meth:`Timeline.series`).

    python3 -m tests.timeline_cost                                  # the memory store
    python3 -m tests.timeline_cost --redis redis://127.0.0.1:6398/0 # a Redis (flushes
                                                                    # nothing: own prefix)

Prints ms of CPU (process time) per read, median of three runs of 20 reads, and what
twenty cockpits would take of one core if every poll read it (4 reads a second).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from server.backends import open_backends
from server.backends.base import RoomRecord, Store, Submission
from server.backends.memory import MemoryStore
from server.rooms.timeline import KEEP_MINUTES, TIMELINE_BOX, Timeline, holder

NODES = ("node-a", "node-b", "node-c")
ACTIVITIES = ("danmaku", "votes", "posts")
NOW = 1_800_000_000.0


async def fill(store: Store) -> None:
    await store.create_room(RoomRecord("r", "Room", NOW, 1, {}))
    last = int(NOW // 60)
    items = []
    for minute in range(last - KEEP_MINUTES + 1, last + 1):
        for node in NODES:
            record = {"m": minute, "node": node, "online": 1000, "participants": 500}
            record |= {"unique_viewers": 2000, "degrade": 0, "danmaku": 3000, "votes": 200}
            submission = Submission(holder(minute, node), "", record, {}, {}, False, False, True)
            items.append((TIMELINE_BOX, submission))
    for start in range(0, len(items), 500):
        await store.submit_many("r", items[start : start + 500])


async def rounds(store: Store, runs: int = 3, reads: int = 20) -> list[float]:
    await fill(store)
    timeline = Timeline(store, "node-a", ACTIVITIES, lambda: NOW)
    series = await timeline.series("r")
    assert len(series["minutes"]) == KEEP_MINUTES, len(series["minutes"])
    out = []
    for _ in range(runs):
        start = time.process_time()
        for _ in range(reads):
            await timeline.series("r")
        out.append((time.process_time() - start) / reads * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", metavar="URL", help="a loopback Redis (default: memory)")
    args = parser.parse_args()
    if args.redis:
        store: Store = open_backends(args.redis, prefix=f"tlcost{uuid.uuid4().hex[:6]}:").store
    else:
        store = MemoryStore()
    ms = asyncio.run(rounds(store))
    spread = ", ".join(f"{m:.1f}" for m in ms)
    median = statistics.median(ms)
    print(
        f"{'redis' if args.redis else 'memory'}: {median:.1f} ms of CPU a read of "
        f"{KEEP_MINUTES} minutes x {len(NODES)} nodes (runs: {spread}); 20 cockpits reading "
        f"at every poll: {median * 4 / 10:.1f} % of a core"
    )


if __name__ == "__main__":
    main()
