"""Live polls: single, multiple, ranked, rating and open-text, over counters.

Lifecycle: :class:`~server.interactions.base.Status` (draft -> open -> closed ->
revealed, with an optional countdown that closes the poll by itself); :func:`transition`
moves it. :func:`vote` turns a viewer's ballot into a
:class:`~server.interactions.base.Contribution` for the poll's box; a new vote of the
same viewer replaces the previous one, so a viewer may change it while the poll is
open and totals stay exact.

A word cloud (``text``) takes up to ``max_answers`` answers per viewer (default 3), each
kept: a word that every viewer sent never vanishes behind a viewer's later answer. The
first answer is the viewer's ballot in the poll's box (it counts the voter, ``n``, and
makes them an entrant of a draw among the poll's voters); the others go to the side box
``<id>/more``, held as ``<viewer>#1``, ``<viewer>#2``... (:func:`answer_slots`), each
taken once. A repeated answer is the one already sent, not a new one; one past the last
is refused (``already_done``). With ``max_answers: 1`` the answer is a ballot like any
other, replaced by the next.

Ballots (``raw``) and the counters they add (``n`` counts voters in every kind):

========  ==============================  ============================================
kind      ballot                          deltas
========  ==============================  ============================================
single    ``{"option": id}``              ``o:<id>`` 1
multiple  ``{"options": [id, ...]}``      ``o:<id>`` 1 per pick (min_picks..max_picks)
ranked    ``{"ranking": [id, ...]}``      ``b:<id>`` Borda points, ``f:<first>`` 1
rating    ``{"rating": k}``               ``r:<k>`` 1, ``sum`` k
text      ``{"text": "..."}``             ``t:<term>`` 1 per distinct term
========  ==============================  ============================================

Borda variant: with ``m`` options in the poll, the option ranked at position ``i``
(0-based) gets ``m - 1 - i`` points; options a ballot leaves unranked get 0. A ranked
ballot ranks ``min_picks..max_picks`` distinct options (default: 1..m).

Instant-runoff (from the records, :func:`instant_runoff`): each round counts every
ballot for its highest-ranked continuing option; a ballot with none left is exhausted.
An option with more than half of the round's non-exhausted ballots wins, as does the
last continuing option. Otherwise the option with the fewest votes is eliminated; a
tie for fewest goes to the one with the lower Borda total, then to the one listed
later in the poll.

Open text is cut into terms for a word cloud by :mod:`server.text_words` (jieba, so
Chinese counts words (番茄酱), not characters; stopwords and punctuation dropped; at
most 20 distinct terms per answer, each at most 32 characters), which the cockpit's top
words share.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta

from server import text_words
from server.interactions.base import (
    ChatCodes,
    Contribution,
    Id,
    InteractionError,
    Option,
    Record,
    Status,
    as_map,
    box_key,
    check_int,
    check_text,
    clean_label,
    dump,
    letter,
    share,
    unique_ids,
)
from server.interactions.base import transition as lifecycle_transition
from server.interactions.kind import (
    NOTHING,
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

PollKind = Literal["single", "multiple", "ranked", "rating", "text"]
POLL_KINDS: tuple[PollKind, ...] = ("single", "multiple", "ranked", "rating", "text")
CHOICE_KINDS: tuple[PollKind, ...] = ("single", "multiple", "ranked")
RATING_SCALES = (5, 10)
MAX_OPTIONS = 50
MAX_QUESTION_CHARS = 200
MAX_DURATION_S = 24 * 3600.0
DEFAULT_TEXT_CHARS = 200
DEFAULT_ANSWERS = 3  # a word cloud's answers per viewer
MAX_ANSWERS = 10
MORE = "more"  # a word cloud's box for each viewer's answers after the first
MAX_TEXT_CHARS = 1000
MAX_TERMS_PER_ANSWER = text_words.MAX_TERMS
MAX_TERM_CHARS = text_words.MAX_TERM_CHARS
TOP_TERMS = 50


class PollSpec(Record, frozen=True):
    """What the host defines, checked once when parsed (``invalid_field``).

    ``min_picks``/``max_picks`` apply to multiple and ranked polls (``max_picks``
    None: every option). ``scale`` applies to rating polls, ``max_text_chars`` and
    ``max_answers`` (per viewer) to text polls. ``duration_s`` is the countdown
    started when the poll opens. ``danmaku``: a danmaku that names an option (its
    ``codes``, else its number, letter or label) is its sender's vote (choice polls;
    multiple and ranked ones with ``min_picks`` 1, the danmaku's one option a ballot).
    """

    id: Id
    question: str
    kind: PollKind
    options: tuple[Option, ...] = ()
    min_picks: Annotated[int, Meta(ge=1, le=MAX_OPTIONS)] = 1
    max_picks: Annotated[int, Meta(ge=1, le=MAX_OPTIONS)] | None = None
    scale: Literal[5, 10] = 5
    hide_results_until_reveal: bool = False
    duration_s: Annotated[float, Meta(ge=1.0, le=MAX_DURATION_S)] | None = None
    max_text_chars: Annotated[int, Meta(ge=1, le=MAX_TEXT_CHARS)] = DEFAULT_TEXT_CHARS
    max_answers: Annotated[int, Meta(ge=1, le=MAX_ANSWERS)] = DEFAULT_ANSWERS
    danmaku: bool = False

    def __post_init__(self) -> None:
        clean_label(self, "question", MAX_QUESTION_CHARS)
        n = len(self.options)
        if self.kind in CHOICE_KINDS:
            if not 2 <= n <= MAX_OPTIONS:
                raise InteractionError(
                    "invalid_field", f"a {self.kind} poll needs 2..{MAX_OPTIONS} options, got {n}"
                )
            unique_ids((o.id for o in self.options), "option")
        elif n:
            raise InteractionError("invalid_field", f"a {self.kind} poll has no options")
        if self.kind in ("multiple", "ranked"):
            check_int(self.min_picks, "min_picks", 1, n)
            if self.max_picks is not None:
                check_int(self.max_picks, "max_picks", self.min_picks, n)
        if self.danmaku:
            if self.kind not in CHOICE_KINDS:
                raise InteractionError(
                    "invalid_field", f"danmaku votes need a choice poll, not a {self.kind} one"
                )
            if self.min_picks != 1:
                raise InteractionError(
                    "invalid_field", "danmaku votes pick one option: min_picks must be 1"
                )
        if self.danmaku or any(o.codes for o in self.options):
            chat_codes(self)  # duplicate or empty codes: invalid_field

    @property
    def picks(self) -> tuple[int, int]:
        """How many options a ballot picks or ranks: (min, max)."""
        if self.kind == "single":
            return (1, 1)
        if self.kind in ("multiple", "ranked"):
            n = len(self.options)
            return (self.min_picks, n if self.max_picks is None else self.max_picks)
        return (0, 0)


@functools.lru_cache(maxsize=1024)
def chat_codes(spec: PollSpec) -> ChatCodes:
    """Which option a danmaku names: each option's ``codes`` (each must name one
    option), and where no other option claims them its number ("1"), letter ("A") and
    label."""
    hard = [(o.id, code) for o in spec.options for code in o.codes]
    soft = []
    for i, o in enumerate(spec.options):
        soft.append((o.id, str(i + 1)))
        if (mark := letter(i)) is not None:
            soft.append((o.id, mark))
        soft.append((o.id, o.label))
    return ChatCodes(hard, soft)


def danmaku_ballot(spec: PollSpec, option: str) -> dict[str, Any]:
    """The ballot of a danmaku that names ``option``."""
    if spec.kind == "single":
        return {"option": option}
    return {"options" if spec.kind == "multiple" else "ranking": [option]}


def transition(spec: PollSpec, status: Status, action: str, now: float) -> Status:
    """``open`` / ``close`` / ``reveal`` the poll (see base.transition); the countdown
    of ``spec.duration_s`` starts when it opens."""
    return lifecycle_transition(status, action, now, duration_s=spec.duration_s)


# --- voting ---------------------------------------------------------------------------


def vote(spec: PollSpec, status: Status, raw: Any, now: float) -> Contribution:
    """Validate a viewer's ballot; return the contribution to apply.

    Raises :class:`InteractionError`: ``not_open``, ``invalid_vote``, ``unknown_option``,
    ``too_few_picks``, ``too_many_picks``, ``empty_text``, ``text_too_long``.
    """
    current = status.at(now)
    if current.phase != "open":
        raise InteractionError(
            "not_open", f"poll {spec.id} is {current.phase}; it takes votes only while open"
        )
    ballot = as_map(raw, "a ballot", "invalid_vote")
    if spec.kind == "single":
        option = _option(spec, ballot.get("option"))
        return Contribution({"option": option, "at": now}, {f"o:{option}": 1, "n": 1})
    if spec.kind == "multiple":
        picks = _picks(spec, ballot, "options")
        order = {o.id: i for i, o in enumerate(spec.options)}
        picks.sort(key=order.__getitem__)
        deltas = {f"o:{p}": 1 for p in picks}
        deltas["n"] = 1
        return Contribution({"options": picks, "at": now}, deltas)
    if spec.kind == "ranked":
        ranking = _picks(spec, ballot, "ranking")
        return Contribution({"ranking": ranking, "at": now}, ranked_deltas(spec, ranking))
    if spec.kind == "rating":
        rating = check_int(ballot.get("rating"), "rating", 1, spec.scale, code="invalid_vote")
        return Contribution(
            {"rating": rating, "at": now}, {f"r:{rating}": 1, "sum": rating, "n": 1}
        )
    text = check_text(ballot.get("text"), "the answer", spec.max_text_chars, code="invalid_vote")
    found = terms(text)
    deltas = {f"t:{t}": 1 for t in found}
    deltas["n"] = 1
    return Contribution({"text": text, "terms": found, "at": now}, deltas)


def answer_slots(spec: PollSpec, poll_id: str, viewer: str) -> list[tuple[str, str]]:
    """Where a word cloud keeps a viewer's answers, in the order they fill: (box, holder)."""
    more = box_key(poll_id, MORE)
    return [(poll_id, viewer), *((more, f"{viewer}#{k}") for k in range(1, spec.max_answers))]


def answer_write(
    spec: PollSpec, poll_id: str, viewer: str, made: Contribution, sent: Sequence[Any]
) -> tuple[str, str, Contribution]:
    """Where a word-cloud answer goes, given what the viewer's slots hold (``sent``, in
    :func:`answer_slots` order, None where empty): (box, holder, contribution).

    The answer already sent goes back to its slot unchanged (a repeat changes nothing);
    a new one takes the first empty slot, once; with every slot taken, ``already_done``.
    """
    slots = answer_slots(spec, poll_id, viewer)
    text = made.record["text"]
    for (box, holder), record in zip(slots, sent, strict=True):
        if record is not None and record.get("text") == text:
            return box, holder, Contribution(dict(record), dict(made.deltas))
    for k, ((box, holder), record) in enumerate(zip(slots, sent, strict=True)):
        if record is None:
            deltas = dict(made.deltas) if k == 0 else {**made.deltas, "n": 0}
            return box, holder, Contribution(made.record, deltas, once=True)
    raise InteractionError(
        "already_done",
        f"poll {spec.id} takes {spec.max_answers} answer(s) per viewer, all sent",
        limit=spec.max_answers,
    )


def ranked_deltas(spec: PollSpec, ranking: Sequence[str]) -> dict[str, int]:
    """Borda points (m-1 for first place, down by one per place), first preference, voter."""
    m = len(spec.options)
    deltas = {f"b:{oid}": m - 1 - i for i, oid in enumerate(ranking) if m - 1 - i}
    deltas[f"f:{ranking[0]}"] = 1
    deltas["n"] = 1
    return deltas


def _option(spec: PollSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise InteractionError("invalid_vote", f"option must be an option id, got {value!r:.40}")
    if value not in {o.id for o in spec.options}:
        raise InteractionError("unknown_option", f"poll {spec.id} has no option {value!r:.40}")
    return value


def _picks(spec: PollSpec, ballot: Mapping[str, Any], key: str) -> list[str]:
    value = ballot.get(key)
    if not isinstance(value, list):
        raise InteractionError("invalid_vote", f"a {spec.kind} ballot needs a list {key!r}")
    picks = [_option(spec, v) for v in value[: MAX_OPTIONS + 1]]
    if len(set(picks)) != len(picks):
        raise InteractionError("invalid_vote", f"{key} names an option twice")
    lo, hi = spec.picks
    if len(value) < lo:
        raise InteractionError(
            "too_few_picks", f"pick at least {lo} option(s), got {len(value)}", limit=lo
        )
    if len(value) > hi:
        raise InteractionError(
            "too_many_picks", f"pick at most {hi} option(s), got {len(value)}", limit=hi
        )
    return picks


# --- open text: terms ---------------------------------------------------------------


warm_up = text_words.warm_up  # jieba's dictionary, before serving
terms = text_words.terms  # the distinct word-cloud terms of a text, in order


# --- results --------------------------------------------------------------------------


def results(
    spec: PollSpec,
    counters: Mapping[str, int],
    records: Iterable[Mapping[str, Any]] | None = None,
    *,
    top_terms: int = TOP_TERMS,
) -> dict[str, Any]:
    """The poll's results as JSON-able data, computed from its counters.

    ``voters`` in every kind. single/multiple: ``options`` (spec order) with ``count``
    and ``share`` of voters (for multiple the shares add up to more than 1). ranked:
    ``options`` with Borda ``points`` and ``first`` preferences, ``order`` (by points,
    ties in spec order), and ``irv`` (:func:`instant_runoff`) when ``records`` are
    given, else None. rating: ``mean`` (None without votes), ``histogram``. text:
    ``terms``, the ``top_terms`` most frequent, ties in code-point order.
    """
    voters = counters.get("n", 0)
    out: dict[str, Any] = {"poll": spec.id, "kind": spec.kind, "voters": voters}
    if spec.kind in ("single", "multiple"):
        out["options"] = [
            {
                "id": o.id,
                "label": o.label,
                "count": counters.get(f"o:{o.id}", 0),
                "share": share(counters.get(f"o:{o.id}", 0), voters),
            }
            for o in spec.options
        ]
    elif spec.kind == "ranked":
        points = {o.id: counters.get(f"b:{o.id}", 0) for o in spec.options}
        out["options"] = [
            {
                "id": o.id,
                "label": o.label,
                "points": points[o.id],
                "first": counters.get(f"f:{o.id}", 0),
            }
            for o in spec.options
        ]
        out["order"] = sorted(points, key=lambda oid: -points[oid])  # stable: spec order
        out["irv"] = (
            None
            if records is None
            else instant_runoff(spec, (r["ranking"] for r in records if "ranking" in r))
        )
    elif spec.kind == "rating":
        out["mean"] = round(counters.get("sum", 0) / voters, 3) if voters > 0 else None
        out["histogram"] = [
            {"rating": k, "count": counters.get(f"r:{k}", 0)} for k in range(1, spec.scale + 1)
        ]
    else:
        found = [(name[2:], count) for name, count in counters.items() if name.startswith("t:")]
        found.sort(key=lambda tc: (-tc[1], tc[0]))
        out["terms"] = [{"term": t, "count": c} for t, c in found[:top_terms]]
    return out


def visible_results(
    spec: PollSpec,
    status: Status,
    counters: Mapping[str, int],
    records: Iterable[Mapping[str, Any]] | None = None,
    *,
    now: float,
) -> dict[str, Any]:
    """What viewers and screens may see: :func:`results` with ``hidden: false``, or,
    while ``hide_results_until_reveal`` holds and the poll is not revealed, only the
    number of voters with ``hidden: true``. Hosts see :func:`results`."""
    if spec.hide_results_until_reveal and status.at(now).phase != "revealed":
        return {"poll": spec.id, "kind": spec.kind, "voters": counters.get("n", 0), "hidden": True}
    return {**results(spec, counters, records), "hidden": False}


def instant_runoff(spec: PollSpec, rankings: Iterable[Sequence[str]]) -> dict[str, Any]:
    """Instant-runoff from ranked ballots (rules in the module docstring).

    Returns ``winner`` (None without ballots) and ``rounds``: per round the ``counts``
    of the continuing options (spec order), ``exhausted`` ballots and the option
    ``eliminated`` (None in the last round).
    """
    order = [o.id for o in spec.options]
    position = {oid: i for i, oid in enumerate(order)}
    m = len(order)
    ballots = Counter(tuple(oid for oid in r if oid in position) for r in rankings)
    borda = dict.fromkeys(order, 0)
    for ballot, k in ballots.items():
        for i, oid in enumerate(ballot):
            borda[oid] += (m - 1 - i) * k
    continuing = set(order)
    rounds: list[dict[str, Any]] = []
    winner: str | None = None
    while continuing:
        counts = dict.fromkeys((oid for oid in order if oid in continuing), 0)
        exhausted = 0
        for ballot, k in ballots.items():
            for oid in ballot:
                if oid in continuing:
                    counts[oid] += k
                    break
            else:
                exhausted += k
        active = sum(counts.values())
        if active == 0:
            break
        # Lowest first: fewest votes, then lower Borda total, then later in the spec.
        standings = sorted((counts[o], borda[o], -position[o], o) for o in continuing)
        leader = standings[-1][3]
        if counts[leader] * 2 > active or len(continuing) == 1:
            rounds.append({"counts": counts, "exhausted": exhausted, "eliminated": None})
            winner = leader
            break
        loser = standings[0][3]
        rounds.append({"counts": counts, "exhausted": exhausted, "eliminated": loser})
        continuing.remove(loser)
    return {"winner": winner, "rounds": rounds}


# --- the kind -----------------------------------------------------------------------------


class Poll(Kind[PollSpec, Status]):
    """Live polls: one ballot per viewer in the poll's one box, changeable while open."""

    name = "poll"
    spec_type = PollSpec
    state_type = Status
    ops = (Op("vote", words=("text",)),)
    actions = ("open", "close", "reveal")
    view_ts = """spec: PollSpec;
  status: Status;
  results: PollResults;
  /** a poll that takes danmaku (spec.danmaku): what to type for each option, by its id */
  danmaku?: Record<string, string[]>;"""
    types_ts = """
interface PollResultsOf<K> { poll: string; kind: K; voters: number; hidden: false }
/** While hide_results_until_reveal holds, viewers see only how many voted. */
export interface PollResultsHidden {
  poll: string;
  kind: PollSpec["kind"];
  voters: number;
  hidden: true;
}
export interface PollChoiceResults<K extends "single" | "multiple" = "single" | "multiple">
  extends PollResultsOf<K> {
  options: { id: string; label: string; count: number; share: number }[];
}
export interface PollRunoff {
  winner: string | null;
  rounds: { counts: Record<string, number>; exhausted: number; eliminated: string | null }[];
}
export interface PollRankedResults extends PollResultsOf<"ranked"> {
  options: { id: string; label: string; points: number; first: number }[];
  order: string[];
  /** instant-runoff, once the poll stopped taking ballots */
  irv: PollRunoff | null;
}
export interface PollRatingResults extends PollResultsOf<"rating"> {
  mean: number | null;
  histogram: { rating: number; count: number }[];
}
export interface PollTextResults extends PollResultsOf<"text"> {
  terms: { term: string; count: number }[];
}
export type PollResults =
  | PollResultsHidden
  | PollChoiceResults<"single">
  | PollChoiceResults<"multiple">
  | PollRankedResults
  | PollRatingResults
  | PollTextResults;
"""
    danmaku_votes = True
    example: ClassVar[Mapping[str, Any]] = {
        "id": "first",
        "question": "先尝哪款？ Which one first?",
        "kind": "single",
        "options": [
            {"id": "classic", "label": "经典牛肉 Classic beef"},
            {"id": "spicy", "label": "香辣鸡腿 Spicy chicken"},
            {"id": "veggie", "label": "蔬菜 Veggie"},
        ],
    }

    def prepare(self) -> None:
        warm_up()

    def _ranked_records(self, d: Definition, now: float) -> bool:
        return bool(d.spec.kind == "ranked" and d.state.at(now).phase in ("closed", "revealed"))

    def boxes(self, d: Definition) -> list[str]:
        return [d.id, box_key(d.id, MORE)] if self._several(d.spec) else [d.id]

    @staticmethod
    def _several(spec: PollSpec) -> bool:
        return spec.kind == "text" and spec.max_answers > 1

    def view_needs(self, d: Definition, ctx: Context) -> Needs:
        # Instant-runoff needs the ballots; only once the poll stopped taking them.
        records = [d.id] if self._ranked_records(d, ctx.now) else []
        return Needs.of(counters=self.boxes(d), records=records)

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        spec, status = d.spec, d.state
        counters = ctx.data.merged(self.boxes(d))
        records = None
        if self._ranked_records(d, ctx.now):
            records = list(ctx.data.records(d.id).values())
        if audience is Audience.STAFF:
            shown = {**results(spec, counters, records), "hidden": False}
        else:
            shown = visible_results(spec, status, counters, records, now=ctx.now)
        out = {"spec": dump(spec), "status": dump(status.at(ctx.now)), "results": shown}
        if spec.danmaku:  # what to type, for the overlay: option id -> codes
            out["danmaku"] = chat_codes(spec).shown
        return out

    def command_needs(self, c: ViewerCommand, ctx: Context) -> Needs:
        if not self._several(c.d.spec):
            return NOTHING
        return Needs.of(held=answer_slots(c.d.spec, c.d.id, c.who.id))

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        made = vote(c.d.spec, c.d.state, c.fields, ctx.now)
        if not self._several(c.d.spec):
            # The name goes with the ballot: a draw among a poll's voters shows winners by name.
            return c.write(c.d.id, made, named=True)
        slots = answer_slots(c.d.spec, c.d.id, c.who.id)
        sent = [ctx.data.held(box, holder) for box, holder in slots]
        box, holder, answer = answer_write(c.d.spec, c.d.id, c.who.id, made, sent)
        record = {**answer.record, "name": c.who.name}
        return Write(box, holder, c.key, record, answer.deltas, None, answer.once)

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        return Change(state=transition(d.spec, d.state, action, ctx.now))

    def listens(self, d: Definition, now: float) -> bool:
        return bool(d.spec.danmaku and d.state.at(now).phase == "open")

    def on_danmaku(self, d: Definition, who: Viewer, text: str, now: float) -> Write | None:
        """弹幕投票: a danmaku naming an option is its sender's ballot, as a ``vote`` from
        the viewer page would be (it replaces the sender's previous one while open)."""
        option = chat_codes(d.spec).match(text)
        if option is None:
            return None
        try:
            made = vote(d.spec, d.state, danmaku_ballot(d.spec, option), now)
        except InteractionError:  # closed by its countdown since the listeners were set
            return None
        record = {**made.record, "name": who.name, "via": "danmaku"}
        # A key per danmaku: a later one replaces this ballot; the same one committed
        # twice counts once.
        return Write(d.id, who.id, f"danmaku:{option}@{now!r}", record, made.deltas)

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        """One row per ballot (per answer in a word cloud): as the poll's kind has it."""
        rows = []
        held = ((h, r) for box in self.boxes(d) for h, r in ctx.data.records(box).items())
        for holder, record in held:
            viewer = holder.partition("#")[0]
            choice = record.get("option") or record.get("options") or record.get("ranking")
            if choice is None:
                choice = record.get("rating", record.get("text"))
            at = record.get("at")
            rows.append({"viewer": viewer, "name": record.get("name"), "choice": choice, "at": at})
        rows.sort(key=lambda row: (float(row["at"] or 0.0), row["viewer"]))
        return rows


KIND = Poll()
