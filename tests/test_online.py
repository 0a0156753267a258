"""The online count on a live node (PROTOCOL.md, "Snapshot", "Server messages"): the
snapshot's count, then ``online`` messages whenever viewers come and go."""

from __future__ import annotations

from typing import Any

from tests.conftest import Client, LiveServer

ROOM = "hall"


async def counts_until(client: Client, expected: int) -> list[int]:
    """The counts of the ``online`` messages ``client`` gets, up to ``expected``."""
    seen: list[int] = []
    while not seen or seen[-1] != expected:
        message: dict[str, Any] = await client.recv_type("online")
        assert message["room"] == ROOM, message
        seen.append(message["online"])
    return seen


async def test_every_member_hears_the_count_move_as_viewers_come_and_go(live: LiveServer):
    await live.create_room(ROOM)
    first = await live.connect()
    assert (await first.join(ROOM))["snapshot"]["online"] == 1
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host", user_id="h"))
    screen = await live.connect()
    await screen.join(ROOM, token=await live.mint(ROOM, "screen", user_id="s"))
    others = [await live.connect() for _ in range(3)]
    for other in others:
        await other.join(ROOM)
    # The console and the screen are members, not viewers: 4 viewers, heard by all.
    for member in (first, host, screen):
        seen = await counts_until(member, 4)
        assert seen == sorted(seen) and set(seen) <= {1, 2, 3, 4}, seen
    for other in others[:2]:
        await other.close()
    for member in (first, host, screen, others[2]):
        await counts_until(member, 2)
