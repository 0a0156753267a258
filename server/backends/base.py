"""The Store and Broker interfaces (ARCHITECTURE.md, "Components").

Everything that talks to Redis is behind these two protocols; the memory
implementations make the single-process embedded default. One contract suite
(``tests/test_contract.py``) runs the same behaviour tests against both.

Store guarantees:

- A write that returned has been committed (with Redis: acknowledged by the
  server; durable as far as its persistence settings make it). A write that raised
  changed nothing that a later read can see, except where a method says otherwise.
- A room exists from the return of :meth:`Store.create_room` until the return of
  :meth:`Store.delete_room`, and both are all or nothing: a reader sees the whole
  room or none of it, and a deleted room leaves nothing behind (on Redis, no key;
  creating it again starts empty). A second create of an existing id raises
  :class:`RoomExists`.
- Missing rooms: every method that names a room raises :class:`RoomNotFound` when
  the room does not exist, and changes nothing (``get_room``, ``update_room``,
  ``delete_room``, ``room_version``, ``remember_token``, ``token_info``,
  ``put_interaction``, ``interactions``, ``apply``, ``submit_many``, ``counters``,
  ``records``, ``read``, ``append_audit``, ``audit_log``, ``redact_audit``,
  ``records``, ``read``, ``viewer_data``, ``erase_viewer``, ``prune``). The
  best-effort bookkeeping (``set_presence``, ``presence``, ``set_node_stats``,
  ``room_stats``, ``add_participants``, ``participants``, ``add_viewers``,
  ``unique_viewers``, ``append_replay``, ``replay``) does nothing for a missing room and reads empty
  (0, ``{}``, ``[]``): a node's late report never brings a deleted room back.
  The check is part of the operation (on Redis in the same Lua script as the write,
  in the same round trip as the read), not a separate call that could race.
- :meth:`Store.list_rooms` lists the rooms that exist when it reads them; a room
  created or deleted while it runs may or may not be in the list.
- :meth:`Store.apply` is atomic and idempotent: for one ``(viewer, key)`` the
  effect happens at most once, and a retry returns ``duplicate`` with the version
  of the first application. A viewer's new contribution replaces its previous one
  (the counters move by the difference; a counter that reaches 0 disappears); a
  ``None`` record withdraws it. ``once`` refuses a second contribution of a viewer
  (``already_done``). Caps are checked before anything changes. These are the
  semantics of :class:`server.interactions.base.Tally`, per interaction box.
  ``versioned=False`` applies bookkeeping that is not room state (who is present)
  without growing the room version and without remembering its key: such a record
  replaces the holder's last one, so a repeat does no harm, and a box of notes (one
  per join and leave) keeps one record per holder, never a key per note.
  An empty key means *not keyed*: nothing is looked up or remembered, and a repeat
  applies again (best-effort bookkeeping that a repeat does not harm, as presence:
  no ``done`` entry per join). ``uniform`` says every record of the box carries the
  same deltas (a box that counts its holders, as presence's ``n``): the store tells
  a new holder by its write instead of reading the old record first. The counters
  move by the deltas when a holder is added, back when one is withdrawn, and not at
  all when a record is replaced or an absent holder withdrawn. A uniform submission
  has no caps and is not ``once``.
  :meth:`Store.submit_many` applies a list of contributions to one room as one
  atomic commit (on Redis one script call), each
  with exactly these semantics, in list order.
- :meth:`Store.read` returns the counters and records of several boxes of one room
  as of one moment (one round trip, one atomic read on Redis).
- Every state change of a room (room update, interaction update, applied
  contribution) increases the room's ``version`` by one; versions never go back.
- All keys of a room share one Redis Cluster hash tag, so every atomic operation
  touches one slot.

Broker guarantees: *at most once*. A publication reaches every node subscribed to
the room's channel at the time of publishing, in publish order per room and
publishing node, or is lost (for instance while Redis is down). There is no order
between rooms: on a cluster, rooms on different shards arrive over different
connections. Nothing is stored; state is never carried only by the broker.
:meth:`Broker.relay` publishes and appends to the store's replay lists together (on
Redis in one round trip); the appends keep the replay's guarantees, best effort.

:meth:`Broker.subscribe` returns once the subscription is live (on Redis: confirmed
by the server; on a cluster, by the shard that owns the room), so whatever any node
publishes after it returned is delivered. When the broker cannot confirm it in time,
or Redis is down, it raises :class:`BackendUnavailable`; the subscription stays
wanted and becomes live when the broker reconnects, until :meth:`Broker.unsubscribe`.
Once ``unsubscribe`` has returned, nothing is delivered for that room.

Failures raise :class:`BackendUnavailable`, which callers turn into the retryable
``store_unavailable`` error.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from server.backends.retention import Cutoffs
from server.backends.viewers import ViewerData

# Room settings and their defaults: server/room_settings.py (PROTOCOL.md, "REST API").
from server.room_settings import ROOM_SETTING_DEFAULTS

# Records of minted tokens a room keeps at most, by default (limits.tokens_kept_per_room).
TOKENS_KEPT = 1000


class BackendUnavailable(ConnectionError):
    """The store or broker cannot be reached now; retrying later may succeed."""


class RoomNotFound(KeyError):
    """The room does not exist (never made, or deleted); nothing changed."""


class RoomExists(ValueError):
    """A room with that id exists already; nothing changed."""


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A room as the store keeps it: id, title, creation time, version, settings."""

    id: str
    title: str
    created_at: float
    version: int = 1
    settings: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created_at": int(self.created_at * 1000),  # ms since the epoch
            "version": self.version,
            "settings": {**ROOM_SETTING_DEFAULTS, **self.settings},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created_at": self.created_at,
            "version": self.version,
            "settings": self.settings,
        }

    def same_room_as(self, other: RoomRecord) -> bool:
        """Whether ``other`` says what this record says, whatever its version: the
        version is the room's, and every vote moves it, not only a change of the room."""
        return (self.id, self.title, self.created_at, self.settings) == (
            other.id,
            other.title,
            other.created_at,
            other.settings,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoomRecord:
        return cls(
            data["id"],
            data["title"],
            data["created_at"],
            data["version"],
            data.get("settings") or {},
        )


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What :meth:`Store.apply` did.

    ``status`` is ``applied`` (this call changed the counters), ``duplicate`` (the
    key was seen before; nothing changed), ``capped`` (``capped_field`` would go
    over its cap; nothing changed) or ``already_done`` (a ``once`` contribution met
    one the viewer already holds; nothing changed). ``version`` is the room version of the
    application (for a duplicate: of the first one). ``counters`` are the
    interaction's counters after the call.
    """

    status: Literal["applied", "duplicate", "capped", "already_done"]
    version: int
    counters: dict[str, int]
    capped_field: str | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """One viewer's contribution to one box, with the rules it is applied under: the
    arguments of :meth:`Store.apply` as one value, which each backend's
    :meth:`Store.submit` takes."""

    viewer_id: str
    key: str
    record: dict[str, Any] | None
    deltas: dict[str, int]
    caps: dict[str, int]
    once: bool
    versioned: bool
    uniform: bool = False

    def __post_init__(self) -> None:
        if self.uniform and (self.caps or self.once):
            raise ValueError("a uniform submission has no caps and is not once")

    @property
    def keyed(self) -> bool:
        """Whether the store looks the key up and remembers it (``""``: not keyed)."""
        return self.key != ""

    @property
    def done_key(self) -> str:
        """Where the idempotency key is remembered: keys are scoped per viewer."""
        return f"{self.viewer_id}|{self.key}"

    def held(self) -> bytes | None:
        """What the store keeps for the viewer (None: the contribution is withdrawn), with
        the time it was written (``t``, for retention: server/backends/retention.py)."""
        if self.record is None:
            return None
        return orjson.dumps({"r": self.record, "d": self.deltas, "t": int(time.time())})


# A held contribution is stored as JSON {"r": record, "d": deltas, "t": written at}
# (memory and Redis alike).
def held_record(held: bytes | str) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(held)["r"]
    return record


def held_deltas(held: bytes | str) -> dict[str, int]:
    deltas: dict[str, int] = orjson.loads(held)["d"]
    return deltas


@dataclass(frozen=True, slots=True)
class BoxData:
    """What :meth:`Store.read` returns: per box asked for, its counters and its records
    (viewer id -> record); a box nobody contributed to is there, empty. ``held``: for
    each (box, holder) asked for, the holder's record in that box, by box then holder
    (a holder that holds nothing there is left out)."""

    counters: dict[str, dict[str, int]]
    records: dict[str, dict[str, dict[str, Any]]]
    held: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


class Store(Protocol):
    """Rooms, their interactions and contributions, and shared bookkeeping; the module
    docstring states the guarantees. Implementations subclass it, which gives them
    :meth:`apply` on top of their :meth:`submit`."""

    # --- rooms ---
    async def create_room(self, room: RoomRecord) -> RoomRecord: ...

    async def get_room(self, room_id: str) -> RoomRecord: ...

    async def list_rooms(self) -> list[RoomRecord]: ...

    async def update_room(
        self, room_id: str, *, title: str | None = None, settings: dict[str, Any] | None = None
    ) -> RoomRecord: ...

    async def delete_room(self, room_id: str) -> None: ...

    async def room_version(self, room_id: str) -> int: ...

    async def room_count(self) -> int:
        """How many rooms exist (``limits.max_rooms``)."""
        ...

    # --- tokens: only their SHA-256 is kept, until the token expires, and at most
    # ``keep`` per room (past it, those that expire first are forgotten) ---
    async def remember_token(
        self,
        room_id: str,
        token_hash: str,
        info: dict[str, Any],
        ttl_s: int,
        keep: int = TOKENS_KEPT,
    ) -> None: ...

    async def token_info(self, room_id: str, token_hash: str) -> dict[str, Any] | None: ...

    # --- interactions: definitions and per-viewer contributions ---
    async def put_interaction(
        self, room_id: str, interaction_id: str, state: dict[str, Any]
    ) -> int: ...

    async def interactions(self, room_id: str) -> dict[str, dict[str, Any]]: ...

    async def apply(
        self,
        room_id: str,
        interaction_id: str,
        viewer_id: str,
        key: str,
        record: dict[str, Any] | None,
        deltas: dict[str, int],
        caps: dict[str, int] | None = None,
        once: bool = False,
        versioned: bool = True,
    ) -> ApplyResult:
        """Apply ``viewer_id``'s contribution to the box ``interaction_id`` (see above)."""
        submission = Submission(viewer_id, key, record, deltas, caps or {}, once, versioned)
        return await self.submit(room_id, interaction_id, submission)

    async def submit(
        self, room_id: str, interaction_id: str, submission: Submission
    ) -> ApplyResult: ...

    async def submit_many(
        self, room_id: str, items: list[tuple[str, Submission]]
    ) -> list[ApplyResult]:
        """Apply ``(interaction id, submission)`` items to one room in order, as one
        commit: each result is what :meth:`submit` gives when the items are applied one
        after another (a key repeated in the list is a ``duplicate`` of its first
        application). A missing room raises :class:`RoomNotFound` and changes nothing;
        an empty list returns ``[]``. This default is a loop, atomic for a store whose
        ``submit`` does not yield (memory); Redis runs the whole list in one script."""
        return [await self.submit(room_id, iid, submission) for iid, submission in items]

    async def counters(self, room_id: str, interaction_id: str) -> dict[str, int]: ...

    async def records(self, room_id: str, interaction_id: str) -> dict[str, dict[str, Any]]: ...

    async def read(
        self,
        room_id: str,
        counters: Collection[str],
        records: Collection[str],
        held: Collection[tuple[str, str]] = (),
    ) -> BoxData:
        """Counters and records of whole boxes, and single holders' records (``held``:
        (box, holder) pairs, for a box too large to read whole), as of one moment."""
        ...

    # --- presence: per-node counts that expire ---
    async def set_presence(self, room_id: str, node_id: str, count: int, ttl_s: float) -> None: ...

    async def presence(self, room_id: str) -> int: ...

    async def presence_many(self, room_ids: Collection[str]) -> dict[str, int]:
        """:meth:`presence` of each room (on Redis in one round trip per few hundred)."""
        return {room_id: await self.presence(room_id) for room_id in room_ids}

    # --- live counts per node, summed over the nodes that reported within their TTL ---
    async def set_node_stats(
        self, room_id: str, node_id: str, stats: dict[str, int], ttl_s: float
    ) -> None: ...

    async def room_stats(self, room_id: str) -> dict[str, int]: ...

    # --- who took part, one count over every node (a viewer on two nodes counts once;
    # on Redis a HyperLogLog: exact for small rooms, within about 1 % for large ones) ---
    async def add_participants(self, room_id: str, user_ids: Collection[str]) -> None: ...

    async def participants(self, room_id: str) -> int: ...

    # --- who joined as a viewer, one count over every node, kept like the participants ---
    async def add_viewers(self, room_id: str, user_ids: Collection[str]) -> None: ...

    async def unique_viewers(self, room_id: str) -> int: ...

    # --- stream replay shared by all nodes ---
    async def append_replay(
        self, room_id: str, events: list[dict[str, Any]], keep: int
    ) -> None: ...

    async def replay(self, room_id: str, count: int) -> list[dict[str, Any]]: ...

    # --- the room's audit log (server/rooms/audit.py): not best effort, and bounded ---
    async def append_audit(self, room_id: str, entries: list[dict[str, Any]], keep: int) -> None:
        """Append ``entries`` to the room's audit log, keeping its newest ``keep``."""
        ...

    async def audit_log(self, room_id: str) -> list[dict[str, Any]]:
        """The room's audit log, oldest first."""
        ...

    async def redact_audit(self, room_id: str, user_id: str, replacement: str) -> int:
        """Replace ``user_id`` wherever it is a whole string value of an entry (actor,
        target, detail, list items) with ``replacement``, keeping each entry's place;
        returns how many entries changed (a viewer's data deleted: PROTOCOL.md,
        "Audit log")."""

    # --- one viewer's data (server/backends/viewers.py says what it is) ---
    async def viewer_data(self, room_id: str, viewer_id: str) -> ViewerData:
        """Everything the room holds about the viewer; RoomNotFound for a missing room."""
        ...

    async def erase_viewer(self, room_id: str, viewer_id: str) -> tuple[ViewerData, int]:
        """Remove everything the room holds about the viewer, atomically: what was
        held, and the room version after (it grows when anything changed)."""
        ...

    # --- retention (server/backends/retention.py says what goes) ---
    async def prune(self, room_id: str, cutoffs: Cutoffs, now: float) -> tuple[int, int]:
        """Drop what the room keeps past its retention: how many values went, and the
        room version after (it grows when a held record went); RoomNotFound for a
        missing room."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


MessageHandler = Callable[[str, bytes], None]


class Broker(Protocol):
    """Room channels between nodes: at most once, in order per room and publisher.
    A publisher may hear its own messages back (Redis pub/sub echoes them; the memory
    broker does not), so subscribers drop their own. Implementations subclass it, which
    gives them :meth:`relay` on top of their :meth:`publish_many`."""

    # Called once the channels are confirmed again on a new connection after one broke
    # (what was published meanwhile is lost); the relay sets it to re-read its rooms.
    on_resubscribed: Callable[[], None] | None = None

    async def start(self, on_message: MessageHandler) -> None: ...

    async def subscribe(self, room_id: str) -> None: ...

    async def unsubscribe(self, room_id: str) -> None: ...

    async def publish(self, room_id: str, payload: bytes) -> None: ...

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None: ...

    async def relay(
        self,
        items: list[tuple[str, bytes]],
        store: Store,
        replays: Mapping[str, list[dict[str, Any]]],
        keep: int,
    ) -> None:
        """One relay flush: publish ``items`` (as :meth:`publish_many`), and append each
        room's events in ``replays`` to ``store``'s replay list (as
        :meth:`Store.append_replay`, best effort: a failed append is not raised).
        Raises :class:`BackendUnavailable` when the publications may be lost.
        This default takes a round trip for the publications and one per room for the
        appends; the Redis broker sends all of it in one round trip when the store
        is on its connection."""
        lost: BackendUnavailable | None = None
        try:
            await self.publish_many(items)
        except BackendUnavailable as exc:
            lost = exc
        for room_id, events in replays.items():
            with contextlib.suppress(BackendUnavailable):
                await store.append_replay(room_id, events, keep)
        if lost is not None:
            raise lost

    async def close(self) -> None: ...
