"""Print ``protocol/vectors/messages.json``: messages and their exact encodings.

    python -m protocol.gen_vectors > protocol/vectors/messages.json

Both test suites load the file: the Python tests (tests/test_vectors.py) and the JS
client's (clients/js/test/vectors.test.js) decode every encoding, compare it with
the message, and re-encode the message to the same bytes. Regenerate only when the
wire format changes on purpose, and say so in PROTOCOL.md.

Rules that keep encodings identical across languages: map keys in the order
written here; integers for integral numbers (no 5.0); no NaN or infinities.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from protocol.codec import JSON, MSGPACK

USER = {"id": "v-1001", "name": "小明", "role": "viewer"}
HOST = {"id": "host-1", "name": "Host", "role": "host"}
DANMAKU_1 = {
    "type": "danmaku",
    "id": "node1.41",
    "user": USER,
    "text": "666 太好吃了 🍔",
    "color": "#ffcc00",
    "mode": "scroll",
    "ts": 1795500000123,
}
DANMAKU_2 = {
    "type": "danmaku",
    "id": "node1.42",
    "user": HOST,
    "text": "Welcome! <b>not bold</b>",
    "color": "#ffffff",
    "mode": "top",
    "ts": 1795500000150,
}
SNAPSHOT = {
    "room": {
        "id": "demo",
        "title": "Burger launch 新品发布",
        "created_at": 1795499000500,
        "version": 3,
        "settings": {"allow_anonymous": True},
    },
    "version": 3,
    "seq": 17,
    "online": 2048,
    "recent": [DANMAKU_1],
}

# A whole view, as the server sends it (clients/js/protocol.d.ts types it; the JS type
# test checks this vector against that type).
CHECKIN_VIEW = {
    "id": "checkin",
    "kind": "checkin",
    "created_at": 0,
    "spec": {"id": "checkin", "title": "Check-in"},
    "status": {
        "phase": "open",
        "opened_at": 0,
        "closes_at": None,
        "closed_at": None,
        "revealed_at": None,
    },
    "count": 1024,
}

VECTORS: list[tuple[str, str, Any]] = [
    ("command", "join-anonymous", {"op": "join", "id": 1, "room": "demo", "name": "小明"}),
    ("command", "join-token", {"op": "join", "id": 1, "room": "demo", "token": "eyJhbGciOi.x.y"}),
    ("command", "join-anonymous-zh", {"op": "join", "id": 1, "room": "demo", "lang": "zh-CN"}),
    (
        "command",
        "danmaku",
        {"op": "danmaku", "id": 2, "text": "666 太好吃了 🍔", "color": "#ffcc00", "mode": "scroll"},
    ),
    ("command", "danmaku-no-id", {"op": "danmaku", "text": "hi"}),
    ("command", "ping", {"op": "ping", "id": 9007199254740991}),
    ("command", "snapshot", {"op": "snapshot", "id": 7}),
    ("command", "checkin", {"op": "checkin", "id": 3, "key": "c-6f1e2a"}),
    (
        "server",
        "hello",
        {
            "type": "hello",
            "protocol": "hudong.v1",
            "server": "hudong/0.1.0",
            "heartbeat_ms": 15000,
            "limits": {
                "max_command_bytes": 4096,
                "max_frame_bytes": 65536,
                "max_text_chars": 100,
                "commands_per_s": 2.5,
                "command_burst": 10,
            },
        },
    ),
    ("server", "joined", {"type": "joined", "id": 1, "you": USER, "snapshot": SNAPSHOT}),
    ("server", "snapshot", {"type": "snapshot", "snapshot": SNAPSHOT}),
    ("server", "ack", {"type": "ack", "id": 2, "event": "node1.41"}),
    (
        "server",
        "error",
        {
            "type": "error",
            "id": 2,
            "code": "rate_limited",
            "message": "too many commands; at most 5 per second",
            "retry_after_ms": 180,
        },
    ),
    (
        "server",
        "error-no-id",
        {"type": "error", "id": None, "code": "malformed", "message": "invalid JSON"},
    ),
    (
        "server",
        "batch",
        {"type": "batch", "room": "demo", "seq": 18, "events": [DANMAKU_1, DANMAKU_2]},
    ),
    ("server", "pong", {"type": "pong", "id": 9007199254740991}),
    (
        "server",
        "state",
        {
            "type": "state",
            "room": "demo",
            "base": 41,
            "version": 42,
            "interactions": {"checkin": CHECKIN_VIEW},
        },
    ),
    (
        "server",
        "state-patches",
        {
            "type": "state",
            "room": "demo",
            "base": 42,
            "version": 45,
            "interactions": {},
            "patches": {"checkin": {"count": 1030, "note": None}},
        },
    ),
    (
        "server",
        "snapshot-asked",
        {"type": "snapshot", "snapshot": SNAPSHOT, "id": 7},
    ),
    (
        "server",
        "ack-checkin",
        {"type": "ack", "id": 3, "count": 1024, "already": False, "version": 42},
    ),
]


def build() -> list[dict[str, Any]]:
    return [
        {
            "kind": kind,
            "name": name,
            "message": message,
            "json": JSON.encode(message).decode("utf-8"),
            "msgpack_hex": MSGPACK.encode(message).hex(),
        }
        for kind, name, message in VECTORS
    ]


def render() -> str:
    """The vectors file's text (protocol stays free of I/O: the shell writes it)."""
    return json.dumps(build(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":  # pragma: no cover - generator
    sys.stdout.write(render())
