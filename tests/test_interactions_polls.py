"""server.interactions.polls with plain values, and the tally property (issue 4, acceptance 1).

For any interleaving of votes, changed votes, withdrawals and retried commands, the
counters equal a recount from the per-viewer records, and ranked and rating results
equal straightforward reference implementations written here.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.messages import clean_text
from server.interactions import polls
from server.interactions.base import InteractionError, Option, Status, Tally, dump, parse
from server.interactions.polls import PollSpec

IDS = ["a", "b", "c", "d"]
OPTIONS = tuple(Option(i, f"Option {i.upper()}") for i in IDS)
OPEN = Status("open", opened_at=0.0)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def setup_module() -> None:
    polls.warm_up()


def spec_of(kind: str, **kw: Any) -> PollSpec:
    options = OPTIONS if kind in ("single", "multiple", "ranked") else ()
    return PollSpec("p1", "Which one?", kind, options, **kw)  # type: ignore[arg-type]


def code_of(fn: Any, *args: Any) -> str:
    with pytest.raises(InteractionError) as err:
        fn(*args)
    return err.value.code


# --- specs and lifecycle ---------------------------------------------------------------


def test_spec_round_trips_and_validates():
    spec = spec_of(
        "multiple", min_picks=2, max_picks=3, duration_s=30, hide_results_until_reveal=True
    )
    assert parse(PollSpec, dump(spec)) == spec
    assert spec.picks == (2, 3)
    assert spec_of("ranked").picks == (1, 4)
    bad = [
        {"id": "p", "question": "q", "kind": "single", "options": [{"id": "a", "label": "A"}]},
        {
            "id": "p",
            "question": "q",
            "kind": "single",
            "options": [{"id": "a", "label": "A"}, {"id": "a", "label": "B"}],
        },
        {"id": "p", "question": "q", "kind": "poll"},
        {"id": "p q", "question": "q", "kind": "text"},
        {"id": "p", "question": "", "kind": "text"},
        {"id": "p", "question": "q", "kind": "rating", "scale": 7},
        {"id": "p", "question": "q", "kind": "rating", "duration_s": 0},
        {"id": "p", "question": "q", "kind": "text", "options": [{"id": "a", "label": "A"}]},
        {
            "id": "p",
            "question": "q",
            "kind": "multiple",
            "min_picks": 3,
            "max_picks": 2,
            "options": [
                {"id": "a", "label": "A"},
                {"id": "b", "label": "B"},
                {"id": "c", "label": "C"},
            ],
        },
        {"id": "p", "question": "q", "kind": "text", "hide_results_until_reveal": "yes"},
        "not a map",
    ]
    for obj in bad:
        assert code_of(parse, PollSpec, obj) == "invalid_field", obj


def test_lifecycle_with_countdown_closes_by_itself():
    spec = spec_of("single", duration_s=10)
    status = polls.transition(spec, Status(), "open", 100.0)
    assert status.closes_at == 110.0
    polls.vote(spec, status, {"option": "a"}, 109.9)
    assert code_of(polls.vote, spec, status, {"option": "a"}, 110.0) == "not_open"
    assert polls.transition(spec, status, "close", 120.0).closed_at == 110.0
    assert polls.transition(spec, status, "reveal", 120.0).phase == "revealed"
    assert code_of(polls.transition, spec, Status(), "reveal", 1.0) == "illegal_transition"


@pytest.mark.parametrize("phase", ["draft", "closed", "revealed"])
def test_votes_need_an_open_poll(phase):
    assert code_of(polls.vote, spec_of("single"), Status(phase), {"option": "a"}, 1.0) == (
        "not_open"
    )


# --- ballots -------------------------------------------------------------------------------


def test_single():
    c = polls.vote(spec_of("single"), OPEN, {"option": "b"}, 1.5)
    assert c.deltas == {"o:b": 1, "n": 1} and c.record == {"option": "b", "at": 1.5}
    assert not c.once and c.box == ""
    assert code_of(polls.vote, spec_of("single"), OPEN, {"option": "z"}, 1) == "unknown_option"
    assert code_of(polls.vote, spec_of("single"), OPEN, {"option": 1}, 1) == "invalid_vote"
    assert code_of(polls.vote, spec_of("single"), OPEN, ["a"], 1) == "invalid_vote"


def test_multiple():
    spec = spec_of("multiple", min_picks=2, max_picks=3)
    c = polls.vote(spec, OPEN, {"options": ["c", "a"]}, 1)
    assert c.deltas == {"o:a": 1, "o:c": 1, "n": 1}
    assert c.record["options"] == ["a", "c"]  # spec order
    assert code_of(polls.vote, spec, OPEN, {"options": ["a"]}, 1) == "too_few_picks"
    assert code_of(polls.vote, spec, OPEN, {"options": IDS}, 1) == "too_many_picks"
    assert code_of(polls.vote, spec, OPEN, {"options": ["a", "a"]}, 1) == "invalid_vote"
    assert code_of(polls.vote, spec, OPEN, {"options": ["a", "x"]}, 1) == "unknown_option"
    assert code_of(polls.vote, spec, OPEN, {"options": "a"}, 1) == "invalid_vote"


def test_ranked_borda_points():
    spec = spec_of("ranked")
    c = polls.vote(spec, OPEN, {"ranking": ["c", "a", "d"]}, 1)
    # m = 4 options: 3, 2, 1 points; unranked b gets 0.
    assert c.deltas == {"b:c": 3, "b:a": 2, "b:d": 1, "f:c": 1, "n": 1}
    full = polls.vote(spec, OPEN, {"ranking": ["d", "c", "b", "a"]}, 1)
    assert full.deltas == {"b:d": 3, "b:c": 2, "b:b": 1, "f:d": 1, "n": 1}
    assert code_of(polls.vote, spec, OPEN, {"ranking": []}, 1) == "too_few_picks"
    assert code_of(polls.vote, spec, OPEN, {"ranking": ["a", "b", "a"]}, 1) == "invalid_vote"
    strict = spec_of("ranked", min_picks=4)
    assert code_of(polls.vote, strict, OPEN, {"ranking": ["a", "b"]}, 1) == "too_few_picks"
    capped = spec_of("ranked", max_picks=2)
    assert code_of(polls.vote, capped, OPEN, {"ranking": ["a", "b", "c"]}, 1) == ("too_many_picks")


def test_rating():
    spec = spec_of("rating", scale=10)
    assert polls.vote(spec, OPEN, {"rating": 7}, 1).deltas == {"r:7": 1, "sum": 7, "n": 1}
    for bad in (0, 11, 2.5, True, "5", None):
        assert code_of(polls.vote, spec, OPEN, {"rating": bad}, 1) == "invalid_vote", bad
    assert code_of(polls.vote, spec_of("rating"), OPEN, {"rating": 6}, 1) == "invalid_vote"


def test_text_terms_are_chinese_words_not_characters():
    spec = spec_of("text", max_text_chars=50)
    c = polls.vote(spec, OPEN, {"text": "  我想要番茄酱和芝士，汉堡太好吃了！  "}, 1)
    terms = c.record["terms"]
    assert {"番茄酱", "芝士", "汉堡", "好吃"} <= set(terms)
    assert "番" not in terms and "的" not in terms and "和" not in terms
    assert c.deltas == {**{f"t:{t}": 1 for t in terms}, "n": 1}
    assert c.record["text"] == "我想要番茄酱和芝士，汉堡太好吃了！"
    english = polls.terms("The RED scarf, the red scarf!!! a 666 Ｂｕｒｇｅｒ")
    assert english == ["red", "scarf", "666", "burger"]
    assert polls.terms("的了 the a") == []
    assert code_of(polls.vote, spec, OPEN, {"text": "   "}, 1) == "empty_text"
    assert code_of(polls.vote, spec, OPEN, {"text": "x" * 51}, 1) == "text_too_long"
    assert code_of(polls.vote, spec, OPEN, {"text": 5}, 1) == "invalid_vote"


def test_terms_are_bounded():
    many = " ".join(f"word{i}" for i in range(100)) + " " + "x" * 40
    found = polls.terms(many)
    assert len(found) == polls.MAX_TERMS_PER_ANSWER
    assert all(len(t) <= polls.MAX_TERM_CHARS for t in found)


# --- results ---------------------------------------------------------------------------------


def tally_of(spec: PollSpec, ballots: list[dict[str, Any]]) -> Tally:
    t = Tally()
    for i, ballot in enumerate(ballots):
        t.apply(f"v{i}", polls.vote(spec, OPEN, ballot, float(i)), "k")
    return t


def test_single_and_multiple_results():
    spec = spec_of("single")
    t = tally_of(spec, [{"option": "a"}, {"option": "a"}, {"option": "c"}, {"option": "a"}])
    out = polls.results(spec, t.counters)
    assert out["voters"] == 4
    assert [(o["id"], o["count"], o["share"]) for o in out["options"]] == [
        ("a", 3, 0.75),
        ("b", 0, 0.0),
        ("c", 1, 0.25),
        ("d", 0, 0.0),
    ]
    mspec = spec_of("multiple")
    t = tally_of(mspec, [{"options": ["a", "b"]}, {"options": ["a"]}])
    shares = {o["id"]: o["share"] for o in polls.results(mspec, t.counters)["options"]}
    assert shares == {"a": 1.0, "b": 0.5, "c": 0.0, "d": 0.0}
    empty = polls.results(spec, {})
    assert empty["voters"] == 0 and all(o["share"] == 0.0 for o in empty["options"])


def test_rating_and_text_results():
    spec = spec_of("rating")
    t = tally_of(spec, [{"rating": 5}, {"rating": 4}, {"rating": 4}])
    out = polls.results(spec, t.counters)
    assert out["mean"] == 4.333
    assert [h["count"] for h in out["histogram"]] == [0, 0, 0, 2, 1]
    assert polls.results(spec, {})["mean"] is None
    tspec = spec_of("text")
    t = tally_of(tspec, [{"text": "红色围巾"}, {"text": "红色 帽子"}, {"text": "帽子 红色"}])
    out = polls.results(tspec, t.counters, top_terms=2)
    assert out["terms"] == [{"term": "红色", "count": 3}, {"term": "帽子", "count": 2}]


def test_instant_runoff_transfers_and_tie_breaks():
    spec = spec_of("ranked")
    ballots = [["a", "b"]] * 4 + [["b", "a"]] * 3 + [["c", "b"]] * 2 + [["d"]] * 1
    out = polls.instant_runoff(spec, ballots)
    # d is eliminated (exhausting its ballot), then c (its votes go to b), then b wins.
    assert [r["eliminated"] for r in out["rounds"]] == ["d", "c", None]
    assert out["winner"] == "b"
    assert out["rounds"][1]["exhausted"] == 1
    # Tie for fewest: c and d have 1 vote each; c has the lower Borda total (3+1 < 2+3),
    # though listed earlier.
    out = polls.instant_runoff(spec, [["a"], ["a"], ["b"], ["b"], ["c", "d"], ["d", "b", "c"]])
    assert out["rounds"][0]["eliminated"] == "c"
    # Full tie (same votes, same Borda): the option listed later goes first.
    out = polls.instant_runoff(spec, [["a"], ["b"]])
    assert [r["eliminated"] for r in out["rounds"]] == ["d", "c", "b", None]
    assert out["winner"] == "a"
    assert polls.instant_runoff(spec, []) == {"winner": None, "rounds": []}


def test_visible_results_hide_until_reveal():
    spec = spec_of("single", hide_results_until_reveal=True)
    t = tally_of(spec, [{"option": "a"}])
    hidden = polls.visible_results(spec, OPEN, t.counters, now=1.0)
    assert hidden == {"poll": "p1", "kind": "single", "voters": 1, "hidden": True}
    closed = Status("closed", opened_at=0.0, closed_at=2.0)
    assert polls.visible_results(spec, closed, t.counters, now=3.0)["hidden"] is True
    shown = polls.visible_results(spec, Status("revealed"), t.counters, now=3.0)
    assert shown["hidden"] is False and shown["options"][0]["count"] == 1
    open_spec = spec_of("single")
    assert polls.visible_results(open_spec, OPEN, t.counters, now=1.0)["hidden"] is False


# --- the property: tallies equal recounts, results equal references ----------------------


def recount_from_records(spec: PollSpec, records: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Count the records the plain way, from what each record says."""
    count: Counter[str] = Counter()
    m = len(spec.options)
    for record in records.values():
        count["n"] += 1
        if spec.kind == "single":
            count["o:" + record["option"]] += 1
        elif spec.kind == "multiple":
            for option in record["options"]:
                count["o:" + option] += 1
        elif spec.kind == "ranked":
            ranking = record["ranking"]
            for place, option in enumerate(ranking):
                count["b:" + option] += m - 1 - place
            count["f:" + ranking[0]] += 1
        elif spec.kind == "rating":
            count[f"r:{record['rating']}"] += 1
            count["sum"] += record["rating"]
        else:
            assert record["terms"] == polls.terms(record["text"])
            for term in set(record["terms"]):
                count["t:" + term] += 1
    return {k: v for k, v in count.items() if v}


def reference_irv(order: list[str], ballots: list[list[str]]) -> str | None:
    m = len(order)
    borda = {o: sum(m - 1 - b.index(o) for b in ballots if o in b) for o in order}
    remaining = list(order)
    while True:
        votes = dict.fromkeys(remaining, 0)
        for ballot in ballots:
            top = next((o for o in ballot if o in remaining), None)
            if top is not None:
                votes[top] += 1
        total = sum(votes.values())
        if total == 0:
            return None
        for option in remaining:
            if votes[option] * 2 > total:
                return option
        if len(remaining) == 1:
            return remaining[0]
        fewest = min(votes.values())
        tied = [o for o in remaining if votes[o] == fewest]
        lowest = min(borda[o] for o in tied)
        remaining.remove([o for o in tied if borda[o] == lowest][-1])


TEXTS = [
    "红色围巾真好看",
    "I love the red scarf",
    "汉堡 汉堡 番茄酱",
    "666",
    "的",
    "",
    "  ",
    "Red SCARF 红色",
    "x" * 300,
]
BALLOTS = {
    "single": st.sampled_from([*IDS, "zz"]).map(lambda o: {"option": o}),
    "multiple": st.lists(st.sampled_from([*IDS, "zz"]), max_size=5).map(lambda os: {"options": os}),
    "ranked": st.lists(st.sampled_from(IDS), max_size=5).map(lambda r: {"ranking": r}),
    "rating": st.integers(0, 6).map(lambda k: {"rating": k}),
    "text": st.one_of(st.sampled_from(TEXTS), st.text(max_size=30)).map(lambda s: {"text": s}),
}
VIEWERS = st.sampled_from([f"v{i}" for i in range(6)])


def ops_for(kind: str) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    return st.lists(
        st.one_of(
            st.tuples(st.just("vote"), VIEWERS, BALLOTS[kind]),
            st.tuples(st.just("retry"), st.integers(0, 40)),
            st.tuples(st.just("remove"), VIEWERS),
        ),
        max_size=40,
    )


@pytest.mark.parametrize("kind", ["single", "multiple", "ranked", "rating", "text"])
def test_tally_equals_recount_for_any_interleaving(kind):
    spec = spec_of(kind, min_picks=1, max_picks=3) if kind == "multiple" else spec_of(kind)

    @PROPERTY
    @given(ops=ops_for(kind))
    def run(ops: list[tuple[Any, ...]]) -> None:
        tally = Tally()
        sent: list[tuple[str, dict[str, Any], str]] = []  # commands as the client sent them
        expected: dict[str, dict[str, Any]] = {}  # viewer -> ballot of its last applied vote
        for step, op in enumerate(ops):
            now = float(step)
            if op[0] == "remove":
                tally.remove(op[1])
                expected.pop(op[1], None)
                continue
            if op[0] == "vote":
                viewer, ballot, key = op[1], op[2], f"k{step}"
                sent.append((viewer, ballot, key))
            elif sent:
                viewer, ballot, key = sent[op[1] % len(sent)]
            else:
                continue
            try:
                contribution = polls.vote(spec, OPEN, ballot, now)
            except InteractionError:
                continue
            result = tally.apply(viewer, contribution, key)
            assert result.status in ("applied", "duplicate")
            if result.status == "applied":
                expected[viewer] = ballot
            assert tally.counters == recount_from_records(spec, tally.records)
        assert set(tally.records) == set(expected)
        for viewer, ballot in expected.items():
            record = tally.records[viewer]
            if kind == "multiple":
                assert sorted(record["options"]) == sorted(ballot["options"])
            elif kind == "text":
                assert record["text"] == clean_text(ballot["text"])
            else:
                key = {"single": "option", "ranked": "ranking", "rating": "rating"}[kind]
                assert record[key] == ballot[key]
        check_results(spec, tally)

    run()


def check_results(spec: PollSpec, tally: Tally) -> None:
    records = list(tally.records.values())
    out = polls.results(spec, tally.counters, records)
    assert out["voters"] == len(records)
    if spec.kind == "ranked":
        rankings = [r["ranking"] for r in records]
        m = len(IDS)
        borda = {o: sum(m - 1 - r.index(o) for r in rankings if o in r) for o in IDS}
        firsts = {o: sum(1 for r in rankings if r[0] == o) for o in IDS}
        assert {o["id"]: o["points"] for o in out["options"]} == borda
        assert {o["id"]: o["first"] for o in out["options"]} == firsts
        assert out["order"] == sorted(IDS, key=lambda o: (-borda[o], IDS.index(o)))
        assert out["irv"]["winner"] == reference_irv(IDS, rankings)
    elif spec.kind == "rating":
        ratings = [r["rating"] for r in records]
        expected_mean = round(statistics.mean(ratings), 3) if ratings else None
        assert out["mean"] == expected_mean
        assert [h["count"] for h in out["histogram"]] == [ratings.count(k) for k in range(1, 6)]


@PROPERTY
@given(
    rankings=st.lists(
        st.permutations(IDS).flatmap(lambda p: st.integers(1, len(p)).map(lambda k: list(p[:k]))),
        max_size=60,
    )
)
def test_instant_runoff_matches_the_reference(rankings):
    out = polls.instant_runoff(spec_of("ranked"), rankings)
    assert out["winner"] == reference_irv(IDS, rankings)
    for r in out["rounds"]:
        assert sum(r["counts"].values()) + r["exhausted"] == len(rankings)
