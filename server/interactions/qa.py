"""Q&A: viewers ask and upvote questions; the host answers, pins or hides them.

A board has a :class:`~server.interactions.base.Status`; asking and upvoting need it
open. Questions are state the store keeps (:class:`Question`, made by :func:`ask`);
upvotes are contributions, one box per question (``box == question id``, counter
``q:<id>``), ``once`` per viewer, so a second upvote is ``already_done``. A viewer may
withdraw an upvote while the board is open (:func:`unvote` names the box to remove
from) and upvote again later; viewers may upvote their own questions.

Host actions (:func:`host_action`): ``answer`` (optionally with a text; again to edit
it), ``pin``/``unpin``, ``hide``/``unhide``. A hidden question is unpinned, cannot be
pinned or answered, and does not exist for viewers (``unknown_target``).

Order (:func:`order`): pinned first (most recently pinned first), then by upvotes
(most first), then most recent first, then by id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from protocol.messages import MAX_NAME_CHARS, clean_text
from server.interactions.base import (
    MAX_LABEL_CHARS,
    Contribution,
    InteractionError,
    Status,
    as_map,
    check_bool,
    check_id,
    check_int,
    check_label,
    check_number,
    check_text,
    opt_number,
)

DEFAULT_QUESTION_CHARS = 300
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 2000
HOST_ACTIONS = ("answer", "pin", "unpin", "hide", "unhide")


@dataclass(frozen=True, slots=True)
class QASpec:
    id: str
    title: str
    max_chars: int = DEFAULT_QUESTION_CHARS

    def __post_init__(self) -> None:
        check_id(self.id, "board id")
        check_label(self.title, "title", MAX_LABEL_CHARS)
        check_int(self.max_chars, "max_chars", 1, MAX_QUESTION_CHARS)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "max_chars": self.max_chars}

    @classmethod
    def from_dict(cls, obj: Any) -> QASpec:
        obj = as_map(obj, "a Q&A board")
        return cls(
            id=check_id(obj.get("id"), "board id"),
            title=check_label(obj.get("title"), "title", MAX_LABEL_CHARS),
            max_chars=check_int(
                obj.get("max_chars", DEFAULT_QUESTION_CHARS), "max_chars", 1, MAX_QUESTION_CHARS
            ),
        )


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    viewer_id: str
    name: str | None
    text: str
    asked_at: float
    hidden: bool = False
    pinned_at: float | None = None
    answered_at: float | None = None
    answer: str | None = None

    @property
    def pinned(self) -> bool:
        return self.pinned_at is not None

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        """The question as JSON; ``private`` adds the asker's viewer id (hosts only)."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "text": self.text,
            "asked_at": self.asked_at,
            "hidden": self.hidden,
            "pinned_at": self.pinned_at,
            "answered_at": self.answered_at,
            "answer": self.answer,
        }
        if private:
            out["viewer_id"] = self.viewer_id
        return out

    @classmethod
    def from_dict(cls, obj: Any) -> Question:
        """Load a stored question (its ``viewer_id`` included)."""
        obj = as_map(obj, "a question")
        viewer_id = obj.get("viewer_id")
        text = obj.get("text")
        name = obj.get("name")
        answer = obj.get("answer")
        if not isinstance(viewer_id, str) or not isinstance(text, str):
            raise InteractionError("invalid_field", "a question needs viewer_id and text strings")
        if name is not None and not isinstance(name, str):
            raise InteractionError("invalid_field", "name must be a string")
        if answer is not None and not isinstance(answer, str):
            raise InteractionError("invalid_field", "answer must be a string")
        return cls(
            id=check_id(obj.get("id"), "question id"),
            viewer_id=viewer_id,
            name=name,
            text=text,
            asked_at=check_number(obj.get("asked_at"), "asked_at", 0.0, math.inf),
            hidden=check_bool(obj.get("hidden", False), "hidden"),
            pinned_at=opt_number(obj, "pinned_at", lo=0.0, hi=math.inf),
            answered_at=opt_number(obj, "answered_at", lo=0.0, hi=math.inf),
            answer=answer,
        )


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
    shown = (clean_text(name)[:MAX_NAME_CHARS] or None) if name is not None else None
    return Question(check_id(question_id, "question id"), viewer_id, shown, text, now)


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
    ``private``)."""
    return [
        {**q.to_dict(private=private), "votes": votes(q.id, counters)}
        for q in order(questions, counters, include_hidden=include_hidden)
    ]
