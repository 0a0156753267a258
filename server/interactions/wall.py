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
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocol.messages import MAX_NAME_CHARS
from server.interactions.base import (
    MAX_LABEL_CHARS,
    Id,
    InteractionError,
    Record,
    Status,
    Time,
    as_map,
    box_key,
    check_name,
    check_text,
    clean_label,
    dump,
    parse,
    reopenable,
)
from server.interactions.kind import (
    Applied,
    Audience,
    Change,
    Context,
    Definition,
    Kind,
    Needs,
    Op,
    ViewerCommand,
    Write,
)

WALL_ID = "wall"
POSTS_BOX = "posts"  # within the wall: one record per post
DEFAULT_POST_CHARS = 140
MAX_POST_CHARS = 500
# Posts one viewer may have waiting for approval at once: one viewer (one token)
# cannot fill the moderation queue; past it, ``limit_reached`` (issue 15).
PENDING_PER_VIEWER = 5
WALL_KEEP = 50
QUEUE_KEEP = 200
HOST_ACTIONS = ("approve", "reject", "pin", "unpin")
PostStatus = Literal["pending", "approved", "rejected"]


class WallSpec(Record, frozen=True):
    """The room's wall: a title and how long a post may be."""

    id: Id
    title: str
    max_chars: Annotated[int, Meta(ge=1, le=MAX_POST_CHARS)] = DEFAULT_POST_CHARS

    def __post_init__(self) -> None:
        clean_label(self, "title", MAX_LABEL_CHARS)


DEFAULT_SPEC = WallSpec(WALL_ID, "Wall")


class Post(Record, frozen=True):
    """A post as the store keeps it (the poster's ``viewer_id`` included)."""

    id: Id
    viewer_id: str
    name: str | None
    text: str
    posted_at: Time
    status: PostStatus = "pending"
    decided_at: Time | None = None
    pinned_at: Time | None = None

    def shown(self, *, private: bool = False) -> dict[str, Any]:
        """The post in a view; ``private`` adds the poster's id and the status (hosts)."""
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
    shown = check_name(name, MAX_NAME_CHARS)
    if moderation == "post":
        return Post(post_id, viewer_id, shown, text, now, "approved", decided_at=now)
    return Post(post_id, viewer_id, shown, text, now)


def check_waiting(posts: Mapping[str, Post], viewer_id: str, new_id: str) -> None:
    """Raise ``limit_reached`` when ``viewer_id`` has ``PENDING_PER_VIEWER`` posts
    waiting for approval besides ``new_id`` (a retry)."""
    waiting = sum(
        p.viewer_id == viewer_id and p.status == "pending" and p.id != new_id
        for p in posts.values()
    )
    if waiting >= PENDING_PER_VIEWER:
        raise InteractionError(
            "limit_reached",
            f"you have {waiting} posts waiting for approval; at most {PENDING_PER_VIEWER}",
            cap="pending_posts_per_viewer",
            limit=PENDING_PER_VIEWER,
        )


def host_action(post: Post, action: str, now: float) -> Post:
    """Apply a host action (module docstring); ``illegal_transition`` for pinning a post
    that is not approved, ``invalid_field`` for an unknown action."""
    if action not in HOST_ACTIONS:
        raise InteractionError(
            "invalid_field", f"action must be one of {', '.join(HOST_ACTIONS)}, got {action!r:.40}"
        )
    if action == "approve":
        return (
            post
            if post.status == "approved"
            else msgspec.structs.replace(post, status="approved", decided_at=now)
        )
    if action == "reject":
        if post.status == "rejected":
            return post
        return msgspec.structs.replace(post, status="rejected", decided_at=now, pinned_at=None)
    if post.status != "approved":
        raise InteractionError(
            "illegal_transition",
            f"post {post.id} is {post.status}; approve it first",
            phase=post.status,
        )
    if action == "pin":
        return post if post.pinned_at is not None else msgspec.structs.replace(post, pinned_at=now)
    return msgspec.structs.replace(post, pinned_at=None)


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
        "posts": [p.shown(private=private) for p in approved[:WALL_KEEP]],
        "count": len(approved),
    }
    if private:
        pending.sort(key=lambda p: (p.posted_at, p.id))
        out["queue"] = [p.shown(private=True) for p in pending[:QUEUE_KEEP]]
        out["pending"] = len(pending)
        out["rejected"] = rejected
    return out


# --- the kind -----------------------------------------------------------------------------


class Wall(Kind[WallSpec, Status]):
    """The room's wall: posts are records of the wall's ``posts`` box; hosts moderate."""

    name = "wall"
    spec_type = WallSpec
    state_type = Status
    ops = (Op("post", targets="room", text=True, counts_as="posts", words=("text",), holds=True),)
    actions = ("open", "close", *HOST_ACTIONS)
    view_ts = """spec: WallSpec;
  status: Status;
  posts: WallPost[];
  count: number;
  /** hosts and moderators only: posts waiting for review, and how many were refused */
  queue?: WallPost[];
  pending?: number;
  rejected?: number;"""
    types_ts = """
export interface WallPost {
  id: string;
  name: string | null;
  text: string;
  posted_at: number;
  approved_at: number | null;
  pinned_at: number | null;
  /** hosts and moderators only */
  viewer_id?: string;
  status?: "pending" | "approved" | "rejected";
}
"""
    builtin = WALL_ID

    def default_spec(self) -> WallSpec:
        return DEFAULT_SPEC

    def first_state(self, spec: WallSpec, now: float, entropy: bytes) -> Status:
        return Status("open", opened_at=0.0)

    def _posts_box(self, d: Definition) -> str:
        return box_key(d.id, POSTS_BOX)

    def posts(self, d: Definition, ctx: Context) -> dict[str, Post]:
        records = ctx.data.records(self._posts_box(d))
        return {pid: parse(Post, r, "a stored post") for pid, r in records.items()}

    def boxes(self, d: Definition) -> list[str]:
        return [self._posts_box(d)]

    def view_needs(self, d: Definition, ctx: Context) -> Needs:
        return Needs.of(records=[self._posts_box(d)])

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        return {
            "spec": dump(d.spec),
            "status": dump(d.state.at(ctx.now)),
            **board(self.posts(d, ctx).values(), private=audience is Audience.STAFF),
        }

    def command_needs(self, c: ViewerCommand, ctx: Context) -> Needs:
        return Needs.of(records=[self._posts_box(c.d)])  # the poster's waiting posts

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        made = new_post(
            c.d.spec,
            c.d.state,
            c.fields,
            post_id=post_id(c.who.id, c.key),
            viewer_id=c.who.id,
            name=c.who.name,
            now=ctx.now,
            # Held by the text filter: into the queue whatever the room's moderation.
            moderation="pre" if c.held else str(ctx.settings.get("wall_moderation", "pre")),
        )
        if made.status == "pending":
            check_waiting(self.posts(c.d, ctx), c.who.id, made.id)
        # One record per post, its id made from viewer and key: a retry is one post.
        box = self._posts_box(c.d)
        holder_key = f"{c.who.id}|{c.key}"
        return Write(box, made.id, holder_key, dump(made), {"posted": 1}, None, True)

    def acknowledge(self, op: str, write: Write, result: Applied) -> dict[str, Any]:
        super().acknowledge(op, write, result)
        status = (write.record or {}).get("status")
        return {"post": write.holder, "status": "approved" if status == "approved" else "pending"}

    def action_needs(
        self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context
    ) -> Needs:
        return self.view_needs(d, ctx) if action in HOST_ACTIONS else Needs()

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        if action not in HOST_ACTIONS:
            return Change(state=reopenable(d.state, action, ctx.now))
        pid = fields.get("post")
        post = self.posts(d, ctx).get(pid) if isinstance(pid, str) else None
        if post is None:
            raise InteractionError("unknown_target", f"no post {pid!r:.40}")
        updated = host_action(post, action, ctx.now)
        if updated == post:
            return Change()
        return Change(
            writes=(Write(self._posts_box(d), post.id, "", dump(updated), {"posted": 1}),)
        )

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        """Every post, oldest first, with its status."""
        posts = sorted(self.posts(d, ctx).values(), key=lambda p: (p.posted_at, p.id))
        return [p.shown(private=True) for p in posts]


KIND = Wall()
