"""Q&A: viewers ask and upvote questions; the host answers, pins or hides them.

A board has a :class:`~server.interactions.base.Status`; asking and upvoting need it
open. Questions are records the store keeps in the board's ``questions`` box, one per
question (:class:`Question`, made by :func:`ask`; its id comes from the asker and the
idempotency key, so a retried ask is one question). Upvotes are contributions, one
box per question (``<board>/<question id>``, counter ``q:<id>``), ``once`` per
viewer, so a second upvote is ``already_done``. A viewer may withdraw an upvote while
the board is open (:func:`unvote`) and upvote again later; viewers may upvote their
own questions.

Host actions (:func:`host_action`): ``answer`` (optionally with a text; again to edit
it), ``pin``/``unpin``, ``hide``/``unhide``. A hidden question is unpinned, cannot be
pinned or answered, and does not exist for viewers (``unknown_target``).

Order (:func:`order`): pinned first (most recently pinned first), then by upvotes
(most first), then most recent first, then by id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import Meta

from protocol.messages import MAX_NAME_CHARS
from server.interactions.base import (
    MAX_LABEL_CHARS,
    Contribution,
    Id,
    InteractionError,
    Record,
    Status,
    Time,
    as_map,
    box_key,
    check_id,
    check_name,
    check_text,
    clean_label,
    dump,
    parse,
    transition,
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

DEFAULT_QUESTION_CHARS = 300
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 2000
HOST_ACTIONS = ("answer", "pin", "unpin", "hide", "unhide")
QUESTIONS_BOX = "questions"  # within the board: one record per question
# A viewer's questions not yet answered (nor hidden) at once, by default: one viewer
# (one token) cannot fill the board; past it, ``limit_reached`` (issue 15).
DEFAULT_OPEN_PER_VIEWER = 10
MAX_OPEN_PER_VIEWER = 1000
# Questions a view lists, in board order (pinned first, then by upvotes, then newest):
# a board asked 13,500 questions must not make every state message megabytes long.
# ``more`` says how many are left out.
SHOWN_QUESTIONS = 200


class QASpec(Record, frozen=True):
    """A Q&A board as the host defines it: a title and how long a question may be."""

    id: Id
    title: str
    max_chars: Annotated[int, Meta(ge=1, le=MAX_QUESTION_CHARS)] = DEFAULT_QUESTION_CHARS
    # How many questions one viewer may have open (not answered nor hidden) at once.
    max_open_per_viewer: Annotated[int, Meta(ge=1, le=MAX_OPEN_PER_VIEWER)] = (
        DEFAULT_OPEN_PER_VIEWER
    )

    def __post_init__(self) -> None:
        clean_label(self, "title", MAX_LABEL_CHARS)


class Question(Record, frozen=True):
    """A question as the store keeps it (the asker's ``viewer_id`` included)."""

    id: Id
    viewer_id: str
    name: str | None
    text: str
    asked_at: Time
    hidden: bool = False
    pinned_at: Time | None = None
    answered_at: Time | None = None
    answer: str | None = None

    @property
    def pinned(self) -> bool:
        return self.pinned_at is not None

    def shown(self, *, private: bool = False) -> dict[str, Any]:
        """The question in a view; ``private`` keeps the asker's viewer id (hosts only)."""
        out: dict[str, Any] = dump(self)
        if not private:
            del out["viewer_id"]
        return out


def question_id(viewer_id: str, key: str) -> str:
    """The id of the question a viewer asks with an idempotency key: the same for every
    retry, so a retried ask is one question (PROTOCOL.md, "Idempotency keys")."""
    return "q" + hashlib.sha256(f"{viewer_id}|{key}".encode()).hexdigest()[:16]


def _require_open(spec: QASpec, status: Status, now: float) -> None:
    phase = status.at(now).phase
    if phase != "open":
        raise InteractionError("not_open", f"Q&A {spec.id} is {phase}")


def ask(
    spec: QASpec,
    status: Status,
    raw: Any,
    *,
    question_id: str,
    viewer_id: str,
    name: str | None,
    now: float,
) -> Question:
    """Validate ``{"text": ...}``; return the new question (the caller picks its id).

    Raises ``not_open``, ``invalid_field``, ``empty_text``, ``text_too_long``.
    """
    _require_open(spec, status, now)
    command = as_map(raw, "a question")
    text = check_text(command.get("text"), "the question", spec.max_chars)
    shown = check_name(name, MAX_NAME_CHARS)
    return Question(check_id(question_id, "question id"), viewer_id, shown, text, now)


def check_open_questions(
    spec: QASpec, questions: Mapping[str, Question], viewer_id: str, new_id: str
) -> None:
    """Raise ``limit_reached`` when ``viewer_id`` has ``spec.max_open_per_viewer``
    questions open (asked, not answered, not hidden) besides ``new_id`` (a retry)."""
    cap = spec.max_open_per_viewer
    open_ = sum(
        q.viewer_id == viewer_id and q.answered_at is None and not q.hidden and q.id != new_id
        for q in questions.values()
    )
    if open_ >= cap:
        raise InteractionError(
            "limit_reached",
            f"you have {open_} questions waiting for an answer; at most {cap} at once",
            cap="max_open_per_viewer",
            limit=cap,
        )


def _visible(questions: Mapping[str, Question], raw: Any) -> Question:
    command = as_map(raw, "an upvote")
    qid = command.get("question")
    if not isinstance(qid, str):
        raise InteractionError("invalid_field", "an upvote needs a 'question' id")
    question = questions.get(qid)
    if question is None or question.hidden:
        raise InteractionError("unknown_target", f"no question {qid!r:.40}")
    return question


def upvote(
    spec: QASpec, status: Status, questions: Mapping[str, Question], raw: Any, now: float
) -> Contribution:
    """Validate ``{"question": id}``; return a ``once`` contribution to its box.

    Raises ``not_open``, ``invalid_field``, ``unknown_target``; the store refuses a
    second upvote as ``already_done``.
    """
    _require_open(spec, status, now)
    question = _visible(questions, raw)
    return Contribution({"at": now}, {f"q:{question.id}": 1}, box=question.id, once=True)


def unvote(
    spec: QASpec, status: Status, questions: Mapping[str, Question], raw: Any, now: float
) -> str:
    """Validate ``{"question": id}`` for withdrawing an upvote; return the box."""
    _require_open(spec, status, now)
    return _visible(questions, raw).id


def host_action(
    question: Question, action: str, now: float, *, text: str | None = None
) -> Question:
    """Apply a host action (see the module docstring); raises ``illegal_transition`` for
    pinning or answering a hidden question, ``invalid_field`` for a bad action or text.
    Repeating ``pin`` keeps the first pin time."""
    replace = msgspec.structs.replace
    if action not in HOST_ACTIONS:
        raise InteractionError(
            "invalid_field", f"action must be one of {', '.join(HOST_ACTIONS)}, got {action!r:.40}"
        )
    if action in ("answer", "pin") and question.hidden:
        raise InteractionError(
            "illegal_transition", f"question {question.id} is hidden; unhide it first"
        )
    if action == "answer":
        answer = None if text is None else check_text(text, "the answer", MAX_ANSWER_CHARS)
        return replace(question, answered_at=now, answer=answer)
    if action == "pin":
        return question if question.pinned else replace(question, pinned_at=now)
    if action == "unpin":
        return replace(question, pinned_at=None)
    if action == "hide":
        return replace(question, hidden=True, pinned_at=None)
    return replace(question, hidden=False)


def votes(question_id: str, counters: Mapping[str, int]) -> int:
    return counters.get(f"q:{question_id}", 0)


def order(
    questions: Iterable[Question], counters: Mapping[str, int], *, include_hidden: bool = False
) -> list[Question]:
    """The board's order (module docstring); ``counters``: the union of the upvote boxes."""

    def key(q: Question) -> tuple[int, float, int, float, str]:
        pinned = q.pinned_at is not None
        return (
            0 if pinned else 1,
            -(q.pinned_at or 0.0),
            -votes(q.id, counters),
            -q.asked_at,
            q.id,
        )

    return sorted((q for q in questions if include_hidden or not q.hidden), key=key)


def board(
    questions: Iterable[Question],
    counters: Mapping[str, int],
    *,
    include_hidden: bool = False,
    private: bool = False,
) -> list[dict[str, Any]]:
    """The ordered questions as JSON with their ``votes`` (hosts: ``include_hidden`` and
    ``private``), all of them (exports; views list the first ``SHOWN_QUESTIONS``)."""
    return [
        {**q.shown(private=private), "votes": votes(q.id, counters)}
        for q in order(questions, counters, include_hidden=include_hidden)
    ]


# --- the kind -----------------------------------------------------------------------------


def questions_of(d: Definition, ctx: Context) -> dict[str, Question]:
    records = ctx.data.records(box_key(d.id, QUESTIONS_BOX))
    return {qid: parse(Question, r, "a stored question") for qid, r in records.items()}


class QA(Kind[QASpec, Status]):
    """Q&A boards: questions are records of the board; upvotes a box per question."""

    name = "qa"
    spec_type = QASpec
    state_type = Status
    ops = (Op("ask", text=True, words=("text",), holds=True), Op("upvote"), Op("unvote"))
    action_words: ClassVar[Mapping[str, tuple[str, ...]]] = {"answer": ("text",)}
    actions = ("open", "close", *HOST_ACTIONS)
    view_ts = "spec: QASpec; status: Status; questions: QAQuestion[]; more: number;"
    types_ts = """
export interface QAQuestion {
  id: string;
  /** hosts and moderators only */
  viewer_id?: string;
  name: string | null;
  text: string;
  asked_at: number;
  hidden: boolean;
  pinned_at: number | null;
  answered_at: number | null;
  answer: string | null;
  votes: number;
}
"""
    example: ClassVar[Mapping[str, Any]] = {"id": "ask", "title": "提问 Ask the chef"}
    example_actions = ("open",)

    def _questions_box(self, d: Definition) -> str:
        return box_key(d.id, QUESTIONS_BOX)

    def boxes(self, d: Definition) -> list[str]:
        return [self._questions_box(d)]

    def view_needs(self, d: Definition, ctx: Context) -> Needs:
        # First the questions; then, knowing their ids, the upvote box of each.
        upvotes = [box_key(d.id, qid) for qid in ctx.data.records(self._questions_box(d))]
        return Needs.of(records=[self._questions_box(d)], counters=upvotes)

    def _upvotes(self, d: Definition, ctx: Context, questions: Iterable[str]) -> dict[str, int]:
        return ctx.data.merged(box_key(d.id, qid) for qid in questions)

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        questions = questions_of(d, ctx)
        private = audience is Audience.STAFF
        counters = self._upvotes(d, ctx, questions)
        listed = board(questions.values(), counters, include_hidden=private, private=private)
        return {
            "spec": dump(d.spec),
            "status": dump(d.state.at(ctx.now)),
            "questions": listed[:SHOWN_QUESTIONS],
            "more": max(0, len(listed) - SHOWN_QUESTIONS),
        }

    def command_needs(self, c: ViewerCommand, ctx: Context) -> Needs:
        return Needs.of(records=[self._questions_box(c.d)])  # an ask counts the asker's

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        d, who = c.d, c.who
        if c.op == "ask":
            question = ask(
                d.spec,
                d.state,
                c.fields,
                question_id=question_id(who.id, c.key),
                viewer_id=who.id,
                name=who.name,
                now=ctx.now,
            )
            check_open_questions(d.spec, questions_of(d, ctx), who.id, question.id)
            if c.held:  # held by the text filter: hidden until a host unhides it
                question = msgspec.structs.replace(question, hidden=True)
            # One record per question, keyed by asker and key: a retried ask is one question.
            box = self._questions_box(d)
            holder_key = f"{who.id}|{c.key}"
            return Write(box, question.id, holder_key, dump(question), {"asked": 1}, None, True)
        questions = questions_of(d, ctx)
        if c.op == "upvote":
            up = upvote(d.spec, d.state, questions, c.fields, ctx.now)
            return c.write(box_key(d.id, up.box), up)
        withdrawn = unvote(d.spec, d.state, questions, c.fields, ctx.now)
        return Write(box_key(d.id, withdrawn), who.id, c.key, None)

    def action_needs(
        self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context
    ) -> Needs:
        return Needs.of(records=[self._questions_box(d)]) if action in HOST_ACTIONS else Needs()

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        if action in ("open", "close"):
            return Change(state=transition(d.state, action, ctx.now))
        qid = fields.get("question")
        question = questions_of(d, ctx).get(qid) if isinstance(qid, str) else None
        if question is None:
            raise InteractionError("unknown_target", f"no question {qid!r:.40}")
        text = fields.get("text")
        updated = host_action(
            question, action, ctx.now, text=text if isinstance(text, str) else None
        )
        if updated == question:
            return Change()
        box = self._questions_box(d)
        return Change(writes=(Write(box, question.id, "", dump(updated), {"asked": 1}),))

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        """Every question, hidden ones too, in the board's order, with its upvotes."""
        questions = questions_of(d, ctx)
        counters = self._upvotes(d, ctx, questions)
        return board(questions.values(), counters, include_hidden=True, private=True)

    def export_needs(self, d: Definition, ctx: Context) -> Needs:
        return self.view_needs(d, ctx)


KIND = QA()
