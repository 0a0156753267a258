"""server.interactions.qa and checkin: questions, upvotes once, host actions, ordering."""

from __future__ import annotations

from typing import Any

import pytest

from server.interactions import checkin, qa
from server.interactions.base import InteractionError, Status, Tally, dump, merge_counters, parse
from server.interactions.checkin import CheckinSpec
from server.interactions.kind import to_csv
from server.interactions.qa import QASpec, Question

SPEC = QASpec("board", "Ask us", max_chars=20)
OPEN = Status("open", opened_at=0.0)


def code_of(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(InteractionError) as err:
        fn(*args, **kw)
    return err.value.code


def ask(qid: str, text: str, at: float, viewer: str = "v1") -> Question:
    return qa.ask(
        SPEC, OPEN, {"text": text}, question_id=qid, viewer_id=viewer, name=" Ann\n", now=at
    )


def test_ask():
    q = ask("q1", "  Why?  ", 5.0)
    assert (q.id, q.viewer_id, q.name, q.text, q.asked_at) == ("q1", "v1", "Ann", "Why?", 5.0)
    assert parse(Question, dump(q)) == q
    assert "viewer_id" not in q.shown()
    assert code_of(ask, "q2", "   ", 1.0) == "empty_text"
    assert code_of(ask, "q2", "x" * 21, 1.0) == "text_too_long"
    assert (
        code_of(qa.ask, SPEC, OPEN, {"text": 3}, question_id="q", viewer_id="v", name=None, now=1.0)
        == "invalid_field"
    )
    assert (
        code_of(
            qa.ask,
            SPEC,
            Status("closed"),
            {"text": "hi"},
            question_id="q",
            viewer_id="v",
            name=None,
            now=1.0,
        )
        == "not_open"
    )
    assert parse(QASpec, dump(SPEC)) == SPEC
    assert code_of(parse, QASpec, {"id": "b", "title": "t", "max_chars": 0}) == ("invalid_field")


def test_upvote_once_and_withdraw():
    questions = {"q1": ask("q1", "one", 1.0), "q2": ask("q2", "two", 2.0)}
    boxes = {qid: Tally() for qid in questions}

    def up(viewer: str, qid: str, key: str) -> str:
        c = qa.upvote(SPEC, OPEN, questions, {"question": qid}, 3.0)
        assert c.box == qid and c.once and c.deltas == {f"q:{qid}": 1}
        return boxes[c.box].apply(viewer, c, key).status

    assert up("v1", "q1", "k1") == "applied"
    assert up("v1", "q1", "k1") == "duplicate"
    assert up("v1", "q1", "k2") == "already_done"
    assert up("v1", "q2", "k3") == "applied"  # one upvote per question, not per board
    assert up("v2", "q1", "k1") == "applied"
    counters = merge_counters(*(t.counters for t in boxes.values()))
    assert counters == {"q:q1": 2, "q:q2": 1}
    box = qa.unvote(SPEC, OPEN, questions, {"question": "q1"}, 4.0)
    boxes[box].remove("v1")
    assert boxes["q1"].counters == {"q:q1": 1}
    assert up("v1", "q1", "k4") == "applied"  # may upvote again after withdrawing
    assert code_of(qa.upvote, SPEC, OPEN, questions, {"question": "q9"}, 1.0) == ("unknown_target")
    assert code_of(qa.upvote, SPEC, OPEN, questions, {}, 1.0) == "invalid_field"
    assert code_of(qa.upvote, SPEC, Status("closed"), questions, {"question": "q1"}, 1.0) == (
        "not_open"
    )
    questions["q2"] = qa.host_action(questions["q2"], "hide", 5.0)
    assert code_of(qa.upvote, SPEC, OPEN, questions, {"question": "q2"}, 6.0) == ("unknown_target")


def test_host_actions():
    q = ask("q1", "hi", 1.0)
    pinned = qa.host_action(q, "pin", 2.0)
    assert pinned.pinned_at == 2.0 and qa.host_action(pinned, "pin", 3.0) == pinned
    assert qa.host_action(pinned, "unpin", 3.0).pinned_at is None
    answered = qa.host_action(pinned, "answer", 4.0, text="Because.")
    assert (answered.answered_at, answered.answer) == (4.0, "Because.")
    assert qa.host_action(q, "answer", 4.0).answer is None  # answered live, no text
    hidden = qa.host_action(pinned, "hide", 5.0)
    assert hidden.hidden and hidden.pinned_at is None
    assert code_of(qa.host_action, hidden, "pin", 6.0) == "illegal_transition"
    assert code_of(qa.host_action, hidden, "answer", 6.0) == "illegal_transition"
    assert not qa.host_action(hidden, "unhide", 6.0).hidden
    assert code_of(qa.host_action, q, "delete", 6.0) == "invalid_field"
    assert code_of(qa.host_action, q, "answer", 6.0, text="") == "empty_text"


def test_order_pinned_then_votes_then_recency():
    qs = [
        ask("old", "a", 1.0),
        ask("new", "b", 5.0),
        ask("top", "c", 2.0),
        ask("pin1", "d", 0.5),
        ask("pin2", "e", 0.6),
        ask("gone", "f", 9.0),
    ]
    by_id = {q.id: q for q in qs}
    by_id["pin1"] = qa.host_action(by_id["pin1"], "pin", 10.0)
    by_id["pin2"] = qa.host_action(by_id["pin2"], "pin", 11.0)
    by_id["gone"] = qa.host_action(by_id["gone"], "hide", 12.0)
    counters = {"q:top": 5, "q:old": 1, "q:new": 1, "q:gone": 9, "q:pin1": 0}
    order = [q.id for q in qa.order(by_id.values(), counters)]
    assert order == ["pin2", "pin1", "top", "new", "old"]
    assert [q.id for q in qa.order(by_id.values(), counters, include_hidden=True)] == [
        "pin2",
        "pin1",
        "gone",
        "top",
        "new",
        "old",
    ]
    board = qa.board(by_id.values(), counters)
    assert [(row["id"], row["votes"]) for row in board][:3] == [
        ("pin2", 0),
        ("pin1", 0),
        ("top", 5),
    ]
    assert "viewer_id" not in board[0]
    assert "viewer_id" in qa.board(by_id.values(), counters, private=True)[0]


# --- check-in ------------------------------------------------------------------------------


def test_check_in_once_count_and_export():
    spec = CheckinSpec("hello", "Sign in")
    assert parse(CheckinSpec, dump(spec)) == spec
    t = Tally()
    for i, (viewer, name) in enumerate([("v2", "Bo"), ("v1", "=HYPERLINK(1)"), ("v3", None)]):
        c = checkin.check_in(spec, OPEN, name=name, now=10.0 + i)
        assert c.once and c.deltas == {"n": 1}
        assert t.apply(viewer, c, "k").status == "applied"
    assert t.apply("v2", checkin.check_in(spec, OPEN, name="Bo", now=20.0), "k2").status == (
        "already_done"
    )
    assert t.apply("v2", checkin.check_in(spec, OPEN, name="Bo", now=20.0), "k").status == (
        "duplicate"
    )
    assert checkin.count(t.counters) == 3
    rows = checkin.export(t.records)
    assert rows == [
        {"viewer": "v2", "name": "Bo", "at": 10.0},
        {"viewer": "v1", "name": "=HYPERLINK(1)", "at": 11.0},
        {"viewer": "v3", "name": None, "at": 12.0},
    ]
    assert to_csv(rows) == (
        "viewer,name,at\r\nv2,Bo,10.0\r\nv1,'=HYPERLINK(1),11.0\r\nv3,,12.0\r\n"
    )
    assert code_of(checkin.check_in, spec, Status("draft"), name=None, now=1.0) == "not_open"
    countdown = Status("open", opened_at=0.0, closes_at=60.0)
    assert code_of(checkin.check_in, spec, countdown, name=None, now=60.0) == "not_open"
