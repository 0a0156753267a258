"""The wall: viewers post short texts; a host or moderator approves, rejects or pins them.

Every room has one wall (id ``wall``), open from the start, with a
:class:`~server.interactions.base.Status` that a host may close and open again.
Posts are state the store keeps (:class:`Post`, one record per post). The room's
``wall_moderation`` setting decides where a new post starts:

- ``pre`` (the default): ``pending``, in the moderation queue; only ``approve``
  puts it on the wall. A post that is rejected before approval never leaves the
  server: it is in no viewer's or screen's view, ever.
- ``post``: ``approved`` at once; ``reject`` takes it off the wall.

Host actions (:func:`host_action`): ``approve`` (pending or rejected -> approved),
``reject`` (-> rejected, unpinned), ``pin`` / ``unpin`` (approved posts only).
Repeating an action whose effect is there already changes nothing.

The view (:func:`board`) is capped: the wall shows the pinned posts first (most
recently pinned first), then the most recently approved, at most ``WALL_KEEP``;
hosts also get the queue, oldest first, at most ``QUEUE_KEEP``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from protocol.messages import MAX_NAME_CHARS, clean_text
from server.interactions.base import (
    MAX_LABEL_CHARS,
    InteractionError,
    Status,
    as_map,
    check_id,
    check_int,
    check_label,
    check_number,
    check_text,
    opt_number,
)

WALL_ID = "wall"
DEFAULT_POST_CHARS = 140
MAX_POST_CHARS = 500
WALL_KEEP = 50
QUEUE_KEEP = 200
HOST_ACTIONS = ("approve", "reject", "pin", "unpin")
PostStatus = Literal["pending", "approved", "rejected"]
POST_STATUSES: tuple[PostStatus, ...] = ("pending", "approved", "rejected")


@dataclass(frozen=True, slots=True)
class WallSpec:
    id: str
    title: str
    max_chars: int = DEFAULT_POST_CHARS

    def __post_init__(self) -> None:
        check_id(self.id, "wall id")
        check_label(self.title, "title", MAX_LABEL_CHARS)
        check_int(self.max_chars, "max_chars", 1, MAX_POST_CHARS)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "max_chars": self.max_chars}

    @classmethod
    def from_dict(cls, obj: Any) -> WallSpec:
        obj = as_map(obj, "a wall")
        return cls(
            check_id(obj.get("id"), "wall id"),
            check_label(obj.get("title"), "title", MAX_LABEL_CHARS),
            check_int(obj.get("max_chars", DEFAULT_POST_CHARS), "max_chars", 1, MAX_POST_CHARS),
        )


DEFAULT_SPEC = WallSpec(WALL_ID, "Wall")


@dataclass(frozen=True, slots=True)
class Post:
    id: str
    viewer_id: str
    name: str | None
    text: str
    posted_at: float
    status: PostStatus = "pending"
    decided_at: float | None = None
    pinned_at: float | None = None

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        """The post as JSON; ``private`` adds the poster's id and the status (hosts)."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "text": self.text,
            "posted_at": self.posted_at,
            "approved_at": self.decided_at if self.status == "approved" else None,
            "pinned_at": self.pinned_at,
        }
        if private:
            out["viewer_id"] = self.viewer_id
            out["status"] = self.status
        return out

    def stored(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "viewer_id": self.viewer_id,
            "name": self.name,
            "text": self.text,
            "posted_at": self.posted_at,
            "status": self.status,
            "decided_at": self.decided_at,
            "pinned_at": self.pinned_at,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Post:
        obj = as_map(obj, "a post")
        viewer_id, text, name = obj.get("viewer_id"), obj.get("text"), obj.get("name")
        if not isinstance(viewer_id, str) or not isinstance(text, str):
            raise InteractionError("invalid_field", "a post needs viewer_id and text strings")
        if name is not None and not isinstance(name, str):
            raise InteractionError("invalid_field", "name must be a string")
        status = obj.get("status", "pending")
        if status not in POST_STATUSES:
            raise InteractionError("invalid_field", f"status must be one of {POST_STATUSES}")
        return cls(
            id=check_id(obj.get("id"), "post id"),
            viewer_id=viewer_id,
            name=name,
            text=text,
            posted_at=check_number(obj.get("posted_at"), "posted_at", 0.0, math.inf),
            status=status,
            decided_at=opt_number(obj, "decided_at", lo=0.0, hi=math.inf),
            pinned_at=opt_number(obj, "pinned_at", lo=0.0, hi=math.inf),
        )


def post_id(viewer_id: str, key: str) -> str:
    """The id of the post a viewer makes with an idempotency key: the same for every
    retry, so a retried post is one post (PROTOCOL.md, "Idempotency keys")."""
    return "p" + hashlib.sha256(f"{viewer_id}|{key}".encode()).hexdigest()[:16]


def new_post(
    spec: WallSpec,
    status: Status,
    raw: Any,
    *,
    post_id: str,
    viewer_id: str,
    name: str | None,
    now: float,
    moderation: str,
) -> Post:
    """Validate ``{"text": ...}``; return the new post, pending or (post-moderation)
    approved. Raises ``not_open``, ``invalid_field``, ``empty_text``, ``text_too_long``."""
    phase = status.at(now).phase
    if phase != "open":
        raise InteractionError("not_open", f"the wall is {phase}")
    command = as_map(raw, "a post")
    text = check_text(command.get("text"), "the post", spec.max_chars)
    shown = (clean_text(name)[:MAX_NAME_CHARS] or None) if name is not None else None
    if moderation == "post":
        return Post(post_id, viewer_id, shown, text, now, "approved", decided_at=now)
    return Post(post_id, viewer_id, shown, text, now)


def host_action(post: Post, action: str, now: float) -> Post:
    """Apply a host action (module docstring); ``illegal_transition`` for pinning a post
    that is not approved, ``invalid_field`` for an unknown action."""
    if action not in HOST_ACTIONS:
        raise InteractionError(
            "invalid_field", f"action must be one of {', '.join(HOST_ACTIONS)}, got {action!r:.40}"
        )
    if action == "approve":
        return (
            post if post.status == "approved" else replace(post, status="approved", decided_at=now)
        )
    if action == "reject":
        if post.status == "rejected":
            return post
        return replace(post, status="rejected", decided_at=now, pinned_at=None)
    if post.status != "approved":
        raise InteractionError(
            "illegal_transition",
            f"post {post.id} is {post.status}; approve it first",
            phase=post.status,
        )
    if action == "pin":
        return post if post.pinned_at is not None else replace(post, pinned_at=now)
    return replace(post, pinned_at=None)


def board(posts: Iterable[Post], *, private: bool = False) -> dict[str, Any]:
    """The wall's view: ``posts`` (on the wall, capped) and ``count`` (approved posts);
    hosts also get ``queue`` (pending, oldest first, capped), ``pending`` and ``rejected``
    (counts)."""
    approved: list[Post] = []
    pending: list[Post] = []
    rejected = 0
    for post in posts:
        if post.status == "approved":
            approved.append(post)
        elif post.status == "pending":
            pending.append(post)
        else:
            rejected += 1
    approved.sort(
        key=lambda p: (
            0 if p.pinned_at is not None else 1,
            -(p.pinned_at or 0.0),
            -(p.decided_at or p.posted_at),
            p.id,
        )
    )
    out: dict[str, Any] = {
        "posts": [p.to_dict(private=private) for p in approved[:WALL_KEEP]],
        "count": len(approved),
    }
    if private:
        pending.sort(key=lambda p: (p.posted_at, p.id))
        out["queue"] = [p.to_dict(private=True) for p in pending[:QUEUE_KEEP]]
        out["pending"] = len(pending)
        out["rejected"] = rejected
    return out
