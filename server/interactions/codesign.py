"""Co-design: viewers pick one option per slot of a design; the leading picks win.

A design (e.g. a burger: bun, patty, sauce) has slots, each with options that may
carry an image and a stock. Each slot is a box (``box == slot id``): a viewer holds
one pick per slot and may change it (:func:`pick`) or withdraw it (:func:`unpick`)
while the design is open and the slot unlocked. The counter of option ``o`` of slot
``s`` is ``"s:o"``.

Stock: an option with ``stock`` can be held by at most that many viewers at a time.
:func:`caps` gives the store the caps; a pick that would pass one is refused
(``out_of_stock``), and moving a pick away frees a unit.

Lifecycle (:func:`transition`): draft -> ``open`` -> ``lock`` slots one by one (the
last lock closes the design) or ``lock_all`` -> closed -> ``reveal``.

Leading option and tie-break: the option with the most picks leads its slot; on a
tie, the option listed earlier in the slot wins, so the host sets the tie order (and
the pick of a slot nobody picked) by listing options in order of preference. This is
computable from the counters alone, so every node agrees.

Rounds: :func:`next_round` builds the spec of the next round from the previous round's
spec and counters and a list of :class:`SlotRule`: a slot may offer the ``top`` k
options of a previous slot (a runoff), or options chosen by the previous winner of a
slot (``by_pick``: red colour -> red scarves), or fixed options.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from server.interactions.base import (
    MAX_LABEL_CHARS,
    Contribution,
    InteractionError,
    as_map,
    check_id,
    check_int,
    check_label,
    check_list,
    opt_number,
    share,
    unique_ids,
)

MAX_SLOTS = 20
MAX_SLOT_OPTIONS = 30
MAX_STOCK = 10_000_000
MAX_ROUNDS = 100
IMAGE_URL_RE = re.compile(r"^(https?://|/)[^\s\"'<>\\]{1,500}$")
DESIGN_ACTIONS = ("open", "lock", "lock_all", "reveal")

DesignPhase = Literal["draft", "open", "closed", "revealed"]
DESIGN_PHASES: tuple[DesignPhase, ...] = ("draft", "open", "closed", "revealed")


@dataclass(frozen=True, slots=True)
class DesignOption:
    id: str
    label: str
    image_url: str | None = None
    stock: int | None = None

    def __post_init__(self) -> None:
        check_id(self.id, "option id")
        check_label(self.label, "option label", MAX_LABEL_CHARS)
        if self.image_url is not None and not IMAGE_URL_RE.match(self.image_url):
            raise InteractionError(
                "invalid_field", "image_url must be an http(s) URL or a path starting with /"
            )
        if self.stock is not None:
            check_int(self.stock, "stock", 0, MAX_STOCK)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "image_url": self.image_url,
            "stock": self.stock,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> DesignOption:
        obj = as_map(obj, "an option")
        image_url = obj.get("image_url")
        if image_url is not None and not isinstance(image_url, str):
            raise InteractionError("invalid_field", "image_url must be a string")
        stock = obj.get("stock")
        return cls(
            id=check_id(obj.get("id"), "option id"),
            label=check_label(obj.get("label"), "option label", MAX_LABEL_CHARS),
            image_url=image_url,
            stock=None if stock is None else check_int(stock, "stock", 0, MAX_STOCK),
        )


def _parse_design_options(value: Any, lo: int) -> tuple[DesignOption, ...]:
    options = tuple(
        DesignOption.from_dict(o) for o in check_list(value, "options", lo, MAX_SLOT_OPTIONS)
    )
    unique_ids((o.id for o in options), "option")
    return options


@dataclass(frozen=True, slots=True)
class Slot:
    id: str
    label: str
    options: tuple[DesignOption, ...]

    def __post_init__(self) -> None:
        check_id(self.id, "slot id")
        check_label(self.label, "slot label", MAX_LABEL_CHARS)
        if not 1 <= len(self.options) <= MAX_SLOT_OPTIONS:
            raise InteractionError(
                "invalid_field", f"slot {self.id} needs 1..{MAX_SLOT_OPTIONS} options"
            )
        unique_ids((o.id for o in self.options), "option")

    def option(self, option_id: str) -> DesignOption | None:
        for o in self.options:
            if o.id == option_id:
                return o
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "options": [o.to_dict() for o in self.options],
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Slot:
        obj = as_map(obj, "a slot")
        return cls(
            id=check_id(obj.get("id"), "slot id"),
            label=check_label(obj.get("label"), "slot label", MAX_LABEL_CHARS),
            options=_parse_design_options(obj.get("options"), 1),
        )


@dataclass(frozen=True, slots=True)
class DesignSpec:
    """One round of a co-design session; ``previous`` is the id of the round before."""

    id: str
    title: str
    slots: tuple[Slot, ...]
    round: int = 1
    previous: str | None = None

    def __post_init__(self) -> None:
        check_id(self.id, "design id")
        check_label(self.title, "title", MAX_LABEL_CHARS)
        if not 1 <= len(self.slots) <= MAX_SLOTS:
            raise InteractionError("invalid_field", f"a design needs 1..{MAX_SLOTS} slots")
        unique_ids((s.id for s in self.slots), "slot")
        check_int(self.round, "round", 1, MAX_ROUNDS)
        if self.previous is not None:
            check_id(self.previous, "previous")

    def slot(self, slot_id: str) -> Slot | None:
        for s in self.slots:
            if s.id == slot_id:
                return s
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "slots": [s.to_dict() for s in self.slots],
            "round": self.round,
            "previous": self.previous,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> DesignSpec:
        obj = as_map(obj, "a design")
        previous = obj.get("previous")
        return cls(
            id=check_id(obj.get("id"), "design id"),
            title=check_label(obj.get("title"), "title", MAX_LABEL_CHARS),
            slots=tuple(
                Slot.from_dict(s) for s in check_list(obj.get("slots"), "slots", 1, MAX_SLOTS)
            ),
            round=check_int(obj.get("round", 1), "round", 1, MAX_ROUNDS),
            previous=None if previous is None else check_id(previous, "previous"),
        )


@dataclass(frozen=True, slots=True)
class DesignState:
    phase: DesignPhase = "draft"
    locked: tuple[str, ...] = ()
    opened_at: float | None = None
    closed_at: float | None = None
    revealed_at: float | None = None

    def accepts(self, slot_id: str) -> bool:
        return self.phase == "open" and slot_id not in self.locked

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "locked": list(self.locked),
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "revealed_at": self.revealed_at,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> DesignState:
        obj = as_map(obj, "a design state")
        phase = obj.get("phase", "draft")
        if phase not in DESIGN_PHASES:
            raise InteractionError("invalid_field", f"phase must be one of {DESIGN_PHASES}")
        return cls(
            phase=phase,
            locked=tuple(
                check_id(s, "locked")
                for s in check_list(obj.get("locked", []), "locked", 0, MAX_SLOTS)
            ),
            opened_at=opt_number(obj, "opened_at", lo=0.0, hi=math.inf),
            closed_at=opt_number(obj, "closed_at", lo=0.0, hi=math.inf),
            revealed_at=opt_number(obj, "revealed_at", lo=0.0, hi=math.inf),
        )


def transition(
    spec: DesignSpec, state: DesignState, action: str, now: float, slot_id: str | None = None
) -> DesignState:
    """A host operation: ``open``, ``lock`` (``slot_id``), ``lock_all``, ``reveal``.

    Locking the last open slot closes the design. Repeating an operation whose effect
    is already there changes nothing; others out of order raise ``illegal_transition``
    (e.g. lock before open, reveal before every slot is locked).
    """
    if action not in DESIGN_ACTIONS:
        raise InteractionError(
            "invalid_field",
            f"action must be one of {', '.join(DESIGN_ACTIONS)}, got {action!r:.40}",
        )
    if action == "open":
        if state.phase == "open":
            return state
        if state.phase != "draft":
            raise InteractionError("illegal_transition", f"design {spec.id} is {state.phase}")
        return replace(state, phase="open", opened_at=now)
    if action == "reveal":
        if state.phase == "revealed":
            return state
        if state.phase != "closed":
            raise InteractionError(
                "illegal_transition", f"design {spec.id} is {state.phase}; lock every slot first"
            )
        return replace(state, phase="revealed", revealed_at=now)
    if action == "lock":
        if slot_id is None or spec.slot(slot_id) is None:
            raise InteractionError(
                "unknown_target", f"design {spec.id} has no slot {slot_id!r:.40}"
            )
    if state.phase in ("closed", "revealed"):
        return state  # every slot is locked already
    if state.phase == "draft":
        raise InteractionError("illegal_transition", f"design {spec.id} is not open yet")
    if action == "lock_all":
        locked = tuple(s.id for s in spec.slots)
    else:
        assert slot_id is not None
        if slot_id in state.locked:
            return state
        locked = tuple(s.id for s in spec.slots if s.id in state.locked or s.id == slot_id)
    if len(locked) == len(spec.slots):
        return replace(state, phase="closed", locked=locked, closed_at=now)
    return replace(state, locked=locked)


def _slot_of(spec: DesignSpec, state: DesignState, raw: Any) -> tuple[Mapping[str, Any], Slot]:
    command = as_map(raw, "a pick", "invalid_vote")
    slot_id = command.get("slot")
    if not isinstance(slot_id, str):
        raise InteractionError("invalid_vote", "a pick needs a 'slot' id")
    slot = spec.slot(slot_id)
    if slot is None:
        raise InteractionError("unknown_target", f"design {spec.id} has no slot {slot_id!r:.40}")
    if not state.accepts(slot_id):
        why = "locked" if slot_id in state.locked else state.phase
        raise InteractionError("not_open", f"slot {slot_id} is {why}")
    return command, slot


def pick(spec: DesignSpec, state: DesignState, raw: Any, now: float) -> Contribution:
    """Validate ``{"slot": id, "option": id}``; the contribution goes to the slot's box.

    Apply it with ``caps=caps(spec)``. Raises ``invalid_vote``, ``unknown_target``,
    ``not_open``, ``unknown_option``; the store may refuse it as ``out_of_stock``.
    """
    command, slot = _slot_of(spec, state, raw)
    option_id = command.get("option")
    if not isinstance(option_id, str):
        raise InteractionError("invalid_vote", "a pick needs an 'option' id")
    if slot.option(option_id) is None:
        raise InteractionError("unknown_option", f"slot {slot.id} has no option {option_id!r:.40}")
    return Contribution(
        {"slot": slot.id, "option": option_id, "at": now},
        {f"{slot.id}:{option_id}": 1},
        box=slot.id,
    )


def unpick(spec: DesignSpec, state: DesignState, raw: Any, now: float) -> str:
    """Validate ``{"slot": id}`` for withdrawing a pick; return the box to remove from."""
    _, slot = _slot_of(spec, state, raw)
    return slot.id


def caps(spec: DesignSpec) -> dict[str, int]:
    """Counter caps from the options' stock (pass to every pick's application)."""
    return {f"{s.id}:{o.id}": o.stock for s in spec.slots for o in s.options if o.stock is not None}


def standings(slot: Slot, counters: Mapping[str, int]) -> list[tuple[DesignOption, int]]:
    """The slot's options with their picks, leader first (ties: earlier in the slot)."""
    counted = [(o, counters.get(f"{slot.id}:{o.id}", 0)) for o in slot.options]
    return sorted(counted, key=lambda oc: -oc[1])  # sorted() is stable: slot order on ties


def results(spec: DesignSpec, state: DesignState, counters: Mapping[str, int]) -> dict[str, Any]:
    """Live shares per slot (``counters``: the union of the slot boxes' counters).

    Per option: ``count``, ``share`` of the slot's picks, ``stock`` and ``left``
    (None without stock). Per slot: ``picks``, ``locked`` and the ``leader``.
    """
    slots = []
    for slot in spec.slots:
        total = sum(counters.get(f"{slot.id}:{o.id}", 0) for o in slot.options)
        options = []
        for o in slot.options:
            count = counters.get(f"{slot.id}:{o.id}", 0)
            options.append(
                {
                    **o.to_dict(),
                    "count": count,
                    "share": share(count, total),
                    "left": None if o.stock is None else max(o.stock - count, 0),
                }
            )
        slots.append(
            {
                "id": slot.id,
                "label": slot.label,
                "picks": total,
                "locked": slot.id in state.locked,
                "leader": standings(slot, counters)[0][0].id,
                "options": options,
            }
        )
    return {"design": spec.id, "round": spec.round, "phase": state.phase, "slots": slots}


def final_design(spec: DesignSpec, counters: Mapping[str, int]) -> dict[str, Any]:
    """The leading option of every slot (tie-break in the module docstring).

    Emit it when the design is revealed; for a slot that was locked, the same rule on
    the same counters gives that slot's result early.
    """
    slots = []
    for slot in spec.slots:
        ranked = standings(slot, counters)
        winner, count = ranked[0]
        total = sum(c for _, c in ranked)
        slots.append(
            {
                "slot": slot.id,
                "label": slot.label,
                "option": winner.id,
                "option_label": winner.label,
                "image_url": winner.image_url,
                "count": count,
                "share": share(count, total),
            }
        )
    return {"design": spec.id, "round": spec.round, "title": spec.title, "slots": slots}


# --- rounds ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotRule:
    """How one slot of the next round gets its options from the previous round.

    With ``after`` (a slot of the previous round): ``top`` k carries that slot's k
    leading options (with their stock); else ``by_pick`` maps the slot's winning
    option id to the options to offer. ``options`` are used when neither applies
    (no ``after``, or the winner is not in ``by_pick``).
    """

    id: str
    label: str
    after: str | None = None
    top: int | None = None
    by_pick: Mapping[str, tuple[DesignOption, ...]] = field(default_factory=dict)
    options: tuple[DesignOption, ...] = ()

    def __post_init__(self) -> None:
        check_id(self.id, "slot id")
        check_label(self.label, "slot label", MAX_LABEL_CHARS)
        if self.after is not None:
            check_id(self.after, "after")
        if self.top is not None:
            check_int(self.top, "top", 1, MAX_SLOT_OPTIONS)
            if self.after is None:
                raise InteractionError("invalid_field", "top needs 'after', the slot to take from")

    @classmethod
    def from_dict(cls, obj: Any) -> SlotRule:
        obj = as_map(obj, "a slot rule")
        after = obj.get("after")
        top = obj.get("top")
        by_pick = as_map(obj.get("by_pick", {}), "by_pick")
        options = obj.get("options")
        return cls(
            id=check_id(obj.get("id"), "slot id"),
            label=check_label(obj.get("label"), "slot label", MAX_LABEL_CHARS),
            after=None if after is None else check_id(after, "after"),
            top=None if top is None else check_int(top, "top", 1, MAX_SLOT_OPTIONS),
            by_pick={
                check_id(k, "by_pick key"): _parse_design_options(v, 1) for k, v in by_pick.items()
            },
            options=_parse_design_options(options, 1) if options is not None else (),
        )


def next_round(
    previous: DesignSpec,
    counters: Mapping[str, int],
    *,
    id: str,
    title: str,
    rules: Sequence[SlotRule],
) -> DesignSpec:
    """The spec of the round after ``previous``, given its final ``counters``.

    Raises ``invalid_field`` for a rule naming a slot the previous round lacks, or a
    slot that ends up with no options.
    """
    slots = []
    for rule in rules:
        options = rule.options
        if rule.after is not None:
            source = previous.slot(rule.after)
            if source is None:
                raise InteractionError(
                    "invalid_field", f"rule {rule.id}: round {previous.id} has no slot {rule.after}"
                )
            ranked = standings(source, counters)
            if rule.top is not None:
                options = tuple(o for o, _ in ranked[: rule.top])
            else:
                options = rule.by_pick.get(ranked[0][0].id, rule.options)
        if not options:
            raise InteractionError("invalid_field", f"rule {rule.id} gives the slot no options")
        slots.append(Slot(rule.id, rule.label, options))
    return DesignSpec(id, title, tuple(slots), round=previous.round + 1, previous=previous.id)
