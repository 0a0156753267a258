"""``hudong serve --demo``: a demo room with the example of every kind that has one
(:attr:`~server.interactions.kind.Kind.example`), and the URLs of the four pages with
their tokens, so a newcomer sees everything work in a minute.

The room is made through the same code paths as the REST API; running it again on a
store that has the room (Redis) keeps what is there and adds what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.auth import Authority, incarnation_of
from server.backends.base import RoomExists, RoomRecord, Store
from server.interactions.kind import Audience
from server.rooms.service import RoomService

DEMO_ROOM = "demo"
DEMO_TITLE = "新品发布会 · Burger launch"
TOKEN_TTL_S = 7 * 24 * 3600


def examples(rooms: RoomService) -> list[tuple[str, dict[str, Any]]]:
    """(kind name, spec) of every kind that has an example, in the registry's order."""
    return [(kind.name, dict(kind.example)) for kind in rooms.registry if kind.example]


@dataclass(frozen=True, slots=True)
class DemoRoom:
    """The demo room and the tokens its pages open with."""

    room: str
    host_token: str
    screen_token: str

    def urls(self, base: str) -> dict[str, str]:
        return {
            "console": f"{base}/console#room={self.room}&token={self.host_token}",
            "viewer page": f"{base}/live/{self.room}",
            "overlay": f"{base}/overlay/{self.room}#token={self.screen_token}",
            "wall": f"{base}/wall/{self.room}#token={self.screen_token}",
        }


async def seed(store: Store, rooms: RoomService, authority: Authority, now: float) -> DemoRoom:
    """Create (or complete) the demo room and mint its host and screen tokens."""
    try:
        await store.create_room(RoomRecord(DEMO_ROOM, DEMO_TITLE, now, 1, {}))
    except RoomExists:
        pass
    existing = {view["id"] for view in await rooms.interactions(DEMO_ROOM, Audience.STAFF)}
    for kind_name, spec in examples(rooms):
        if spec["id"] in existing:
            continue
        await rooms.host(DEMO_ROOM, "create", {"kind": kind_name, "spec": spec})
        kind = rooms.registry.get(kind_name)
        for action in kind.example_actions if kind is not None else ():
            await rooms.host(DEMO_ROOM, action, {"interaction": spec["id"]})
    inc = incarnation_of((await store.get_room(DEMO_ROOM)).created_at)
    host, _ = authority.mint(
        DEMO_ROOM, "host", "demo-host", "主持人 Host", TOKEN_TTL_S, incarnation=inc
    )
    screen, _ = authority.mint(
        DEMO_ROOM, "screen", "demo-screen", "Screen", TOKEN_TTL_S, incarnation=inc
    )
    return DemoRoom(DEMO_ROOM, host, screen)


def banner(demo: DemoRoom, base: str) -> str:
    lines = [f"  demo room '{demo.room}' is ready; open these (tokens valid 7 days):"]
    for name, url in demo.urls(base).items():
        lines.append(f"    {name:<12} {url}")
    lines.append(
        "  (open the viewer page on a few phones or tabs, then run a poll from the console)"
    )
    return "\n".join(lines)
