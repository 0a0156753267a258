"""server.interactions.base: the reference Tally, the lifecycle, the error table."""

from __future__ import annotations

import pytest

from protocol.codes import ERROR_BY_NAME
from server.interactions.base import (
    ERROR_NAMES,
    INTERACTION_ERRORS,
    REUSED_ERRORS,
    Contribution,
    InteractionError,
    Status,
    Tally,
    box_key,
    dump,
    merge_counters,
    parse,
    recount,
    refusal,
    transition,
)


def c(deltas: dict[str, int], once: bool = False, **record: object) -> Contribution:
    return Contribution(dict(record), deltas, once=once)


def test_apply_replaces_the_previous_contribution_of_the_viewer():
    t = Tally()
    assert t.apply("v1", c({"o:a": 1, "n": 1}, option="a"), "k1").status == "applied"
    assert t.apply("v2", c({"o:a": 1, "n": 1}, option="a"), "k1").status == "applied"
    result = t.apply("v1", c({"o:b": 1, "n": 1}, option="b"), "k2")
    assert result.status == "applied"
    assert t.counters == {"o:a": 1, "o:b": 1, "n": 2} == result.counters
    assert t.records == {"v1": {"option": "b"}, "v2": {"option": "a"}}


def test_a_retried_key_is_a_duplicate_even_after_a_later_change():
    t = Tally()
    first = t.apply("v1", c({"o:a": 1}), "k1")
    t.apply("v1", c({"o:b": 1}), "k2")
    again = t.apply("v1", c({"o:a": 1}), "k1")
    assert again.status == "duplicate" and again.version == first.version
    assert t.counters == {"o:b": 1}


def test_keys_are_scoped_per_viewer():
    t = Tally()
    t.apply("v1", c({"n": 1}), "same")
    assert t.apply("v2", c({"n": 1}), "same").status == "applied"
    assert t.counters == {"n": 2}


def test_caps_refuse_only_a_rise_past_the_cap_and_change_nothing():
    t = Tally()
    caps = {"s:x": 2}
    assert t.apply("v1", c({"s:x": 1}), "k", caps).status == "applied"
    assert t.apply("v2", c({"s:x": 1}), "k", caps).status == "applied"
    refused = t.apply("v3", c({"s:x": 1}), "k", caps)
    assert refused.status == "capped" and refused.capped_field == "s:x"
    assert t.counters == {"s:x": 2} and "v3" not in t.records
    # Re-picking what one holds does not rise: allowed at the cap.
    assert t.apply("v1", c({"s:x": 1}), "k2", caps).status == "applied"
    # A refused key is not remembered: once stock frees up its retry goes through.
    t.apply("v2", c({"s:y": 1}), "k2", caps)
    assert t.apply("v3", c({"s:x": 1}), "k", caps).status == "applied"
    assert t.counters == {"s:x": 2, "s:y": 1}
    with pytest.raises(InteractionError) as err:
        refused.check()
    assert err.value.code == "out_of_stock" and err.value.extra["field"] == "s:x"


def test_once_refuses_a_second_contribution_but_not_a_retry():
    t = Tally()
    t.apply("v1", c({"n": 1}, once=True, at=1), "k1")
    assert t.apply("v1", c({"n": 1}, once=True, at=2), "k1").status == "duplicate"
    second = t.apply("v1", c({"n": 1}, once=True, at=3), "k2")
    assert second.status == "already_done"
    assert t.records == {"v1": {"at": 1}} and t.counters == {"n": 1}
    with pytest.raises(InteractionError) as err:
        second.check()
    assert err.value.code == "already_done"
    assert refusal("applied") is None and refusal("duplicate") is None


def test_remove_withdraws_and_keeps_keys():
    t = Tally()
    t.apply("v1", c({"q:1": 1}), "k1")
    assert t.remove("v1") == {}
    assert t.remove("v1") is None
    assert t.counters == {} and t.records == {}
    assert t.apply("v1", c({"q:1": 1}), "k1").status == "duplicate"
    assert t.counters == {}
    assert t.apply("v1", c({"q:1": 1}), "k2").status == "applied"


def test_version_counts_changes_only():
    t = Tally()
    t.apply("v1", c({"n": 1}), "k1")
    t.apply("v1", c({"n": 1}), "k1")
    t.apply("v1", c({"n": 1}, once=True), "k2")
    t.remove("v1")
    t.remove("v1")
    assert t.version == 2


def test_recount_and_helpers():
    parts = [c({"a": 1, "b": 2}), c({"a": -1, "c": 1})]
    assert recount(parts) == {"b": 2, "c": 1}
    assert merge_counters({"s1:a": 1}, {"s2:b": 2}) == {"s1:a": 1, "s2:b": 2}
    assert merge_counters({"t:x": 2, "n": 1}, {"t:x": 1}) == {"t:x": 3, "n": 1}
    assert box_key("quiz1", "") == "quiz1" and box_key("quiz1", "q2") == "quiz1/q2"


def test_lifecycle_moves_forward_only():
    s = Status()
    opened = transition(s, "open", 10.0, duration_s=30)
    assert opened == Status("open", opened_at=10.0, closes_at=40.0)
    assert opened.is_open(39.9) and not opened.is_open(40.0)
    closed = transition(opened, "close", 20.0)
    assert closed.phase == "closed" and closed.closed_at == 20.0
    revealed = transition(closed, "reveal", 25.0)
    assert revealed.phase == "revealed" and revealed.revealed_at == 25.0
    assert parse(Status, dump(revealed)) == revealed


@pytest.mark.parametrize(
    ("phase", "action"),
    [
        ("draft", "close"),
        ("draft", "reveal"),
        ("open", "reveal"),
        ("closed", "open"),
        ("revealed", "open"),
        ("revealed", "close"),
    ],
)
def test_illegal_transitions(phase, action):
    with pytest.raises(InteractionError) as err:
        transition(Status(phase), action, 1.0)
    assert err.value.code == "illegal_transition"


def test_repeated_actions_and_close_after_the_countdown_are_no_ops():
    opened = transition(Status(), "open", 0.0, duration_s=5)
    assert transition(opened, "open", 1.0) == opened
    auto = transition(opened, "close", 9.0)
    assert auto.phase == "closed" and auto.closed_at == 5.0
    assert transition(auto, "close", 10.0) == auto
    with pytest.raises(InteractionError) as err:
        transition(opened, "explode", 1.0)
    assert err.value.code == "invalid_field"


def test_error_table():
    names = [e.name for e in INTERACTION_ERRORS]
    assert len(set(names)) == len(names)
    for e in INTERACTION_ERRORS:  # once protocol/codes.py lists them, they must agree
        if e.name in ERROR_BY_NAME:
            assert ERROR_BY_NAME[e.name].retry == e.retry, e.name
    assert set(REUSED_ERRORS) <= set(ERROR_BY_NAME)
    assert all(not e.retry for e in INTERACTION_ERRORS)
    assert ERROR_NAMES == set(names) | set(REUSED_ERRORS)
    with pytest.raises(AssertionError):
        InteractionError("no_such_code", "x")
