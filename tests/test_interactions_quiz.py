"""server.interactions.quiz: the question flow, one answer each, speed-weighted scores."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.interactions import quiz
from server.interactions.base import (
    InteractionError,
    Option,
    Tally,
    dump,
    merge_counters,
    parse,
    recount,
)
from server.interactions.quiz import QuizQuestion, QuizSpec, QuizState

ABC = tuple(Option(i, i.upper()) for i in "abc")
SPEC = QuizSpec(
    "q1",
    "Trivia",
    (
        QuizQuestion("one", "1 + 1?", ABC, correct="b", time_limit_s=10),
        QuizQuestion("two", "Capital?", ABC, correct="a", time_limit_s=20, points=500),
    ),
)


def code_of(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(InteractionError) as err:
        fn(*args, **kw)
    return err.value.code


def test_spec_round_trips_and_hides_answers():
    assert parse(QuizSpec, dump(SPEC)) == SPEC
    state = quiz.transition(SPEC, QuizState(), "ask", 0.0)
    public = SPEC.public(state)
    assert [q["id"] for q in public["questions"]] == ["one"]
    assert "correct" not in public["questions"][0]
    state = quiz.transition(SPEC, quiz.transition(SPEC, state, "close", 1.0), "reveal", 1.0)
    assert SPEC.public(state)["questions"][0]["correct"] == "b"
    assert parse(QuizState, dump(state)) == state
    bad = dump(SPEC)
    bad["questions"][0]["correct"] = "z"
    assert code_of(parse, QuizSpec, bad) == "invalid_field"
    bad = dump(SPEC)
    bad["questions"][1]["id"] = "one"
    assert code_of(parse, QuizSpec, bad) == "invalid_field"
    bad = dump(SPEC)
    bad["questions"][0]["time_limit_s"] = 0
    assert code_of(parse, QuizSpec, bad) == "invalid_field"


def test_question_flow():
    s = quiz.transition(SPEC, QuizState(), "ask", 100.0)
    assert (s.current, s.asked_at, s.closes_at, s.asked) == ("one", 100.0, 110.0, ("one",))
    assert code_of(quiz.transition, SPEC, s, "ask", 101.0) == "illegal_transition"  # still open
    assert code_of(quiz.transition, SPEC, s, "reveal", 101.0) == "illegal_transition"
    s = quiz.transition(SPEC, s, "close", 105.0)
    assert s.closes_at == 105.0 and quiz.transition(SPEC, s, "close", 106.0) == s
    s = quiz.transition(SPEC, s, "reveal", 106.0)
    assert s.revealed and quiz.transition(SPEC, s, "reveal", 107.0) == s
    assert code_of(quiz.transition, SPEC, s, "ask", 107.0, "one") == "illegal_transition"
    assert code_of(quiz.transition, SPEC, s, "ask", 107.0, "nope") == "unknown_target"
    s = quiz.transition(SPEC, s, "ask", 107.0)  # the next one not yet asked
    assert s.current == "two" and not s.revealed
    s = quiz.transition(SPEC, s, "finish", 110.0)
    assert s.finished and s.closes_at == 110.0 and s.is_revealed("two")
    assert quiz.transition(SPEC, s, "finish", 111.0) == s
    assert code_of(quiz.transition, SPEC, s, "ask", 112.0) == "illegal_transition"
    assert code_of(quiz.transition, SPEC, QuizState(), "close", 1.0) == "illegal_transition"
    assert code_of(quiz.transition, SPEC, QuizState(), "skip", 1.0) == "invalid_field"
    done = QuizState(asked=("one", "two"))
    assert code_of(quiz.transition, SPEC, done, "ask", 1.0) == "illegal_transition"


def test_answers_and_their_errors():
    s = quiz.transition(SPEC, QuizState(), "ask", 100.0)
    c = quiz.answer(SPEC, s, {"question": "one", "option": "b"}, 102.5)
    assert c.box == "one" and c.once
    assert c.record == {"question": "one", "option": "b", "at": 102.5, "elapsed": 2.5}
    assert c.deltas == {"a:one:b": 1, "n:one": 1}
    assert "correct" not in c.record and "points" not in c.record
    # Clock skew between nodes: an answer stamped before the ask counts as instant.
    assert quiz.answer(SPEC, s, {"question": "one", "option": "a"}, 99.0).record["elapsed"] == 0
    assert code_of(quiz.answer, SPEC, s, {"question": "one", "option": "z"}, 101) == (
        "unknown_option"
    )
    assert code_of(quiz.answer, SPEC, s, {"question": "two", "option": "a"}, 101) == "not_open"
    assert code_of(quiz.answer, SPEC, s, {"question": "zz", "option": "a"}, 101) == (
        "unknown_target"
    )
    assert code_of(quiz.answer, SPEC, s, {"question": "one", "option": "b"}, 110.0) == "not_open"
    assert code_of(quiz.answer, SPEC, s, {"question": "one"}, 101) == "invalid_vote"
    assert code_of(quiz.answer, SPEC, s, "b", 101) == "invalid_vote"
    assert code_of(quiz.answer, SPEC, QuizState(), {"question": "one", "option": "b"}, 1) == (
        "not_open"
    )


def test_a_changed_answer_is_refused_but_a_retry_is_not():
    s = quiz.transition(SPEC, QuizState(), "ask", 0.0)
    t = Tally()
    first = quiz.answer(SPEC, s, {"question": "one", "option": "a"}, 1.0)
    assert t.apply("v1", first, "k1").status == "applied"
    assert t.apply("v1", first, "k1").status == "duplicate"
    changed = quiz.answer(SPEC, s, {"question": "one", "option": "b"}, 2.0)
    result = t.apply("v1", changed, "k2")
    assert result.status == "already_done"
    with pytest.raises(InteractionError) as err:
        result.check()
    assert err.value.code == "already_done"
    assert t.records["v1"]["option"] == "a"


def test_score_formula():
    q = SPEC.questions[0]  # 1000 points, 10 s
    assert quiz.score(q, "b", 0.0) == 1000
    assert quiz.score(q, "b", 5.0) == 750
    assert quiz.score(q, "b", 10.0) == 500
    assert quiz.score(q, "b", 99.0) == 500  # clamped
    assert quiz.score(q, "b", 0.001) == 1000  # 999.95 rounds half up
    assert quiz.score(q, "b", 3.33) == 834  # 1000 * (1 - 0.1665) = 833.5 -> 834
    assert quiz.score(q, "a", 0.0) == 0


def play(answers: dict[str, dict[str, tuple[str, float]]]) -> tuple[QuizState, dict[str, Any]]:
    """Ask both questions; answers[qid][viewer] = (option, seconds after the ask)."""
    state = QuizState()
    boxes: dict[str, Tally] = {}
    for qid, start in (("one", 0.0), ("two", 100.0)):
        state = quiz.transition(SPEC, state, "ask", start, qid)
        boxes[qid] = Tally()
        for viewer, (option, after) in answers.get(qid, {}).items():
            c = quiz.answer(SPEC, state, {"question": qid, "option": option}, start + after)
            boxes[qid].apply(viewer, c, "k").check()
        state = quiz.transition(SPEC, state, "close", start + 50)
    return state, {qid: t.records for qid, t in boxes.items()}


def test_leaderboard_counts_revealed_questions_only():
    state, records = play(
        {
            "one": {"ann": ("b", 2.0), "bob": ("b", 8.0), "cy": ("a", 0.5), "dee": ("b", 8.0)},
            "two": {"ann": ("c", 1.0), "bob": ("a", 0.0)},
        }
    )
    # "two" is current and not revealed: it must not count yet (it would leak the answer).
    board = quiz.leaderboard(SPEC, state, records)
    assert [(r["viewer"], r["points"]) for r in board] == [
        ("ann", 900),
        ("bob", 600),
        ("dee", 600),
        ("cy", 0),
    ]
    assert [r["rank"] for r in board] == [1, 2, 2, 4]
    state = quiz.transition(SPEC, state, "reveal", 200.0)
    board = quiz.leaderboard(SPEC, state, records, limit=2)
    assert board == [
        {"rank": 1, "viewer": "bob", "name": None, "points": 1100, "correct": 2, "time": 8.0},
        {"rank": 2, "viewer": "ann", "name": None, "points": 900, "correct": 1, "time": 2.0},
    ]


def test_leaderboard_rows_carry_the_name_the_answers_recorded():
    state, records = play({"one": {"ann": ("b", 2.0), "bob": ("a", 1.0)}})
    records["one"]["ann"] = {**records["one"]["ann"], "name": "安娜 <b>"}
    board = quiz.leaderboard(SPEC, state, records)
    assert {r["viewer"]: r["name"] for r in board} == {"ann": "安娜 <b>", "bob": None}


def test_question_results():
    state, records = play({"one": {"ann": ("b", 1.0), "bob": ("a", 1.0), "cy": ("b", 1.0)}})
    counters = recount(
        quiz.answer(
            SPEC,
            quiz.transition(SPEC, QuizState(), "ask", 0.0),
            {"question": "one", "option": r["option"]},
            1.0,
        )
        for r in records["one"].values()
    )
    out = quiz.question_results(SPEC, state, "one", counters)
    assert out["answers"] == 3 and out["correct"] == "b"  # "one" is no longer current
    assert [o["count"] for o in out["options"]] == [1, 2, 0]
    current = quiz.question_results(SPEC, state, "two", counters)
    assert current["correct"] is None and current["answers"] == 0
    assert code_of(quiz.question_results, SPEC, state, "zz", counters) == "unknown_target"


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["v1", "v2", "v3"]),
            st.sampled_from(["one", "two"]),
            st.sampled_from(["a", "b", "c"]),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_one_answer_per_viewer_per_question_and_exact_counters(ops):
    boxes = {"one": Tally(), "two": Tally()}
    first: dict[tuple[str, str], str] = {}
    both = QuizState(current=None, asked=("one", "two"))
    for i, (viewer, qid, option, retry) in enumerate(ops):
        state = QuizState(qid, 0.0, 10.0, False, both.asked)
        c = quiz.answer(SPEC, state, {"question": qid, "option": option}, 1.0)
        key = f"{viewer}-{qid}-first" if retry else f"k{i}"
        status = boxes[qid].apply(viewer, c, key).status
        if (viewer, qid) not in first:
            assert status == "applied"
            first[(viewer, qid)] = option
        else:
            assert status in ("duplicate", "already_done")
    for qid, t in boxes.items():
        assert {v: r["option"] for v, r in t.records.items()} == {
            v: o for (v, q), o in first.items() if q == qid
        }
    counters = merge_counters(*(t.counters for t in boxes.values()))
    expected: dict[str, int] = {}
    for (_, qid), option in first.items():
        expected[f"a:{qid}:{option}"] = expected.get(f"a:{qid}:{option}", 0) + 1
        expected[f"n:{qid}"] = expected.get(f"n:{qid}", 0) + 1
    assert counters == expected
