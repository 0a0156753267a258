"""Reactions (点赞): likes, hearts and emoji bursts, counted per room at any rate.

Every room has one reaction board (id ``reactions``), open from the start; a host may
close it and open it again. A viewer taps: ``{"op": "react", "emoji": "❤️", "count":
3}`` (a page sends the taps of a moment together, ``count`` 1..``MAX_BURST``). Taps are
*buffered* (:class:`~server.interactions.kind.Op`): no store write per tap. The room
service adds them up, sends one merged ``reaction`` event per tick (``counts``: emoji
-> taps in that tick; the overlay floats that many hearts), and commits the totals
once a second, exactly once, as counters ``e:<emoji>`` of the board's box. The view
carries the totals.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any

from msgspec import Meta

from server.interactions.base import (
    MAX_LABEL_CHARS,
    Id,
    InteractionError,
    Record,
    Status,
    as_map,
    check_int,
    clean_label,
    dump,
    reopenable,
)
from server.interactions.kind import (
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

REACTIONS_ID = "reactions"
DEFAULT_EMOJI = ("❤️", "👍", "🎉", "😂", "🔥")
MAX_EMOJI = 12
MAX_EMOJI_CHARS = 8  # one emoji may be several code points (flags, skin tones, ZWJ)
MAX_BURST = 50  # taps one command may carry


class ReactionSpec(Record, frozen=True):
    """The room's reaction board: a title and the emoji viewers may tap."""

    id: Id
    title: str
    emoji: Annotated[tuple[str, ...], Meta(min_length=1, max_length=MAX_EMOJI)] = DEFAULT_EMOJI

    def __post_init__(self) -> None:
        clean_label(self, "title", MAX_LABEL_CHARS)
        for glyph in self.emoji:
            bad = any(unicodedata.category(ch) in ("Cc", "Zs", "Zl", "Zp") for ch in glyph)
            if not 1 <= len(glyph) <= MAX_EMOJI_CHARS or bad:
                raise InteractionError(
                    "invalid_field", f"emoji must be 1..{MAX_EMOJI_CHARS} visible characters"
                )
        if len(set(self.emoji)) != len(self.emoji):
            raise InteractionError("invalid_field", "emoji must not repeat")


def totals(spec: ReactionSpec, counters: Mapping[str, int]) -> dict[str, int]:
    """Taps per emoji of the spec (in its order), from the board's counters."""
    return {glyph: counters.get(f"e:{glyph}", 0) for glyph in spec.emoji}


def tap(spec: ReactionSpec, status: Status, raw: Any, now: float) -> tuple[str, int]:
    """Validate ``{"emoji", "count"?}``; the emoji and how many taps. Raises ``not_open``,
    ``unknown_option`` (an emoji the board does not offer), ``invalid_field``."""
    if not status.is_open(now):
        raise InteractionError("not_open", f"reactions are {status.at(now).phase}")
    command = as_map(raw, "a reaction")
    glyph = command.get("emoji")
    if not isinstance(glyph, str) or glyph not in spec.emoji:
        raise InteractionError(
            "unknown_option", f"react with one of {' '.join(spec.emoji)}, got {glyph!r:.20}"
        )
    return glyph, check_int(command.get("count", 1), "count", 1, MAX_BURST)


class Reactions(Kind[ReactionSpec, Status]):
    """The room's reactions: taps buffered and merged, totals committed once a second."""

    name = "reactions"
    spec_type = ReactionSpec
    state_type = Status
    ops = (Op("react", targets="room", counts_as="reactions", buffered=True),)
    actions = ("open", "close")
    view_ts = "spec: ReactionSpec; status: Status; counts: Record<string, number>; total: number;"
    builtin = REACTIONS_ID

    def default_spec(self) -> ReactionSpec:
        return ReactionSpec(REACTIONS_ID, "Reactions")

    def first_state(self, spec: ReactionSpec, now: float, entropy: bytes) -> Status:
        return Status("open", opened_at=0.0)

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        counts = totals(d.spec, ctx.data.counters(d.id))
        return {
            "spec": dump(d.spec),
            "status": dump(d.state.at(ctx.now)),
            "counts": counts,
            "total": sum(counts.values()),
        }

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        glyph, count = tap(c.d.spec, c.d.state, c.fields, ctx.now)
        return Write(c.d.id, c.who.id, c.key, None, {f"e:{glyph}": count})

    def burst_event(self, d: Definition, deltas: Mapping[str, int]) -> dict[str, Any]:
        counts = {name[2:]: n for name, n in deltas.items() if name.startswith("e:")}
        return {"type": "reaction", "interaction": d.id, "counts": counts}

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        return Change(state=reopenable(d.state, action, ctx.now))

    def export_needs(self, d: Definition, ctx: Context) -> Needs:
        return Needs.of(counters=[d.id])

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        counts = totals(d.spec, ctx.data.counters(d.id))
        return [{"emoji": glyph, "count": n} for glyph, n in counts.items()]


KIND = Reactions()
