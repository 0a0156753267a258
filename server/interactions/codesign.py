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

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from server.interactions.base import (
    MAX_CODES,
    MAX_LABEL_CHARS,
    ChatCodes,
    Code,
    Contribution,
    Id,
    InteractionError,
    Record,
    Time,
    as_map,
    box_key,
    by_id,
    clean_label,
    dump,
    share,
    unique_ids,
)
from server.interactions.kind import (
    Announcement,
    Audience,
    Change,
    Context,
    Definition,
    Kind,
    Needs,
    Op,
    Viewer,
    ViewerCommand,
    Write,
)

MAX_SLOTS = 20
MAX_SLOT_OPTIONS = 30
MAX_STOCK = 10_000_000
MAX_ROUNDS = 100
IMAGE_URL_RE = re.compile(r"^(https?://|/)[^\s\"'<>\\]{1,500}$")
DESIGN_ACTIONS = ("open", "lock", "lock_all", "reveal")

DesignPhase = Literal["draft", "open", "closed", "revealed"]
DESIGN_PHASES: tuple[DesignPhase, ...] = ("draft", "open", "closed", "revealed")


class DesignOption(Record, frozen=True):
    """An option of a slot: a label, maybe an image, maybe a stock, and what a danmaku
    may say to pick it (``codes``, besides its label)."""

    id: Id
    label: str
    image_url: str | None = None
    stock: Annotated[int, Meta(ge=0, le=MAX_STOCK)] | None = None
    codes: Annotated[tuple[Code, ...], Meta(max_length=MAX_CODES)] = ()

    def __post_init__(self) -> None:
        clean_label(self, "label", MAX_LABEL_CHARS)
        if self.image_url is not None and not IMAGE_URL_RE.match(self.image_url):
            raise InteractionError(
                "invalid_field", "image_url must be an http(s) URL or a path starting with /"
            )


def _options_ok(options: Sequence[DesignOption], owner: str) -> None:
    if not 1 <= len(options) <= MAX_SLOT_OPTIONS:
        raise InteractionError("invalid_field", f"{owner} needs 1..{MAX_SLOT_OPTIONS} options")
    unique_ids((o.id for o in options), "option")


class Slot(Record, frozen=True):
    """A part of the design (bun, sauce) and the options viewers pick from."""

    id: Id
    label: str
    options: tuple[DesignOption, ...]

    def __post_init__(self) -> None:
        clean_label(self, "label", MAX_LABEL_CHARS)
        _options_ok(self.options, f"slot {self.id}")

    def option(self, option_id: str) -> DesignOption | None:
        return by_id(self.options, option_id)


class DesignSpec(Record, frozen=True):
    """One round of a co-design session; ``previous`` is the id of the round before.
    ``danmaku``: a danmaku naming an option (its ``codes``, its label or a word of it)
    is its sender's pick in that option's slot."""

    id: Id
    title: str
    slots: tuple[Slot, ...]
    round: Annotated[int, Meta(ge=1, le=MAX_ROUNDS)] = 1
    previous: Id | None = None
    danmaku: bool = False

    def __post_init__(self) -> None:
        clean_label(self, "title", MAX_LABEL_CHARS)
        if not 1 <= len(self.slots) <= MAX_SLOTS:
            raise InteractionError("invalid_field", f"a design needs 1..{MAX_SLOTS} slots")
        unique_ids((s.id for s in self.slots), "slot")
        if self.danmaku or any(o.codes for s in self.slots for o in s.options):
            chat_codes(self)  # a code naming two options: invalid_field

    def slot(self, slot_id: str) -> Slot | None:
        return by_id(self.slots, slot_id)


class DesignState(Record, frozen=True):
    """Where a co-design round is: its phase, the locked slots, and when."""

    phase: DesignPhase = "draft"
    locked: tuple[Id, ...] = ()
    opened_at: Time | None = None
    closed_at: Time | None = None
    revealed_at: Time | None = None

    def accepts(self, slot_id: str) -> bool:
        return self.phase == "open" and slot_id not in self.locked


@functools.lru_cache(maxsize=1024)
def chat_codes(spec: DesignSpec) -> ChatCodes:
    """Which option of which slot a danmaku names (targets ``"slot:option"``): the
    options' ``codes`` across every slot (each must name one option), and where no
    other option claims them their labels and the words of their labels ("红色 Red")."""
    hard = [(f"{s.id}:{o.id}", c) for s in spec.slots for o in s.options for c in o.codes]
    soft = []
    for s in spec.slots:
        for o in s.options:
            target = f"{s.id}:{o.id}"
            soft.append((target, o.label))
            soft.extend((target, word) for word in o.label.split() if word != o.label)
    return ChatCodes(hard, soft)


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
        return msgspec.structs.replace(state, phase="open", opened_at=now)
    if action == "reveal":
        if state.phase == "revealed":
            return state
        if state.phase != "closed":
            raise InteractionError(
                "illegal_transition", f"design {spec.id} is {state.phase}; lock every slot first"
            )
        return msgspec.structs.replace(state, phase="revealed", revealed_at=now)
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
        return msgspec.structs.replace(state, phase="closed", locked=locked, closed_at=now)
    return msgspec.structs.replace(state, locked=locked)


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
                    **{k: v for k, v in dump(o).items() if k != "codes"},
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


class SlotRule(Record, frozen=True):
    """How one slot of the next round gets its options from the previous round.

    With ``after`` (a slot of the previous round): ``top`` k carries that slot's k
    leading options (with their stock); else ``by_pick`` maps the slot's winning
    option id to the options to offer. ``options`` are used when neither applies
    (no ``after``, or the winner is not in ``by_pick``).
    """

    id: Id
    label: str
    after: Id | None = None
    top: Annotated[int, Meta(ge=1, le=MAX_SLOT_OPTIONS)] | None = None
    by_pick: dict[Id, tuple[DesignOption, ...]] = msgspec.field(default_factory=dict)
    options: tuple[DesignOption, ...] = ()

    def __post_init__(self) -> None:
        clean_label(self, "label", MAX_LABEL_CHARS)
        if self.top is not None and self.after is None:
            raise InteractionError("invalid_field", "top needs 'after', the slot to take from")
        for choice in self.by_pick.values():
            _options_ok(choice, f"by_pick of {self.id}")


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


# --- the kind -----------------------------------------------------------------------------


class CoDesign(Kind[DesignSpec, DesignState]):
    """Co-design rounds: one pick per viewer per slot, stock as caps, a final design."""

    name = "codesign"
    spec_type = DesignSpec
    state_type = DesignState
    ops = (Op("pick"), Op("unpick"))
    actions = DESIGN_ACTIONS
    view_ts = """spec: DesignSpec;
  state: DesignState;
  results: DesignResults;
  /** once revealed */
  final?: DesignFinal;"""
    types_ts = """
export interface DesignCount { count: number; share: number; left: number | null }
export interface DesignResults {
  design: string;
  round: number;
  phase: DesignState["phase"];
  slots: {
    id: string;
    label: string;
    picks: number;
    locked: boolean;
    leader: string;
    options: (Omit<DesignOption, "codes"> & DesignCount)[];
  }[];
}
export interface DesignFinal {
  design: string;
  round: number;
  title: string;
  slots: {
    slot: string;
    label: string;
    option: string;
    option_label: string;
    image_url: string | null;
    count: number;
    share: number;
  }[];
}
"""
    danmaku_votes = True
    example: ClassVar[Mapping[str, Any]] = {
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
    }

    def boxes(self, d: Definition) -> list[str]:
        return [box_key(d.id, slot.id) for slot in d.spec.slots]

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        spec, state = d.spec, d.state
        counters = ctx.data.merged(self.boxes(d))
        out = {"spec": dump(spec), "state": dump(state), "results": results(spec, state, counters)}
        if state.phase == "revealed":
            out["final"] = final_design(spec, counters)
        if spec.danmaku:  # what to type, for the overlay: "slot:option" -> codes
            out["danmaku"] = chat_codes(spec).shown
        return out

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        d = c.d
        if c.op == "unpick":
            box = unpick(d.spec, d.state, c.fields, ctx.now)
            return Write(box_key(d.id, box), c.who.id, c.key, None)
        made = pick(d.spec, d.state, c.fields, ctx.now)
        return c.write(box_key(d.id, made.box), made, caps=caps(d.spec))

    def listens(self, d: Definition, now: float) -> bool:
        return bool(d.spec.danmaku and d.state.phase == "open")

    def on_danmaku(self, d: Definition, who: Viewer, text: str, now: float) -> Write | None:
        """A danmaku naming an option is its sender's pick in that option's slot, as a
        ``pick`` from the viewer page would be (replacing the previous one; stock caps)."""
        target = chat_codes(d.spec).match(text)
        if target is None:
            return None
        slot, _, option = target.partition(":")
        try:
            made = pick(d.spec, d.state, {"slot": slot, "option": option}, now)
        except InteractionError:  # the slot is locked
            return None
        record = {**made.record, "via": "danmaku"}
        key = f"danmaku:{option}@{now!r}"  # per danmaku: the next one replaces this pick
        return Write(box_key(d.id, slot), who.id, key, record, made.deltas, caps(d.spec))

    def action_needs(
        self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context
    ) -> Needs:
        # Revealing announces the final design, which the counters decide.
        return Needs.of(counters=self.boxes(d)) if action == "reveal" else Needs()

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        state = transition(d.spec, d.state, action, ctx.now, fields.get("slot"))
        if state.phase != "revealed" or d.state.phase == "revealed":
            return Change(state=state)
        final = final_design(d.spec, ctx.data.merged(self.boxes(d)))
        event = {"type": "design_revealed", "interaction": d.id, "final": final}
        return Change(state=state, announce=(Announcement(event),))

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        """One row per viewer and slot: the option picked."""
        rows = []
        for slot in d.spec.slots:
            for viewer, record in ctx.data.records(box_key(d.id, slot.id)).items():
                rows.append(
                    {
                        "viewer": viewer,
                        "slot": slot.id,
                        "option": record.get("option"),
                        "at": record.get("at"),
                    }
                )
        return rows


KIND = CoDesign()
