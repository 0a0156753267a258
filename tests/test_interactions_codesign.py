"""server.interactions.codesign: picks per slot, locks, stock caps, tie-break, rounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.interactions import codesign
from server.interactions.base import InteractionError, Tally, dump, merge_counters, parse
from server.interactions.codesign import DesignOption, DesignSpec, DesignState, Slot, SlotRule

BURGER = DesignSpec(
    "burger",
    "Our burger",
    (
        Slot(
            "bun",
            "Bun",
            (
                DesignOption("sesame", "Sesame", "/img/sesame.png"),
                DesignOption("brioche", "Brioche"),
            ),
        ),
        Slot(
            "patty",
            "Patty",
            (
                DesignOption("beef", "Beef", stock=2),
                DesignOption("veggie", "Veggie", stock=1),
                DesignOption("chicken", "Chicken"),
            ),
        ),
        Slot("sauce", "Sauce", (DesignOption("ketchup", "番茄酱"), DesignOption("mayo", "Mayo"))),
    ),
)
OPEN = DesignState("open", opened_at=0.0)


def code_of(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(InteractionError) as err:
        fn(*args, **kw)
    return err.value.code


class Session:
    """A design with one Tally per slot, applied as a store would."""

    def __init__(self, spec: DesignSpec = BURGER) -> None:
        self.spec = spec
        self.state = DesignState()
        self.boxes = {s.id: Tally() for s in spec.slots}
        self.n = 0

    def host(self, action: str, slot: str | None = None) -> None:
        self.state = codesign.transition(self.spec, self.state, action, 1.0, slot)

    def pick(self, viewer: str, slot: str, option: str, key: str | None = None) -> str:
        self.n += 1
        c = codesign.pick(self.spec, self.state, {"slot": slot, "option": option}, 2.0)
        result = self.boxes[c.box].apply(viewer, c, key or f"k{self.n}", codesign.caps(self.spec))
        result.check()
        return result.status

    @property
    def counters(self) -> dict[str, int]:
        return merge_counters(*(t.counters for t in self.boxes.values()))


def test_spec_round_trips_and_validates():
    assert parse(DesignSpec, dump(BURGER)) == BURGER
    assert codesign.caps(BURGER) == {"patty:beef": 2, "patty:veggie": 1}
    bad_url = {"id": "o", "label": "O", "image_url": "javascript:alert(1)"}
    assert code_of(parse, DesignOption, bad_url) == "invalid_field"
    assert code_of(parse, DesignOption, {"id": "o", "label": "O", "stock": -1}) == ("invalid_field")
    assert code_of(parse, Slot, {"id": "s", "label": "S", "options": []}) == "invalid_field"
    twice = dump(BURGER)
    twice["slots"][1]["id"] = "bun"
    assert code_of(parse, DesignSpec, twice) == "invalid_field"
    state = DesignState("open", ("bun",), 1.0)
    assert parse(DesignState, dump(state)) == state


def test_picks_change_while_open_and_stop_when_locked():
    s = Session()
    assert code_of(s.pick, "v1", "bun", "sesame") == "not_open"  # draft
    s.host("open")
    s.pick("v1", "bun", "sesame")
    s.pick("v1", "bun", "brioche")  # changed: replaces
    s.pick("v1", "sauce", "mayo")
    assert s.counters == {"bun:brioche": 1, "sauce:mayo": 1}
    s.host("lock", "bun")
    assert code_of(s.pick, "v1", "bun", "sesame") == "not_open"
    assert code_of(codesign.unpick, BURGER, s.state, {"slot": "bun"}, 3.0) == "not_open"
    s.pick("v2", "sauce", "ketchup")  # other slots still open
    assert codesign.unpick(BURGER, s.state, {"slot": "sauce"}, 3.0) == "sauce"
    s.boxes["sauce"].remove("v2")
    assert s.counters == {"bun:brioche": 1, "sauce:mayo": 1}
    assert code_of(s.pick, "v1", "lid", "x") == "unknown_target"
    assert code_of(s.pick, "v1", "sauce", "mustard") == "unknown_option"
    assert code_of(codesign.pick, BURGER, s.state, {"slot": "sauce"}, 3.0) == "invalid_vote"
    assert code_of(codesign.pick, BURGER, s.state, {"option": "mayo"}, 3.0) == "invalid_vote"


def test_lock_one_by_one_closes_the_design_then_reveal():
    s = Session()
    assert code_of(s.host, "lock", "bun") == "illegal_transition"
    assert code_of(s.host, "reveal") == "illegal_transition"
    s.host("open")
    assert code_of(s.host, "reveal") == "illegal_transition"
    assert code_of(s.host, "lock", "lid") == "unknown_target"
    assert code_of(s.host, "lock") == "unknown_target"
    s.host("lock", "sauce")
    s.host("lock", "sauce")
    s.host("lock", "bun")
    assert s.state.phase == "open" and s.state.locked == ("bun", "sauce")
    s.host("lock", "patty")
    assert s.state.phase == "closed" and s.state.locked == ("bun", "patty", "sauce")
    s.host("lock_all")
    s.host("reveal")
    assert s.state.phase == "revealed"
    assert code_of(s.host, "open") == "illegal_transition"
    assert code_of(s.host, "melt") == "invalid_field"
    t = Session()
    t.host("open")
    t.host("lock_all")
    assert t.state.phase == "closed" and len(t.state.locked) == 3


def test_stock_caps_refuse_and_free_units():
    s = Session()
    s.host("open")
    s.pick("v1", "patty", "veggie")
    assert code_of(s.pick, "v2", "patty", "veggie") == "out_of_stock"
    s.pick("v1", "patty", "veggie", key="again")  # re-picking one's own unit is fine
    s.pick("v1", "patty", "beef")  # frees the veggie unit
    s.pick("v2", "patty", "veggie")
    s.pick("v3", "patty", "beef")
    assert code_of(s.pick, "v4", "patty", "beef") == "out_of_stock"
    out = codesign.results(BURGER, s.state, s.counters)
    patty = {o["id"]: o for o in out["slots"][1]["options"]}
    assert (patty["beef"]["count"], patty["beef"]["left"]) == (2, 0)
    assert (patty["veggie"]["count"], patty["veggie"]["left"]) == (1, 0)
    assert patty["chicken"]["left"] is None


def test_shares_and_final_design_tie_break():
    s = Session()
    s.host("open")
    for viewer, option in [
        ("v1", "brioche"),
        ("v2", "sesame"),
        ("v3", "brioche"),
        ("v4", "sesame"),
    ]:
        s.pick(viewer, "bun", option)
    s.pick("v1", "patty", "chicken")
    out = codesign.results(BURGER, s.state, s.counters)
    bun = out["slots"][0]
    assert bun["picks"] == 4 and [o["share"] for o in bun["options"]] == [0.5, 0.5]
    assert bun["leader"] == "sesame"  # a 2-2 tie: the option listed first wins
    final = codesign.final_design(BURGER, s.counters)
    assert [(x["slot"], x["option"], x["count"]) for x in final["slots"]] == [
        ("bun", "sesame", 2),
        ("patty", "chicken", 1),
        ("sauce", "ketchup", 0),
    ]
    assert final["slots"][0]["image_url"] == "/img/sesame.png"
    s.pick("v5", "bun", "brioche")
    assert codesign.final_design(BURGER, s.counters)["slots"][0]["option"] == "brioche"


def test_next_round_derives_options_from_the_previous_one():
    colours = DesignSpec(
        "r1",
        "Colours",
        (
            Slot(
                "colour",
                "Colour",
                tuple(DesignOption(c, c) for c in ("red", "blue", "green", "black")),
            ),
            Slot("size", "Size", (DesignOption("s", "S"), DesignOption("l", "L"))),
        ),
    )
    counters = {"colour:red": 5, "colour:blue": 9, "colour:green": 5, "size:l": 1}
    rules = [
        SlotRule("runoff", "Final colour", after="colour", top=3),
        parse(
            SlotRule,
            {
                "id": "scarf",
                "label": "Scarf",
                "after": "colour",
                "by_pick": {
                    "blue": [
                        {"id": "navy", "label": "Navy scarf"},
                        {"id": "sky", "label": "Sky scarf"},
                    ]
                },
                "options": [{"id": "plain", "label": "Plain scarf"}],
            },
        ),
        SlotRule(
            "brooch",
            "Brooch",
            after="size",
            by_pick={"s": (DesignOption("tiny", "Tiny"),)},
            options=(DesignOption("big", "Big"),),
        ),
        SlotRule("fixed", "Box", options=(DesignOption("gift", "Gift box"),)),
    ]
    nxt = codesign.next_round(colours, counters, id="r2", title="Accessories", rules=rules)
    assert nxt.round == 2 and nxt.previous == "r1"
    assert [[o.id for o in s.options] for s in nxt.slots] == [
        ["blue", "red", "green"],
        ["navy", "sky"],
        ["big"],
        ["gift"],
    ]
    assert (
        code_of(
            codesign.next_round,
            colours,
            counters,
            id="r2",
            title="x",
            rules=[SlotRule("x", "X", after="nope", top=1)],
        )
        == "invalid_field"
    )
    assert (
        code_of(
            codesign.next_round,
            colours,
            counters,
            id="r2",
            title="x",
            rules=[SlotRule("x", "X", after="size")],
        )
        == "invalid_field"
    )
    assert code_of(SlotRule, "x", "X", top=2) == "invalid_field"


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(
                st.just("pick"),
                st.sampled_from(["v1", "v2", "v3", "v4"]),
                st.sampled_from(["bun", "patty", "sauce"]),
                st.sampled_from(["sesame", "brioche", "beef", "veggie", "chicken", "ketchup"]),
            ),
            st.tuples(st.just("retry"), st.integers(0, 50)),
            st.tuples(
                st.just("unpick"),
                st.sampled_from(["v1", "v2", "v3", "v4"]),
                st.sampled_from(["bun", "patty", "sauce"]),
            ),
        ),
        max_size=40,
    )
)
def test_counters_equal_a_recount_and_never_pass_the_stock(ops):
    s = Session()
    s.host("open")
    sent: list[tuple[str, str, str, str]] = []
    caps = codesign.caps(BURGER)
    for i, op in enumerate(ops):
        if op[0] == "unpick":
            s.boxes[op[2]].remove(op[1])
        else:
            if op[0] == "pick":
                sent.append((op[1], op[2], op[3], f"k{i}"))
                viewer, slot, option, key = sent[-1]
            elif sent:
                viewer, slot, option, key = sent[op[1] % len(sent)]
            else:
                continue
            before = s.counters
            try:
                s.pick(viewer, slot, option, key)
            except InteractionError as err:
                assert err.code in ("unknown_option", "out_of_stock")
                assert s.counters == before
        recounted: dict[str, int] = {}
        for slot_id, tally in s.boxes.items():
            for record in tally.records.values():
                assert record["slot"] == slot_id
                name = f"{slot_id}:{record['option']}"
                recounted[name] = recounted.get(name, 0) + 1
        assert s.counters == recounted
        assert all(s.counters.get(name, 0) <= cap for name, cap in caps.items())
