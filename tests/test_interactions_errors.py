"""Every error code of server.interactions is raised by some command, with that meaning."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from server.interactions import codesign, draws, polls, qa, quiz
from server.interactions.base import ERROR_NAMES, InteractionError, Option, Status, Tally

OPEN = Status("open", opened_at=0.0)
OPTS = (Option("a", "A"), Option("b", "B"), Option("c", "C"))
SINGLE = polls.PollSpec("p", "Q?", "single", OPTS)
MULTI = polls.PollSpec("m", "Q?", "multiple", OPTS, min_picks=2, max_picks=2)
TEXT = polls.PollSpec("t", "Q?", "text", max_text_chars=5)
QUIZ = quiz.QuizSpec("z", "Z", (quiz.QuizQuestion("q", "Q?", OPTS, "a"),))
DESIGN = codesign.DesignSpec(
    "d", "D", (codesign.Slot("s", "S", (codesign.DesignOption("x", "X", stock=0),)),)
)
DRAW = draws.DrawSpec("w", "W", source="presence")
DRAW_STATE = draws.open_draw(DRAW, bytes(32), 0.0)


def store_refusal(code: str) -> None:
    if code == "out_of_stock":
        c = codesign.pick(DESIGN, codesign.DesignState("open"), {"slot": "s", "option": "x"}, 1)
        Tally().apply("v", c, "k", codesign.caps(DESIGN)).check()
    else:
        t = Tally()
        c = qa.upvote(
            qa.QASpec("b", "B"),
            OPEN,
            {"q": qa.Question("q", "v", None, "hi", 0.0)},
            {"question": "q"},
            1.0,
        )
        t.apply("v", c, "k1")
        t.apply("v", c, "k2").check()


CASES: dict[str, Callable[[], object]] = {
    "invalid_field": lambda: polls.KIND.parse_spec({"id": "p"}),
    "text_too_long": lambda: polls.vote(TEXT, OPEN, {"text": "abcdef"}, 1),
    "empty_text": lambda: polls.vote(TEXT, OPEN, {"text": " "}, 1),
    "invalid_vote": lambda: polls.vote(SINGLE, OPEN, {"option": None}, 1),
    "unknown_option": lambda: polls.vote(SINGLE, OPEN, {"option": "z"}, 1),
    "unknown_target": lambda: quiz.answer(
        QUIZ, quiz.QuizState(), {"question": "x", "option": "a"}, 1
    ),
    "not_open": lambda: polls.vote(SINGLE, Status("closed"), {"option": "a"}, 1),
    "illegal_transition": lambda: polls.transition(SINGLE, Status(), "reveal", 1),
    "too_few_picks": lambda: polls.vote(MULTI, OPEN, {"options": ["a"]}, 1),
    "too_many_picks": lambda: polls.vote(MULTI, OPEN, {"options": ["a", "b", "c"]}, 1),
    "out_of_stock": lambda: store_refusal("out_of_stock"),
    "already_done": lambda: store_refusal("already_done"),
    "not_eligible": lambda: draws.enter(DRAW, DRAW_STATE, "v", 1.0),
    "no_entrants": lambda: draws.run_draw(DRAW, DRAW_STATE, [], 1.0),
    "limit_reached": lambda: qa.check_open_questions(
        qa.QASpec("b", "B", max_open_per_viewer=1),
        {"q": qa.Question("q", "v", None, "hi", 0.0)},
        "v",
        "q2",
    ),
}


def test_every_code_has_a_case():
    assert set(CASES) == ERROR_NAMES


@pytest.mark.parametrize("code", sorted(CASES))
def test_code_is_raised(code):
    with pytest.raises(InteractionError) as err:
        CASES[code]()
    assert err.value.code == code
    assert err.value.message  # says what was expected
