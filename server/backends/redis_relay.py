"""One relay flush on Redis in one round trip: the publications and the replay appends.

A flush (server/hub/relay.py) is one non-transactional pipeline: per room, ``PUBLISH``
of its relay message (``SPUBLISH`` on a cluster), and for a room with events
``RPUSHX`` of the events to the room's replay list and ``LTRIM`` to the kept length.
That is 3 commands and no second round trip per room and flush, where the publish and
then a script (check the room, ``RPUSH``, ``LTRIM``) took 5 commands in two. On a
cluster a room's channel and replay list share its hash tag, so each room's commands
go to the one node that owns its slot.

``RPUSHX`` appends only to a list that exists, so a deleted room gets no replay list
back (the Store's bookkeeping does nothing for a missing room; ``delete_room`` removes
the list with the room). A room's first append finds no list: ``RPUSHX`` answers 0 and
the events are appended again by :meth:`RedisStore.append_replay`, whose script checks
that the room exists: one more round trip, once per room (and after ``keep`` 0).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import orjson

from server.backends.base import BackendUnavailable, Store
from server.backends.redis_connection import RedisConnection


async def relay_flush(
    conn: RedisConnection,
    store: Store,
    items: list[tuple[str, bytes]],
    replays: Mapping[str, list[dict[str, Any]]],
    keep: int,
) -> None:
    """Publish ``items`` and append ``replays`` (see the module docstring); raises
    BackendUnavailable when the round trip failed, which loses both."""
    appends = [(room_id, events) for room_id, events in replays.items() if events]
    if keep <= 0:  # keeping none empties the list: the store's own script does that
        for room_id, events in appends:
            with contextlib.suppress(BackendUnavailable):
                await store.append_replay(room_id, events, keep)
        appends = []
    if not items and not appends:
        return
    client = conn.client

    async def send() -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for room_id, payload in items:
            if conn.cluster:
                pipe.spublish(conn.key(room_id, "ch"), payload)
            else:
                pipe.publish(conn.key(room_id, "ch"), payload)
        for room_id, events in appends:
            key = conn.key(room_id, "replay")
            pipe.rpushx(key, *[orjson.dumps(e) for e in events[-keep:]])
            pipe.ltrim(key, -keep, -1)
        answers: list[Any] = await pipe.execute()
        return answers

    answers = await conn.call(send)
    lengths = answers[len(items) :: 2]
    for (room_id, events), length in zip(appends, lengths, strict=True):
        if not length:  # no list yet: the script checks the room and starts one
            with contextlib.suppress(BackendUnavailable):
                await store.append_replay(room_id, events, keep)
