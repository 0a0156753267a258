"""What every interaction shares: errors, contributions, the reference Tally, a lifecycle,
and the typed parsing of specs.

Contributions
-------------
A viewer takes part by making a :class:`Contribution`: a small JSON-able ``record``
(the ballot, the pick, the answer) and ``deltas``, integer changes to named counters.
The store keeps, per *box*, one contribution per holder (usually the viewer) and the
counters they sum to. Applying a contribution is one atomic step (:meth:`Tally.apply`
is the reference):

1. a ``(holder, key)`` seen before is a *duplicate*: nothing changes;
2. if ``once`` is set and the holder already holds a contribution, it is refused
   (``already_done``);
3. the change is ``new deltas - previous deltas``; for every capped field whose change
   is positive, ``counter + change`` must stay ``<= cap`` or nothing changes (``capped``);
4. the counters move by the change, the new contribution replaces the previous one,
   and the key is remembered.

So the counters always equal the sum of the deltas of the contributions held, which
is what lets a Redis Lua script (or any node) apply votes without reading them back.

A *box* is one such set of contributions with its counters. Polls, draws and
check-ins have one box (the interaction id); a quiz has one per question, a co-design
round one per slot and a Q&A board one per question, because a viewer holds one answer
per question and one pick per slot. :func:`box_key` names them (``id`` or
``id/box``). Results add up the counters of an interaction's boxes
(:func:`merge_counters`): most kinds' field names never collide between boxes, and a
word cloud's terms, counted in two boxes, sum.

Specs and states
----------------
Specs, states and stored records are :mod:`msgspec` structs. :func:`parse` checks a
JSON-like value against one in a single pass: types, ranges and id patterns from the
annotations, then the struct's ``__post_init__`` for the rules between fields and for
cleaning host-written labels. Everything wrong is ``invalid_field``, naming the field.
:func:`dump` turns a struct back into plain values (for the store and for views).

Error codes
-----------
:class:`InteractionError` carries one of these codes; the command had no effect. The
first three are also used by ``protocol/messages.py``; ``protocol/codes.py`` holds all
of them. None of them is worth retrying unchanged (``retry`` is false for all).

==================== ================================================================
code                 raised when
==================== ================================================================
invalid_field        a spec or host operation has a missing, mistyped or out-of-range
                     field (also: an action name that does not exist)
text_too_long        an answer or question is longer than the interaction's limit
empty_text           an answer or question is empty after trimming
invalid_vote         a ballot that does not fit the interaction: wrong shape, duplicate
                     choices, a rating outside the scale
unknown_option       a ballot names an option the poll, quiz question or slot lacks
unknown_target       a command names an interaction, quiz question, co-design slot or
                     Q&A question that does not exist (or is hidden from viewers), or
                     a claim code that is no winner's
not_open             the poll, question, slot, board or draw does not accept this now
                     (draft, closed, locked, countdown over, already drawn)
illegal_transition   a host operation that does not apply in the current state
                     (reveal a draft poll, lock a slot before opening, draw twice)
too_few_picks        fewer picks or ranked options than the poll's minimum
too_many_picks       more picks or ranked options than the poll's maximum
out_of_stock         the option's stock is taken (the store refused to pass a cap)
already_done         a one-time action was already done: a quiz answer, a check-in,
                     an upvote, a draw entry (a retry with the same key is not refused)
not_eligible         the viewer may not enter this draw this way (the draw takes its
                     entrants from another source, or the viewer is excluded)
no_entrants          a draw was run with nobody eligible
==================== ================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol, TypeVar

import msgspec
import orjson
from msgspec.structs import force_setattr

from protocol.codes import ERROR_BY_NAME, ErrorCode
from protocol.messages import clean_text
from server.moderation.text import fast_copies

# Ids of interactions, options, slots and questions: safe in counter field names
# ("slot:option") and store keys, since they never contain ':', '/' or '~'.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)
Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
MAX_LABEL_CHARS = 100
MAX_CODES = 10  # danmaku codes per option
MAX_CODE_CHARS = 20
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CODE_CHARS)]
# Boxes that a room keeps for itself rather than for one interaction; '~' keeps their
# names apart from every interaction id.
PRESENCE_BOX = "~presence"  # viewers who joined and did not leave (draws from presence)

# The codes interactions add; protocol/codes.py holds them (one table for every code).
INTERACTION_ERRORS: tuple[ErrorCode, ...] = tuple(
    ERROR_BY_NAME[name]
    for name in (
        "invalid_vote",
        "unknown_option",
        "unknown_target",
        "not_open",
        "illegal_transition",
        "too_few_picks",
        "too_many_picks",
        "out_of_stock",
        "already_done",
        "not_eligible",
        "no_entrants",
    )
)
# Codes of protocol/codes.py that interactions raise with the same meaning.
REUSED_ERRORS: tuple[str, ...] = ("invalid_field", "text_too_long", "empty_text", "limit_reached")
ERROR_NAMES: frozenset[str] = frozenset([e.name for e in INTERACTION_ERRORS] + list(REUSED_ERRORS))


class InteractionError(Exception):
    """A refused command or host operation; nothing changed.

    ``extra`` holds JSON-able details for the error message (e.g. ``limit``).
    """

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        assert code in ERROR_NAMES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


# --- typed specs: one pass of validation ------------------------------------------------

T = TypeVar("T")


class Record(msgspec.Struct, frozen=True, kw_only=False):
    """Base of specs, states and stored records: immutable, compared by value."""


def parse(type_: type[T], raw: Any, what: str = "") -> T:
    """``raw`` (JSON-like) as a ``type_``; ``invalid_field`` says which field and why."""
    try:
        return msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise InteractionError("invalid_field", f"{what or type_.__name__}: {exc}") from None


_json = msgspec.json.Encoder()


def dump(value: Any) -> Any:
    """A struct (or anything holding structs) as plain JSON values (lists, not tuples)."""
    return orjson.loads(_json.encode(value))


def clean_label(struct: Record, name: str, max_chars: int) -> None:
    """Clean the host-written label ``struct.name`` in place (inside ``__post_init__``)."""
    force_setattr(struct, name, check_label(getattr(struct, name), name, max_chars))


# --- contributions and the reference applier ---------------------------------------


@dataclass(frozen=True, slots=True)
class Contribution:
    """One holder's participation in one box: ``record`` plus counter ``deltas``.

    ``box`` names the box within the interaction ("" when it has one); ``once`` asks
    the store to refuse a second contribution of the holder to that box.
    """

    record: dict[str, Any]
    deltas: dict[str, int]
    box: str = ""
    once: bool = False


ApplyStatus = Literal["applied", "duplicate", "capped", "already_done"]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What :meth:`Tally.apply` (or a store's ``apply``) did.

    ``applied``: the counters moved. ``duplicate``: the key was applied before, nothing
    changed, ``version`` is that of the first application. ``capped``: ``capped_field``
    would pass its cap, nothing changed. ``already_done``: a ``once`` contribution met
    one the holder already holds, nothing changed. ``counters`` are those after the call.
    """

    status: ApplyStatus
    version: int
    counters: dict[str, int]
    capped_field: str | None = None

    def check(self) -> ApplyResult:
        """Return self, or raise the :class:`InteractionError` of a refused application."""
        error = refusal(self.status, self.capped_field)
        if error is not None:
            raise error
        return self


def refusal(status: str, capped_field: str | None = None) -> InteractionError | None:
    """The error a viewer gets for a store status (``None`` for applied or duplicate)."""
    if status == "capped":
        return InteractionError(
            "out_of_stock", f"the stock of {capped_field} is taken", field=capped_field
        )
    if status == "already_done":
        return InteractionError("already_done", "this was already done and cannot be changed")
    return None


@dataclass
class Tally:
    """The reference in-memory applier of one box; a store must behave exactly like it.

    Keys are scoped per holder and remembered for good (a store may forget them after
    a long TTL). A refused application is not remembered: its retry is evaluated again.
    ``version`` counts the changes (applications and removals).
    """

    _counters: dict[str, int] = field(default_factory=dict)
    _held: dict[str, Contribution] = field(default_factory=dict)
    _done: dict[tuple[str, str], int] = field(default_factory=dict)
    version: int = 0

    @property
    def counters(self) -> dict[str, int]:
        """The counters; a field that sums to zero is absent."""
        return dict(self._counters)

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """holder id -> record of the contribution it holds (do not mutate)."""
        return {holder: c.record for holder, c in self._held.items()}

    def contribution(self, holder: str) -> Contribution | None:
        return self._held.get(holder)

    def apply(
        self,
        holder: str,
        contribution: Contribution,
        key: str,
        caps: Mapping[str, int] | None = None,
    ) -> ApplyResult:
        done = self._done.get((holder, key))
        if done is not None:
            return ApplyResult("duplicate", done, self.counters)
        previous = self._held.get(holder)
        if previous is not None and contribution.once:
            return ApplyResult("already_done", self.version, self.counters)
        change = dict(contribution.deltas)
        if previous is not None:
            for name, amount in previous.deltas.items():
                change[name] = change.get(name, 0) - amount
        for name, cap in (caps or {}).items():
            step = change.get(name, 0)
            if step > 0 and self._counters.get(name, 0) + step > cap:
                return ApplyResult("capped", self.version, self.counters, name)
        self._move(change)
        self._held[holder] = contribution
        self.version += 1
        self._done[(holder, key)] = self.version
        return ApplyResult("applied", self.version, self.counters)

    def remove(self, holder: str) -> dict[str, Any] | None:
        """Withdraw the holder's contribution; return its record (None if it held none).

        Keys stay remembered, so a late retry of the withdrawn command stays a duplicate.
        """
        previous = self._held.pop(holder, None)
        if previous is None:
            return None
        self._move({name: -amount for name, amount in previous.deltas.items()})
        self.version += 1
        return previous.record

    def _move(self, change: Mapping[str, int]) -> None:
        for name, step in change.items():
            if step:
                value = self._counters.get(name, 0) + step
                if value:
                    self._counters[name] = value
                else:
                    del self._counters[name]


def recount(contributions: Iterable[Contribution]) -> dict[str, int]:
    """The counters that ``contributions`` sum to (zero fields left out)."""
    total: dict[str, int] = {}
    for contribution in contributions:
        for name, amount in contribution.deltas.items():
            total[name] = total.get(name, 0) + amount
    return {name: value for name, value in total.items() if value}


def merge_counters(*counters: Mapping[str, int]) -> dict[str, int]:
    """The counters of an interaction's boxes added up: a field in several boxes (a
    word cloud's term) sums; the others are as they are."""
    total: dict[str, int] = {}
    for part in counters:
        for name, value in part.items():
            total[name] = total.get(name, 0) + value
    return total


def box_key(interaction_id: str, box: str) -> str:
    """A store key for one box of an interaction: ``id`` or ``id/box``."""
    return f"{interaction_id}/{box}" if box else interaction_id


def share(count: int, total: int) -> float:
    """``count / total`` rounded to 4 decimals (0.0 when total is 0)."""
    return round(count / total, 4) if total > 0 else 0.0


# --- lifecycle: draft -> open -> closed -> revealed ----------------------------------

Phase = Literal["draft", "open", "closed", "revealed"]
PHASES: tuple[Phase, ...] = ("draft", "open", "closed", "revealed")
Action = Literal["open", "close", "reveal"]
ACTIONS: tuple[Action, ...] = ("open", "close", "reveal")
_TARGET: dict[str, Phase] = {"open": "open", "close": "closed", "reveal": "revealed"}
Time = Annotated[float, msgspec.Meta(ge=0.0)]


class Status(Record, frozen=True):
    """Where a poll, Q&A board or check-in is in its lifecycle; times in seconds.

    An open status with ``closes_at`` (a countdown) is closed from that time on:
    :meth:`at` gives the status as of ``now`` and every check goes through it.
    """

    phase: Phase = "draft"
    opened_at: Time | None = None
    closes_at: Time | None = None
    closed_at: Time | None = None
    revealed_at: Time | None = None

    def at(self, now: float) -> Status:
        if self.phase == "open" and self.closes_at is not None and now >= self.closes_at:
            return msgspec.structs.replace(self, phase="closed", closed_at=self.closes_at)
        return self

    def is_open(self, now: float) -> bool:
        return self.at(now).phase == "open"


def transition(
    status: Status, action: str, now: float, *, duration_s: float | None = None
) -> Status:
    """Apply a host action to a lifecycle: ``open`` (draft -> open, starting the countdown
    of ``duration_s`` if given), ``close`` (open -> closed), ``reveal`` (closed -> revealed).

    An action whose target is the current phase returns the status unchanged, so a
    retried host command or a ``close`` after the countdown ran out succeed. Other
    moves raise ``illegal_transition``. The result reflects an auto-close at ``now``.
    """
    current = status.at(now)
    target = _TARGET.get(action)
    if target is None:
        raise InteractionError(
            "invalid_field", f"action must be one of {', '.join(ACTIONS)}, got {action!r}"
        )
    if current.phase == target:
        return current
    if current.phase == "draft" and target == "open":
        closes_at = now + duration_s if duration_s is not None else None
        return Status("open", opened_at=now, closes_at=closes_at)
    if current.phase == "open" and target == "closed":
        return msgspec.structs.replace(current, phase="closed", closed_at=now)
    if current.phase == "closed" and target == "revealed":
        return msgspec.structs.replace(current, phase="revealed", revealed_at=now)
    raise InteractionError(
        "illegal_transition",
        f"cannot {action} when {current.phase}; the lifecycle is draft -> open -> closed -> "
        "revealed",
        phase=current.phase,
    )


def reopenable(status: Status, action: str, now: float) -> Status:
    """``open`` / ``close`` for what every room has (check-in, wall): either, any number
    of times; repeating one changes nothing."""
    if action == "open":
        return status if status.phase == "open" else Status("open", opened_at=now)
    if action == "close":
        return transition(status, "close", now) if status.phase == "open" else status
    raise InteractionError("invalid_field", f"action must be open or close, got {action!r:.40}")


# --- checks of commands and labels (the style of protocol.messages) --------------------


def as_map(value: Any, what: str, code: str = "invalid_field") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InteractionError(code, f"{what} must be a map, got {type(value).__name__}")
    return value


def check_id(value: Any, what: str, code: str = "invalid_field") -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise InteractionError(code, f"{what} must match {ID_PATTERN}, got {value!r:.80}")
    return value


def check_label(value: Any, what: str, max_chars: int) -> str:
    """A host-written label: a string, cleaned of control characters, 1..max_chars long."""
    if not isinstance(value, str):
        raise InteractionError("invalid_field", f"{what} must be a string, got {value!r:.80}")
    text = clean_text(value)
    if not text or len(text) > max_chars:
        raise InteractionError("invalid_field", f"{what} must have 1..{max_chars} characters")
    return text


def check_text(value: Any, what: str, max_chars: int, code: str = "invalid_field") -> str:
    """A viewer's text: cleaned; ``empty_text`` / ``text_too_long`` when out of bounds."""
    if not isinstance(value, str):
        raise InteractionError(code, f"{what} must be a string, got {type(value).__name__}")
    text = clean_text(value)
    if not text:
        raise InteractionError("empty_text", f"{what} is empty")
    if len(text) > max_chars:
        raise InteractionError(
            "text_too_long",
            f"{what} has {len(text)} characters; the limit is {max_chars}",
            limit=max_chars,
        )
    return text


def check_int(value: Any, what: str, lo: int, hi: int, code: str = "invalid_field") -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise InteractionError(code, f"{what} must be an integer {lo}..{hi}, got {value!r:.80}")
    return value


def check_name(name: str | None, max_chars: int) -> str | None:
    """A display name to keep beside a record: cleaned and cut, or None."""
    return (clean_text(name)[:max_chars] or None) if name is not None else None


Identified = TypeVar("Identified", bound="HasId")


class HasId(Protocol):
    """Anything with an ``id``: options, slots, questions."""

    @property
    def id(self) -> str: ...


def by_id(items: Iterable[Identified], item_id: Any) -> Identified | None:
    """The item of ``items`` whose id is ``item_id`` (None when none is)."""
    for item in items:
        if item.id == item_id:
            return item
    return None


def unique_ids(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise InteractionError("invalid_field", f"{what} ids must be unique; {item!r} repeats")
        seen.add(item)


class Option(Record, frozen=True, omit_defaults=True):
    """A choice of a poll or quiz question; ``codes``: what a danmaku may say to vote for
    it ("1", "红色"; polls that take danmaku)."""

    id: Id
    label: str
    codes: Annotated[tuple[Code, ...], msgspec.Meta(max_length=MAX_CODES)] = ()

    def __post_init__(self) -> None:
        clean_label(self, "label", MAX_LABEL_CHARS)


# --- danmaku codes (votes and picks by danmaku) ------------------------------------------


class ChatCodes:
    """Finds which option a danmaku names: each option's codes ("1", "A", "红色"), matched
    on the text filter's matching copy (server/moderation/text.py: full-width forms,
    case, spaces and punctuation such as "#" fold away).

    Codes are compared on the copy with repeats cut to two, so "11" and "1" stay apart;
    a danmaku that names no code that way is tried again with repeats cut to one, so
    "1111" still names "1" (when no option has "11"). ``hard`` codes (the host's) must
    name one option each (``invalid_field`` otherwise); ``soft`` ones (defaults such as
    an option's number or label) count only where no other option claims them.
    """

    def __init__(
        self, hard: Iterable[tuple[str, str]], soft: Iterable[tuple[str, str]] = ()
    ) -> None:
        self.exact: dict[str, str] = {}  # twice-copy -> target
        self.shown: dict[str, list[str]] = {}  # target -> its codes as written
        self._once: dict[str, set[str]] = {}  # once-copy -> targets
        for target, code in hard:
            key = _code_key(code, target)
            owner = self.exact.setdefault(key, target)
            if owner != target:
                raise InteractionError(
                    "invalid_field",
                    f"danmaku code {code!r:.40} names both {owner} and {target}; "
                    "each code may name one option",
                )
            self._show(target, code)
        claims: dict[str, set[str]] = {}
        written: dict[tuple[str, str], str] = {}
        for target, code in soft:
            key = fast_copies(code)[1]
            if key and key not in self.exact:
                claims.setdefault(key, set()).add(target)
                written.setdefault((key, target), code)
        for key, targets in claims.items():
            if len(targets) == 1:
                (target,) = targets
                self.exact[key] = target
                self._show(target, written[(key, target)])
        # repeats cut to one: only where that names one option
        self.loose = {k: next(iter(t)) for k, t in self._once.items() if len(t) == 1}

    def _show(self, target: str, code: str) -> None:
        codes = self.shown.setdefault(target, [])
        if code not in codes:
            codes.append(code)
            self._once.setdefault(fast_copies(code)[0], set()).add(target)

    def match(self, text: str) -> str | None:
        """The target ``text`` names as a whole, or None."""
        if len(text) > MAX_CODE_CHARS * 2:
            return None
        once, twice = fast_copies(text)
        return self.exact.get(twice) or self.loose.get(once)


def _code_key(code: str, target: str) -> str:
    key = fast_copies(code)[1]
    if not key or len(code) > MAX_CODE_CHARS:
        raise InteractionError(
            "invalid_field",
            f"danmaku code {code!r:.40} of {target} must hold a letter, digit or character "
            f"and at most {MAX_CODE_CHARS} characters",
        )
    return key


def letter(index: int) -> str | None:
    """The letter code of the option at ``index`` (A, B, ...; None past Z)."""
    return chr(ord("A") + index) if index < 26 else None
