"""What a store holds about one viewer, and how each backend finds it (PROTOCOL.md,
"Privacy").

A viewer's data in a room, on every backend alike:

- *records*: in every box, the record held under the viewer's id (votes, picks,
  entries, presence, moderation) and every record whose ``viewer_id`` is the viewer
  (questions and wall posts, held under their own ids);
- *keys*: the idempotency keys remembered for the viewer's commands (``viewer|key``,
  and ``holder|viewer|key`` where a kind keeps a record under its own id, as a
  question);
- *tokens*: the records of tokens minted for the viewer (``user_id``);
- *replay*: the danmaku in the replay buffer sent by the viewer (``user.id``);
- *interactions*: the interaction states that name the viewer (a draw's winners).

Erasing withdraws the records (counters move by the viewer's deltas, as when a viewer
withdraws a vote, so tallies stay the sums of what is held), forgets the keys, the
token records and the danmaku, and replaces the viewer's id in interaction states by
a random ``erased-…`` id that nothing links back to. Pure code: no I/O.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class ViewerData:
    """Everything one room's store holds about one viewer (what an export shows and an
    erasure removes)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # box -> holder -> record
    keys: int = 0
    tokens: list[dict[str, Any]] = field(default_factory=list)
    replay: list[dict[str, Any]] = field(default_factory=list)
    interactions: list[str] = field(default_factory=list)
    participant: bool | None = None  # None: the store counts without keeping ids

    def empty(self) -> bool:
        return not (self.records or self.keys or self.tokens or self.replay or self.interactions)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "idempotency_keys": self.keys,
            "tokens": self.tokens,
            "danmaku": self.replay,
            "interactions": sorted(self.interactions),
            "participant": self.participant,
        }


def keyed_by(done_key: str, viewer_id: str) -> bool:
    """Whether an idempotency key was remembered for the viewer's command."""
    return done_key.startswith(f"{viewer_id}|") or f"|{viewer_id}|" in done_key


def tombstone() -> str:
    """The id that replaces an erased viewer's in interaction states."""
    return f"erased-{secrets.token_hex(6)}"


def quoted(viewer_id: str) -> bytes:
    """The viewer id as a JSON string: how it appears in a stored value."""
    return orjson.dumps(viewer_id)


def holds(holder: str, held: bytes | str, viewer_id: str) -> dict[str, Any] | None:
    """The record a box holds under ``holder`` when it is the viewer's, else None."""
    if holder != viewer_id and quoted(viewer_id) not in _bytes(held):
        return None
    value = orjson.loads(held)
    record = value.get("r")
    if holder == viewer_id or (isinstance(record, dict) and record.get("viewer_id") == viewer_id):
        return {"record": record, "deltas": value.get("d") or {}}
    return None


def sent_by(event: bytes | str, viewer_id: str) -> dict[str, Any] | None:
    """A replay event when the viewer sent it, else None."""
    if quoted(viewer_id) not in _bytes(event):
        return None
    value: dict[str, Any] = orjson.loads(event)
    user = value.get("user")
    return value if isinstance(user, dict) and user.get("id") == viewer_id else None


def token_of(info: bytes | str, viewer_id: str) -> dict[str, Any] | None:
    """A token record when the token was minted for the viewer, else None."""
    if quoted(viewer_id) not in _bytes(info):
        return None
    value: dict[str, Any] = orjson.loads(info)
    if value.get("user_id") != viewer_id:
        return None
    value.pop("_expires", None)
    return value


def scrubbed(state: bytes | str, viewer_id: str, replacement: str) -> bytes | None:
    """An interaction state with every JSON string equal to the viewer's id (values and
    keys) replaced, or None when it names no such string."""
    raw = _bytes(state)
    mention = quoted(viewer_id)
    if mention not in raw:
        return None
    return raw.replace(mention, quoted(replacement))


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
