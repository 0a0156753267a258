"""``hudong serve --demo``: a demo room with one of each interaction, and the URLs of
the four pages with their tokens, so a newcomer sees everything work in a minute.

The room is made through the same code paths as the REST API; running it again on a
store that has the room (Redis) keeps what is there and adds what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.auth import Authority
from server.backends.base import RoomExists, RoomRecord, Store
from server.hub import Hub

DEMO_ROOM = "demo"
DEMO_TITLE = "新品发布会 · Burger launch"
TOKEN_TTL_S = 7 * 24 * 3600
OPTIONS = [
    {"id": "classic", "label": "经典牛肉 Classic beef"},
    {"id": "spicy", "label": "香辣鸡腿 Spicy chicken"},
    {"id": "veggie", "label": "蔬菜 Veggie"},
]
INTERACTIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "poll",
        {
            "id": "first",
            "question": "先尝哪款？ Which one first?",
            "kind": "single",
            "options": OPTIONS,
        },
    ),
    (
        "codesign",
        {
            "id": "burger",
            "title": "一起设计新汉堡 Design our next burger",
            "slots": [
                {
                    "id": "bun",
                    "label": "面包 Bun",
                    "options": [
                        {"id": "sesame", "label": "芝麻 Sesame"},
                        {"id": "brioche", "label": "布里欧 Brioche"},
                        {"id": "black", "label": "竹炭 Charcoal"},
                    ],
                },
                {
                    "id": "sauce",
                    "label": "酱料 Sauce",
                    "options": [
                        {"id": "tomato", "label": "番茄 Tomato"},
                        {"id": "mala", "label": "麻辣 Mala"},
                        {"id": "truffle", "label": "松露 Truffle", "stock": 100},
                    ],
                },
                {
                    "id": "side",
                    "label": "配餐 Side",
                    "options": [
                        {"id": "fries", "label": "薯条 Fries"},
                        {"id": "salad", "label": "沙拉 Salad"},
                    ],
                },
            ],
        },
    ),
    ("draw", {"id": "prize", "title": "幸运抽奖 Lucky draw: a year of burgers", "winners": 3}),
    ("qa", {"id": "ask", "title": "提问 Ask the chef"}),
]


@dataclass(frozen=True, slots=True)
class DemoRoom:
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


async def seed(store: Store, hub: Hub, authority: Authority, now: float) -> DemoRoom:
    """Create (or complete) the demo room and mint its host and screen tokens."""
    try:
        await store.create_room(RoomRecord(DEMO_ROOM, DEMO_TITLE, now, 1, {}))
    except RoomExists:
        pass
    existing = await hub.activities.definitions(DEMO_ROOM)
    for kind, spec in INTERACTIONS:
        if spec["id"] in existing:
            continue
        await hub.host_operation(DEMO_ROOM, "create", {"kind": kind, "spec": spec})
    if existing.get("ask") is None:
        await hub.host_operation(DEMO_ROOM, "open", {"interaction": "ask"})
    host, _ = authority.mint(DEMO_ROOM, "host", "demo-host", "主持人 Host", TOKEN_TTL_S)
    screen, _ = authority.mint(DEMO_ROOM, "screen", "demo-screen", "Screen", TOKEN_TTL_S)
    return DemoRoom(DEMO_ROOM, host, screen)


def banner(demo: DemoRoom, base: str) -> str:
    lines = [f"  demo room '{demo.room}' is ready; open these (tokens valid 7 days):"]
    for name, url in demo.urls(base).items():
        lines.append(f"    {name:<12} {url}")
    lines.append(
        "  (open the viewer page on a few phones or tabs, then run a poll from the console)"
    )
    return "\n".join(lines)
