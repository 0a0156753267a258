"""What an interaction kind declares: the one shape every kind has.

Each module of this package exports one :class:`Kind` (``KIND``); the registry
(:mod:`server.interactions.registry`) lists them, and the rest of the server finds a
kind only there. A kind declares, in one place:

- its spec and state types (:class:`~server.interactions.base.Record` structs), how a
  host's spec is checked (:meth:`Kind.parse_spec`, once) and the first state;
- the viewer commands it takes (:class:`Op`) and how one becomes a :class:`Write`
  for the store (:meth:`Kind.command`), and what the acknowledgement carries;
- its host actions and what each changes (:meth:`Kind.act` -> :class:`Change`);
- the boxes it keeps, and its views for each :class:`Audience`;
- the events it announces, its export and its section of the event report;
- its view's TypeScript type, for the JS client's declarations (``view_ts``);
- optionally, what danmaku do to it (a keyword draw, votes by danmaku).

Kinds do no I/O. Whatever a view, a command or an action needs from the store, the
kind names first (a :class:`Needs`), the room service reads it in one round trip, and
the kind computes from what came back (:class:`Data`). A kind may ask again with what
it learnt (a Q&A board learns its question ids from one read and their upvote boxes
from the next); the service stops after :data:`MAX_READS` rounds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from server.interactions.base import (
    Contribution,
    InteractionError,
    Record,
    dump,
    merge_counters,
    parse,
    refusal,
)

MAX_READS = 3  # rounds of Needs -> Data for one view, command or action


class Audience(StrEnum):
    """Who looks at a view: viewers, screens (overlay and wall) or staff (hosts and
    moderators, who see what viewers do not: hidden results, the queue)."""

    PUBLIC = "public"
    SCREEN = "screen"
    STAFF = "staff"


AUDIENCES: tuple[Audience, ...] = tuple(Audience)


@dataclass(frozen=True, slots=True)
class Definition:
    """One interaction of a room: its kind's name, spec and state, when it was made,
    and its audit record (a drawn draw's)."""

    id: str
    kind: str
    spec: Any
    state: Any
    created_at: float
    audit: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Needs:
    """What to read from the store: boxes' counters, boxes' records, and single
    holders' records ``(box, holder)`` (one viewer's answers in a box too large to
    read whole for each command)."""

    counters: frozenset[str] = frozenset()
    records: frozenset[str] = frozenset()
    held: frozenset[tuple[str, str]] = frozenset()

    def __or__(self, other: Needs) -> Needs:
        return Needs(
            self.counters | other.counters, self.records | other.records, self.held | other.held
        )

    def __bool__(self) -> bool:
        return bool(self.counters or self.records or self.held)

    @classmethod
    def of(
        cls,
        counters: Iterable[str] = (),
        records: Iterable[str] = (),
        held: Iterable[tuple[str, str]] = (),
    ) -> Needs:
        return cls(frozenset(counters), frozenset(records), frozenset(held))


NOTHING = Needs()


@dataclass(frozen=True, slots=True)
class Data:
    """What the store returned for a :class:`Needs`: box -> counters, box -> records.

    A box that was not read (or holds nothing) reads as empty.
    """

    counters_by_box: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    records_by_box: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    held_by_box: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    asked: frozenset[tuple[str, str]] = frozenset()  # the (box, holder) pairs read

    def counters(self, box: str) -> Mapping[str, int]:
        return self.counters_by_box.get(box, {})

    def records(self, box: str) -> Mapping[str, Mapping[str, Any]]:
        return self.records_by_box.get(box, {})

    def held(self, box: str, holder: str) -> Mapping[str, Any] | None:
        """``holder``'s record in ``box`` (None: it holds none, or it was not read)."""
        whole = self.records_by_box.get(box)
        if whole is not None:
            return whole.get(holder)
        return self.held_by_box.get(box, {}).get(holder)

    def merged(self, boxes: Iterable[str]) -> dict[str, int]:
        """The counters of ``boxes`` added up (:func:`~server.interactions.base.merge_counters`)."""
        return merge_counters(*(self.counters(b) for b in boxes))


EMPTY = Data()


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who sends a command: a stable user id and the display name to record."""

    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ViewerCommand:
    """A viewer's command as a kind sees it: the op, the interaction it is for, the
    command's fields (the kind reads what it needs), who sent it and its idempotency
    key ("" for ops that take none). ``held``: the text filter held the command's text
    for review (server/moderation/screen.py): a kind with a queue keeps it out of view.
    """

    op: str
    d: Definition
    fields: Mapping[str, Any]
    who: Viewer
    key: str
    held: bool = False

    def write(
        self,
        box: str,
        made: Contribution,
        *,
        named: bool = False,
        caps: Mapping[str, int] | None = None,
    ) -> Write:
        """``made`` as this viewer's write to ``box``; ``named``: the display name goes
        with the record (a draw shows its winners by name, a quiz its leaders)."""
        record = {**made.record, "name": self.who.name} if named else made.record
        return Write(box, self.who.id, self.key, record, made.deltas, caps, made.once)


@dataclass(frozen=True, slots=True)
class Context:
    """What a kind may look at besides its own definition: the time, the room's
    settings, every interaction of the room, and what the store returned."""

    now: float
    settings: Mapping[str, Any] = field(default_factory=dict)
    definitions: Mapping[str, Definition] = field(default_factory=dict)
    data: Data = EMPTY


@dataclass(frozen=True, slots=True)
class Write:
    """One atomic contribution for the store (``Store.apply``, semantics of
    :class:`~server.interactions.base.Tally`): ``holder`` holds ``record`` in ``box``;
    ``key`` makes a retry a duplicate (an empty key: the service makes a fresh one, for
    host writes that are never retried as such); a ``None`` record withdraws the
    holder's."""

    box: str
    holder: str
    key: str
    record: dict[str, Any] | None
    deltas: Mapping[str, int] = field(default_factory=dict)
    caps: Mapping[str, int] | None = None
    once: bool = False


@dataclass(frozen=True, slots=True)
class Announcement:
    """A public event for the room's stream (``type`` and its fields; ``ts`` is added),
    a private notice for some users (a draw's winners), and ``private`` notices, each
    for one user (a quiz's standings: each player's own score and rank)."""

    event: dict[str, Any]
    notify: frozenset[str] = frozenset()
    notice: dict[str, Any] | None = None
    private: Mapping[str, dict[str, Any]] = field(default_factory=dict)


class _Unchanged:
    """The marker of a :class:`Change` that leaves the state as it is."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


@dataclass(frozen=True, slots=True)
class Change:
    """What a host action does: a new state (and audit record), record writes (a Q&A
    question answered, a wall post approved), announcements and extra reply fields.
    Nothing set: the action changed nothing (a repeat)."""

    state: Any = UNCHANGED
    audit: dict[str, Any] | None = None
    writes: tuple[Write, ...] = ()
    announce: tuple[Announcement, ...] = ()
    reply: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changes_definition(self) -> bool:
        return self.state is not UNCHANGED or self.audit is not None


@dataclass(frozen=True, slots=True)
class Op:
    """A viewer command a kind takes (PROTOCOL.md, "Viewer commands").

    ``targets`` says where the command goes: ``"interaction"`` (it names one with its
    ``interaction`` field) or ``"room"`` (the room's own instance of the kind: the
    check-in, the wall). ``text``: it carries the viewer's own words (refused while a
    moderator muted the viewer). ``words``: where in its fields the viewer's own words
    are (``"text"``; a dotted path reaches into a map): the room service runs them through the text
    filter before the kind sees them. ``holds``: the kind can hold such text for review
    (else text the filter would hold is refused). ``counts_as``: the per-minute count.

    ``buffered``: taps at any rate (reactions). Such a command carries no idempotency
    key and makes no store write of its own: the service adds its deltas up per room,
    announces them merged once per tick (:meth:`Kind.burst_event`) and commits the
    totals once a second, exactly once.
    """

    name: str
    targets: str = "interaction"
    text: bool = False
    counts_as: str = "votes"
    buffered: bool = False
    words: tuple[str, ...] = ()
    holds: bool = False

    @property
    def keyed(self) -> bool:
        """Whether the command carries an idempotency key (every unbuffered one does)."""
        return not self.buffered


class Applied(Protocol):
    """What the store did with a :class:`Write` (``Store.apply``'s result)."""

    @property
    def status(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def counters(self) -> dict[str, int]: ...
    @property
    def capped_field(self) -> str | None: ...


SpecT = TypeVar("SpecT", bound=Record)
StateT = TypeVar("StateT", bound=Record)


class Kind(Generic[SpecT, StateT]):
    """One interaction kind: everything about it, as pure functions of plain values.

    Subclasses set the class attributes and override what their kind does; the
    defaults describe a kind with one box, no commands and no actions.
    """

    name: ClassVar[str]
    spec_type: ClassVar[type[Record]]
    state_type: ClassVar[type[Record]]
    ops: ClassVar[tuple[Op, ...]] = ()
    actions: ClassVar[tuple[str, ...]] = ()
    # Where host actions carry text (action -> field paths, as Op.words): filtered too.
    action_words: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # The id of the instance every room has (None: hosts create instances).
    builtin: ClassVar[str | None] = None
    # True when actions leave an audit record (GET .../audit).
    audited: ClassVar[bool] = False
    # Its module for the pages (clients/web/kinds/<name>.js when None).
    page: ClassVar[Path | None] = None
    # A spec for the demo room (hudong serve --demo) and the docs; None: not in the demo.
    example: ClassVar[Mapping[str, Any] | None] = None
    # Actions the demo room runs on the example once it is made (e.g. open a Q&A board).
    example_actions: ClassVar[tuple[str, ...]] = ()
    # The view's fields after id, kind and created_at, as TypeScript members for the JS
    # client's declarations (clients/js/protocol.d.ts, made by server/js_types.py). They may
    # name the kind's spec and state structs by class name; tests/test_js_types.py checks
    # real views against them. A kind without them is declared as a map of unknowns.
    view_ts: ClassVar[str] = "[field: string]: unknown;"
    # TypeScript declarations the view's members use (results, rows), named after the kind.
    types_ts: ClassVar[str] = ""
    # True: a danmaku this kind takes (:meth:`on_danmaku`) is a vote or a pick, which the
    # room's ``hide_vote_danmaku`` keeps off the scrolling layer; a keyword draw's entry
    # is not (it stays an ordinary danmaku).
    danmaku_votes: ClassVar[bool] = False

    def prepare(self) -> None:
        """Work done once before the node serves, so that no command pays for it (a word
        cloud's dictionary takes a second to load, holding the GIL)."""

    # --- definitions -----------------------------------------------------------------

    def parse_spec(self, raw: Any) -> SpecT:
        """A host's spec, checked once; ``invalid_field`` names what is wrong."""
        return parse(self.spec_type, raw, f"a {self.name} spec")  # type: ignore[return-value]

    def first_state(self, spec: SpecT, now: float, entropy: bytes) -> StateT:
        """The state of a new instance (``entropy``: 32 random bytes, for kinds that
        commit to a secret)."""
        return self.state_type()  # type: ignore[return-value]

    def default_spec(self) -> SpecT:
        """The spec of the instance every room has (kinds with ``builtin``)."""
        raise NotImplementedError(self.name)

    def decode(self, iid: str, stored: Mapping[str, Any]) -> Definition:
        """A definition as the store keeps it (see :meth:`encode`)."""
        return Definition(
            iid,
            self.name,
            parse(self.spec_type, stored["spec"], f"stored {self.name} {iid}"),
            parse(self.state_type, stored["state"], f"stored {self.name} state {iid}"),
            float(stored.get("created_at", 0.0)),
            stored.get("audit"),
        )

    def encode(self, definition: Definition) -> dict[str, Any]:
        return {
            "kind": self.name,
            "spec": dump(definition.spec),
            "state": dump(definition.state),
            "created_at": definition.created_at,
            "audit": definition.audit,
        }

    # --- boxes and views ---------------------------------------------------------------

    def boxes(self, d: Definition) -> list[str]:
        """The boxes whose counters make up the interaction's results."""
        return [d.id]

    def view_needs(self, d: Definition, ctx: Context) -> Needs:
        """What the views need from the store (``ctx.data``: what was read so far)."""
        return Needs.of(counters=self.boxes(d))

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        """The kind's fields of the view (the service puts ``id`` and ``kind`` first)."""
        return {"spec": dump(d.spec), "state": dump(d.state)}

    def views(self, d: Definition, ctx: Context) -> dict[Audience, dict[str, Any]]:
        """The view for each audience; screens see what viewers see unless a kind
        overrides this."""
        head = {"id": d.id, "kind": self.name, "created_at": d.created_at}
        public = {**head, **self.view(d, ctx, Audience.PUBLIC)}
        staff = {**head, **self.view(d, ctx, Audience.STAFF)}
        return {Audience.PUBLIC: public, Audience.SCREEN: public, Audience.STAFF: staff}

    def own_view(self, d: Definition, ctx: Context, viewer_id: str) -> dict[str, Any]:
        """What only this viewer may see of the interaction (``GET …/mine``; a draw
        winner's claim code), from the definition alone. Nothing by default."""
        return {}

    def audit_view(self, audit: dict[str, Any], audience: Audience) -> dict[str, Any]:
        """What ``audience`` may read of an audit record (``GET …/audit``): all of it,
        unless the kind hides part from viewers (a draw: its entrants' ids)."""
        return audit

    # --- viewer commands ------------------------------------------------------------------

    def command_needs(self, c: ViewerCommand, ctx: Context) -> Needs:
        """What a viewer command needs from the store before :meth:`command`."""
        return NOTHING

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        """The store write for a viewer's command; raises InteractionError when refused."""
        raise InteractionError("invalid_field", f"a {self.name} takes no {c.op!r:.32}")

    def acknowledge(self, op: str, write: Write, result: Applied) -> dict[str, Any]:
        """Extra fields of the ``ack`` (after ``version`` and ``duplicate``); raises the
        viewer's error for a refused write (``out_of_stock``, ``already_done``)."""
        error = refusal(result.status, result.capped_field)
        if error is not None:
            raise error
        return {}

    # --- host actions -------------------------------------------------------------------

    def action_needs(
        self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context
    ) -> Needs:
        """What a host action needs from the store before :meth:`act`."""
        return NOTHING

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        raise InteractionError("invalid_field", f"a {self.name} takes no action {action!r:.40}")

    def burst_event(self, d: Definition, deltas: Mapping[str, int]) -> dict[str, Any]:
        """The stream event for one tick's buffered deltas (ops with ``buffered``)."""
        return {"type": self.name, "interaction": d.id, "counts": dict(deltas)}

    # --- danmaku ------------------------------------------------------------------------

    def listens(self, d: Definition, now: float) -> bool:
        """Whether danmaku may change this interaction now (checked when definitions
        change, so :meth:`on_danmaku` runs only for those that listen)."""
        return False

    def on_danmaku(self, d: Definition, who: Viewer, text: str, now: float) -> Write | None:
        """What a danmaku does to the interaction: a store write, committed with the
        room's batch like a viewer's command (None: nothing). Its key must differ from
        one danmaku to the next, so that a later danmaku replaces an earlier one."""
        return None

    # --- export and report --------------------------------------------------------------

    def export_needs(self, d: Definition, ctx: Context) -> Needs:
        return Needs.of(records=self.boxes(d))

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        """Rows for a spreadsheet (``GET …/export``): by default one per contribution."""
        rows = []
        for box in self.boxes(d):
            for holder, record in ctx.data.records(box).items():
                rows.append({"box": box, "viewer": holder, **record})
        return rows

    def report(self, d: Definition, ctx: Context) -> dict[str, Any]:
        """This interaction's section of the event report: by default its host view."""
        return self.view(d, ctx, Audience.STAFF)


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as CSV text with a header of their keys (in order of first appearance).
    A cell that a spreadsheet would run as a formula is quoted with a leading '."""
    rows = list(rows)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    text = "" if value is None else str(value)
    # A cell starting with one of these is a formula to spreadsheets (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
