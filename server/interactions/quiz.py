"""Quizzes: timed questions, one answer per viewer per question, speed-weighted scores.

The host asks the questions one at a time (:func:`transition`: ``ask``, ``close``,
``reveal``, ``finish``). A question takes answers from the moment it is asked until
``time_limit_s`` later or until the host closes it. Each question is its own box
(``box == question id``) and answers are ``once`` contributions: a second answer to
the same question is refused with ``already_done`` (a retry with the same key is the
store's duplicate, not a second answer).

Scoring (:func:`score`), for an answer that arrived ``elapsed`` seconds after the
question was asked (clamped to ``0..time_limit_s``)::

    correct: round(points * (1 - 0.5 * elapsed / time_limit_s))   # points .. points/2
    wrong:   0

with ``points`` 1000 by default and rounding half up. Times are the server's clock,
passed in. The record keeps the option and ``elapsed``, never the score or whether it
is right, so echoing it to the viewer leaks nothing; :func:`leaderboard` scores from
the records and counts a question only once its answer is revealed (or it is no
longer the current question), so the board never gives away an open question.

Counters per question box: ``a:<qid>:<option>`` 1 and ``n:<qid>`` 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from server.interactions.base import (
    Contribution,
    Id,
    InteractionError,
    Option,
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
    NOTHING,
    Announcement,
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

MAX_QUESTIONS = 100
MAX_QUIZ_OPTIONS = 10
MAX_TEXT_CHARS = 300
MIN_TIME_LIMIT_S = 1.0
MAX_TIME_LIMIT_S = 600.0
DEFAULT_POINTS = 1000
LEADERS = 10  # the leaderboard in views: the top ten, by name
QUIZ_ACTIONS = ("ask", "close", "reveal", "finish")


class QuizQuestion(Record, frozen=True):
    """One question: its options, the right one, its time limit and its points."""

    id: Id
    text: str
    options: tuple[Option, ...]
    correct: Id
    time_limit_s: Annotated[float, Meta(ge=MIN_TIME_LIMIT_S, le=MAX_TIME_LIMIT_S)] = 20.0
    points: Annotated[int, Meta(ge=1, le=100_000)] = DEFAULT_POINTS

    def __post_init__(self) -> None:
        clean_label(self, "text", MAX_TEXT_CHARS)
        if not 2 <= len(self.options) <= MAX_QUIZ_OPTIONS:
            raise InteractionError(
                "invalid_field", f"a quiz question needs 2..{MAX_QUIZ_OPTIONS} options"
            )
        unique_ids((o.id for o in self.options), "option")
        if any(o.codes for o in self.options):
            raise InteractionError("invalid_field", "a quiz takes no danmaku codes (polls do)")
        if self.correct not in {o.id for o in self.options}:
            raise InteractionError(
                "invalid_field", f"correct must be one of the options, got {self.correct!r:.40}"
            )

    def shown(self, *, with_answer: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = dump(self)
        del out["correct"]
        if with_answer:
            out["correct"] = self.correct
        return out


class QuizSpec(Record, frozen=True):
    """A quiz as the host defines it: a title and its questions, in order."""

    id: Id
    title: str
    questions: tuple[QuizQuestion, ...]

    def __post_init__(self) -> None:
        clean_label(self, "title", MAX_TEXT_CHARS)
        if not 1 <= len(self.questions) <= MAX_QUESTIONS:
            raise InteractionError("invalid_field", f"a quiz needs 1..{MAX_QUESTIONS} questions")
        unique_ids((q.id for q in self.questions), "question")

    def question(self, question_id: str) -> QuizQuestion | None:
        return by_id(self.questions, question_id)

    def shown(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "questions": [q.shown() for q in self.questions],
        }

    def public(self, state: QuizState) -> dict[str, Any]:
        """What viewers may see: asked questions only; answers only once revealed."""
        return {
            "id": self.id,
            "title": self.title,
            "questions": [
                q.shown(with_answer=state.is_revealed(q.id))
                for q in self.questions
                if q.id in state.asked
            ],
        }


class QuizState(Record, frozen=True):
    """Which question is current, when it was asked and when it stops taking answers.

    ``asked`` lists the questions asked so far, in order; ``revealed`` says whether the
    current question's answer is shown (earlier questions count as revealed).
    """

    current: Id | None = None
    asked_at: Time | None = None
    closes_at: Time | None = None
    revealed: bool = False
    asked: tuple[Id, ...] = ()
    finished: bool = False
    revealed_at: Time | None = None
    finished_at: Time | None = None

    def accepting(self, now: float) -> bool:
        return (
            self.current is not None
            and not self.finished
            and self.closes_at is not None
            and now < self.closes_at
        )

    def is_revealed(self, question_id: str) -> bool:
        if question_id not in self.asked:
            return False
        return question_id != self.current or self.revealed


def transition(
    spec: QuizSpec, state: QuizState, action: str, now: float, question_id: str | None = None
) -> QuizState:
    """A host operation on the quiz.

    - ``ask`` (``question_id``, default: the first not yet asked): needs the current
      question closed; a question is asked once. Starts its countdown.
    - ``close``: stop taking answers to the current question now.
    - ``reveal``: show the current question's answer; needs it closed.
    - ``finish``: end the quiz (closes the current question and reveals its answer).

    Repeating ``close``, ``reveal`` or ``finish`` changes nothing; other misuse raises
    ``illegal_transition``; an unknown question ``unknown_target``.
    """
    if action not in QUIZ_ACTIONS:
        raise InteractionError(
            "invalid_field", f"action must be one of {', '.join(QUIZ_ACTIONS)}, got {action!r:.40}"
        )
    if action == "finish":
        if state.finished:
            return state
        closes_at = state.closes_at
        if closes_at is not None:
            closes_at = min(closes_at, now)
        revealed_at = state.revealed_at if state.revealed else now
        return msgspec.structs.replace(
            state,
            finished=True,
            finished_at=now,
            closes_at=closes_at,
            revealed=True,
            revealed_at=revealed_at,
        )
    if state.finished:
        raise InteractionError("illegal_transition", f"quiz {spec.id} is finished")
    if action == "ask":
        if question_id is None:
            question_id = next((q.id for q in spec.questions if q.id not in state.asked), None)
            if question_id is None:
                raise InteractionError("illegal_transition", "every question has been asked")
        question = spec.question(question_id)
        if question is None:
            raise InteractionError(
                "unknown_target", f"quiz {spec.id} has no question {question_id!r:.40}"
            )
        if question_id in state.asked:
            raise InteractionError(
                "illegal_transition", f"question {question_id} was asked already"
            )
        if state.accepting(now):
            raise InteractionError(
                "illegal_transition", f"question {state.current} is still open; close it first"
            )
        return msgspec.structs.replace(
            state,
            current=question_id,
            asked_at=now,
            closes_at=now + question.time_limit_s,
            revealed=False,
            revealed_at=None,
            asked=(*state.asked, question_id),
        )
    if state.current is None:
        raise InteractionError("illegal_transition", f"no question has been asked; cannot {action}")
    if action == "close":
        if not state.accepting(now):
            return state
        return msgspec.structs.replace(state, closes_at=now)
    # reveal
    if state.revealed:
        return state
    if state.accepting(now):
        raise InteractionError(
            "illegal_transition", f"question {state.current} is still open; close it first"
        )
    return msgspec.structs.replace(state, revealed=True, revealed_at=now)


def answer(spec: QuizSpec, state: QuizState, raw: Any, now: float) -> Contribution:
    """Validate ``{"question": id, "option": id}``; return a ``once`` contribution.

    Raises ``invalid_vote``, ``unknown_target``, ``not_open``, ``unknown_option``.
    """
    ballot = as_map(raw, "an answer", "invalid_vote")
    qid = ballot.get("question")
    option = ballot.get("option")
    if not isinstance(qid, str) or not isinstance(option, str):
        raise InteractionError("invalid_vote", "an answer needs 'question' and 'option' ids")
    question = spec.question(qid)
    if question is None:
        raise InteractionError("unknown_target", f"quiz {spec.id} has no question {qid!r:.40}")
    if qid != state.current or not state.accepting(now) or state.asked_at is None:
        raise InteractionError("not_open", f"question {qid} is not taking answers")
    if option not in {o.id for o in question.options}:
        raise InteractionError("unknown_option", f"question {qid} has no option {option!r:.40}")
    elapsed = min(max(now - state.asked_at, 0.0), question.time_limit_s)
    return Contribution(
        {"question": qid, "option": option, "at": now, "elapsed": round(elapsed, 3)},
        {f"a:{qid}:{option}": 1, f"n:{qid}": 1},
        box=qid,
        once=True,
    )


def score(question: QuizQuestion, option: str, elapsed: float) -> int:
    """Points for an answer (formula in the module docstring)."""
    if option != question.correct:
        return 0
    fraction = min(max(elapsed, 0.0), question.time_limit_s) / question.time_limit_s
    return math.floor(question.points * (1 - 0.5 * fraction) + 0.5)


def question_results(
    spec: QuizSpec, state: QuizState, question_id: str, counters: Mapping[str, int]
) -> dict[str, Any]:
    """How the answers to one question split (``correct`` is None until revealed)."""
    question = spec.question(question_id)
    if question is None:
        raise InteractionError(
            "unknown_target", f"quiz {spec.id} has no question {question_id!r:.40}"
        )
    answers = counters.get(f"n:{question_id}", 0)
    return {
        "question": question_id,
        "answers": answers,
        "options": [
            {
                "id": o.id,
                "label": o.label,
                "count": counters.get(f"a:{question_id}:{o.id}", 0),
                "share": share(counters.get(f"a:{question_id}:{o.id}", 0), answers),
            }
            for o in question.options
        ],
        "correct": question.correct if state.is_revealed(question_id) else None,
    }


def leaderboard(
    spec: QuizSpec,
    state: QuizState,
    records: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    limit: int | None = 10,
) -> list[dict[str, Any]]:
    """Ranked scores from the answer records: ``records[question_id][viewer_id]``.

    Only revealed questions count. Order: points (high first), then the total time
    taken by correct answers (low first), then viewer id. Rows carry ``rank`` (equal
    points and time share a rank: 1, 2, 2, 4), ``viewer``, ``name`` (the display name
    the viewer's answers recorded, or None), ``points``, ``correct`` (number of right
    answers) and ``time``. Viewers who answered but scored nothing
    are listed too.
    """
    points: dict[str, int] = {}
    correct: dict[str, int] = {}
    time: dict[str, float] = {}
    names: dict[str, str] = {}
    for qid, by_viewer in records.items():
        question = spec.question(qid)
        if question is None or not state.is_revealed(qid):
            continue
        for viewer, record in by_viewer.items():
            name = record.get("name")
            if isinstance(name, str):
                names[viewer] = name
            elapsed = float(record.get("elapsed", question.time_limit_s))
            gained = score(question, str(record.get("option")), elapsed)
            points[viewer] = points.get(viewer, 0) + gained
            if gained:
                correct[viewer] = correct.get(viewer, 0) + 1
                time[viewer] = time.get(viewer, 0.0) + elapsed
    rows = [
        (viewer, total, correct.get(viewer, 0), round(time.get(viewer, 0.0), 3))
        for viewer, total in points.items()
    ]
    rows.sort(key=lambda row: (-row[1], row[3], row[0]))
    board: list[dict[str, Any]] = []
    for i, (viewer, total, right, taken) in enumerate(rows[:limit]):
        rank = i + 1
        if board and (board[-1]["points"], board[-1]["time"]) == (total, taken):
            rank = board[-1]["rank"]
        board.append(
            {
                "rank": rank,
                "viewer": viewer,
                "name": names.get(viewer),
                "points": total,
                "correct": right,
                "time": taken,
            }
        )
    return board


def standings(
    quiz_id: str,
    spec: QuizSpec,
    state: QuizState,
    records: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> Announcement:
    """A reveal's announcement: the public ``quiz_revealed`` event (screens show the
    leaderboard), and to each player privately a ``quiz_standing`` notice with their
    own ``rank``, ``points`` and ``correct`` answers among ``players``; ``final`` once
    the quiz is finished."""
    board = leaderboard(spec, state, records, limit=None)
    event = {
        "type": "quiz_revealed",
        "interaction": quiz_id,
        "question": state.current,
        "final": state.finished,
    }
    own = {
        row["viewer"]: {
            "type": "notice",
            "kind": "quiz_standing",
            "interaction": quiz_id,
            "rank": row["rank"],
            "points": row["points"],
            "correct": row["correct"],
            "players": len(board),
            "final": state.finished,
        }
        for row in board
    }
    return Announcement(event, private=own)


# --- the kind -----------------------------------------------------------------------------


class Quiz(Kind[QuizSpec, QuizState]):
    """Quizzes: one box per question, answers once, scored when revealed."""

    name = "quiz"
    spec_type = QuizSpec
    state_type = QuizState
    ops = (Op("answer"),)
    actions = QUIZ_ACTIONS
    view_ts = """spec: { id: string; title: string; questions: QuizQuestionShown[] };
  state: QuizState;
  accepting: boolean;
  results: QuizQuestionResults[];
  leaderboard: QuizLeader[];
  players: number;"""
    types_ts = """
/** An asked question in a view: `correct` once revealed (hosts: always, every question). */
export type QuizQuestionShown = Omit<QuizQuestion, "correct"> & { correct?: string };
export interface QuizQuestionResults {
  question: string;
  answers: number;
  options: { id: string; label: string; count: number; share: number }[];
  correct: string | null;
}
export interface QuizLeader {
  rank: number;
  viewer: string;
  name: string | null;
  points: number;
  correct: number;
  time: number;
}
"""

    def boxes(self, d: Definition) -> list[str]:
        return [box_key(d.id, q.id) for q in d.spec.questions]

    def view_needs(self, d: Definition, ctx: Context) -> Needs:
        revealed = [box_key(d.id, q) for q in d.state.asked if d.state.is_revealed(q)]
        return Needs.of(counters=self.boxes(d), records=revealed)

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        spec: QuizSpec = d.spec
        state: QuizState = d.state
        staff = audience is Audience.STAFF
        counters = ctx.data.merged(self.boxes(d))
        revealed = [qid for qid in state.asked if state.is_revealed(qid)]
        by_question = {qid: ctx.data.records(box_key(d.id, qid)) for qid in revealed}
        board = leaderboard(spec, state, by_question, limit=None)
        return {
            "spec": spec.shown() if staff else spec.public(state),
            "state": dump(state),
            "accepting": state.accepting(ctx.now),
            "results": [
                question_results(spec, state, qid, counters)
                for qid in state.asked
                if staff or state.is_revealed(qid)
            ],
            "leaderboard": board[:LEADERS],
            "players": len(board),
        }

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        made = answer(c.d.spec, c.d.state, c.fields, ctx.now)
        # The name goes with the answer: the leaderboard shows players by name.
        return c.write(box_key(c.d.id, made.box), made, named=True)

    def action_needs(
        self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context
    ) -> Needs:
        # Revealing scores: every player hears their own standing.
        if action in ("reveal", "finish"):
            return Needs.of(records=[box_key(d.id, q) for q in d.state.asked])
        return NOTHING

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        question = fields.get("question")
        state = transition(d.spec, d.state, action, ctx.now, question)
        if action not in ("reveal", "finish") or state == d.state:
            return Change(state=state)
        by_question = {qid: ctx.data.records(box_key(d.id, qid)) for qid in state.asked}
        return Change(state=state, announce=(standings(d.id, d.spec, state, by_question),))

    def export_needs(self, d: Definition, ctx: Context) -> Needs:
        return Needs.of(records=[box_key(d.id, q) for q in d.state.asked])

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        """The full leaderboard (every player), scored on the revealed questions."""
        by_question = {qid: ctx.data.records(box_key(d.id, qid)) for qid in d.state.asked}
        return leaderboard(d.spec, d.state, by_question, limit=None)


KIND = Quiz()
