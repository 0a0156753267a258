"""Each kind through the one shape every kind has (server/interactions/kind.py), with
plain values: a Context of what the store would return, no store, no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from server.draw_verification import verify_audit
from server.interactions import checkin, codesign, draws, polls, qa, reactions, wall
from server.interactions.base import (
    PRESENCE_BOX,
    Contribution,
    InteractionError,
    Status,
    Tally,
    box_key,
)
from server.interactions.kind import (
    UNCHANGED,
    Audience,
    Context,
    Data,
    Definition,
    Kind,
    Viewer,
    ViewerCommand,
    Write,
)
from server.interactions.registry import BUILT_IN, Registry

NOW = 1_000.0
ANN = Viewer("v-ann", "Ann")
BO = Viewer("v-bo", "Bo")


class Boxes:
    """A store in miniature: one reference Tally per box, read as Data."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}

    def apply(self, write: Write) -> Any:
        tally = self.tallies.setdefault(write.box, Tally())
        if write.record is None:
            tally.remove(write.holder)
            return None
        made = Contribution(write.record, dict(write.deltas), once=write.once)
        return tally.apply(write.holder, made, write.key or f"k{tally.version}", write.caps)

    def data(self) -> Data:
        return Data(
            {box: t.counters for box, t in self.tallies.items()},
            {box: t.records for box, t in self.tallies.items()},
        )

    def context(self, definitions: dict[str, Definition] | None = None, **settings: Any) -> Context:
        return Context(NOW, settings, definitions or {}, self.data())


def made(kind: Kind[Any, Any], spec: dict[str, Any], state: Any = None) -> Definition:
    parsed = kind.parse_spec(spec)
    first = kind.first_state(parsed, NOW - 10, bytes(32)) if state is None else state
    return Definition(parsed.id, kind.name, parsed, first, NOW - 10)


def acted(
    kind: Kind[Any, Any], d: Definition, action: str, ctx: Context, **fields: Any
) -> Definition:
    change = kind.act(action, d, {"interaction": d.id, **fields}, ctx)
    state = d.state if change.state is UNCHANGED else change.state
    return Definition(d.id, d.kind, d.spec, state, d.created_at, change.audit or d.audit)


def test_every_kind_declares_the_same_shape():
    registry = Registry()
    for kind in registry:
        assert kind.spec_type and kind.state_type, kind.name
        assert kind.ops or kind.actions, kind.name
        ops = {op.name for op in kind.ops}
        assert all(registry.op(op)[0] is kind for op in ops)  # type: ignore[index]
    assert set(registry.builtins()) == {"checkin", "wall", "reactions"}
    with pytest.raises(ValueError, match="taken"):
        registry.add(BUILT_IN[0])


def test_a_poll_vote_is_a_write_of_one_ballot_with_the_voter_s_name():
    kind = polls.KIND
    d = made(
        kind,
        {
            "id": "p",
            "question": "Q?",
            "kind": "single",
            "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
        },
    )
    boxes = Boxes()
    with pytest.raises(InteractionError) as closed:
        kind.command(ViewerCommand("vote", d, {"option": "a"}, ANN, "k1"), boxes.context())
    assert closed.value.code == "not_open"
    d = acted(kind, d, "open", boxes.context())
    write = kind.command(ViewerCommand("vote", d, {"option": "a"}, ANN, "k1"), boxes.context())
    assert (write.box, write.holder, write.key) == ("p", "v-ann", "k1")
    assert write.record is not None and write.record["name"] == "Ann"
    boxes.apply(write)
    boxes.apply(kind.command(ViewerCommand("vote", d, {"option": "b"}, BO, "k1"), boxes.context()))
    views = kind.views(d, boxes.context())
    options = {o["id"]: o["count"] for o in views[Audience.PUBLIC]["results"]["options"]}
    assert options == {"a": 1, "b": 1} and views[Audience.PUBLIC]["kind"] == "poll"
    rows = kind.export(d, boxes.context())
    assert [(r["viewer"], r["name"], r["choice"]) for r in rows] == [
        ("v-ann", "Ann", "a"),
        ("v-bo", "Bo", "b"),
    ]


def test_q_and_a_upvotes_count_in_the_view_and_order_the_board():
    """The upvote bug: every upvote was acknowledged and none was ever counted."""
    kind = qa.KIND
    d = acted(kind, made(kind, {"id": "b", "title": "Ask"}), "open", Boxes().context())
    boxes = Boxes()
    for who, key, text in ((ANN, "k1", "First?"), (BO, "k2", "Second?")):
        boxes.apply(
            kind.command(ViewerCommand("ask", d, {"text": text}, who, key), boxes.context())
        )
    ids = {q["text"]: q["id"] for q in kind.views(d, boxes.context())[Audience.STAFF]["questions"]}
    for voter in (ANN, BO, Viewer("v-cy", "Cy")):
        ctx = boxes.context()
        boxes.apply(
            kind.command(ViewerCommand("upvote", d, {"question": ids["Second?"]}, voter, "u"), ctx)
        )
    # The view needs the questions first, then each question's upvote box.
    needs = kind.view_needs(d, Context(NOW))
    assert needs.records == {box_key("b", qa.QUESTIONS_BOX)} and not needs.counters
    assert kind.view_needs(d, boxes.context()).counters == {
        box_key("b", qid) for qid in ids.values()
    }
    board = kind.views(d, boxes.context())[Audience.PUBLIC]["questions"]
    assert [(q["text"], q["votes"]) for q in board] == [("Second?", 3), ("First?", 0)]


def test_check_in_twice_is_acknowledged_as_already():
    kind = checkin.KIND
    d = Registry().builtins()["checkin"]
    boxes = Boxes()
    first = boxes.apply(kind.command(ViewerCommand("checkin", d, {}, ANN, "k1"), boxes.context()))
    again = boxes.apply(kind.command(ViewerCommand("checkin", d, {}, ANN, "k2"), boxes.context()))
    write = kind.command(ViewerCommand("checkin", d, {}, ANN, "k2"), boxes.context())
    assert kind.acknowledge("checkin", write, first) == {"count": 1, "already": False}
    assert kind.acknowledge("checkin", write, again) == {"count": 1, "already": True}


def test_a_wall_post_starts_where_the_room_setting_says():
    kind = wall.KIND
    d = Registry().builtins()["wall"]
    boxes = Boxes()
    pre = kind.command(ViewerCommand("post", d, {"text": "hi"}, ANN, "k1"), boxes.context())
    post = kind.command(
        ViewerCommand("post", d, {"text": "hi"}, ANN, "k2"), boxes.context(wall_moderation="post")
    )
    assert pre.record and pre.record["status"] == "pending"
    assert post.record and post.record["status"] == "approved"
    result = boxes.apply(post)
    assert kind.acknowledge("post", post, result) == {"post": post.holder, "status": "approved"}


def test_a_draw_from_presence_is_run_from_the_presence_box_and_announced():
    kind = draws.KIND
    d = made(kind, {"id": "d", "title": "Prize", "winners": 1, "source": "presence"})
    boxes = Boxes()
    for who in (ANN, BO):
        boxes.apply(Write(PRESENCE_BOX, who.id, "p", {"name": who.name}, {"n": 1}))
    assert kind.view(d, boxes.context(), Audience.PUBLIC)["entrants"] == 2
    assert kind.action_needs("run", d, {}, boxes.context()).records == {PRESENCE_BOX}
    change = kind.act("run", d, {}, boxes.context())
    [winner] = change.reply["winners"]
    [announcement] = change.announce
    assert announcement.event["type"] == "draw_result"
    assert announcement.event["names"] == {winner: {"v-ann": "Ann", "v-bo": "Bo"}[winner]}
    assert announcement.notify == {winner} and announcement.notice is not None
    assert verify_audit(change.audit).ok
    drawn = Definition(d.id, d.kind, d.spec, change.state, d.created_at, change.audit)
    assert kind.act("run", drawn, {}, boxes.context()).reply == {"winners": [winner]}


def test_a_keyword_draw_listens_to_danmaku_inside_its_window():
    kind = draws.KIND
    d = made(
        kind, {"id": "k", "title": "Say it", "source": "keyword", "keyword": "好吃", "window_s": 60}
    )
    assert kind.listens(d, NOW)
    write = kind.on_danmaku(d, ANN, "汉堡真 好 吃！", NOW)
    assert write is not None and write.once and write.holder == "v-ann"
    assert kind.on_danmaku(d, ANN, "just watching", NOW) is None
    assert kind.on_danmaku(d, ANN, "好吃", NOW + 3600) is None  # after the window


def test_revealing_a_design_announces_the_final_design():
    kind = codesign.KIND
    d = made(
        kind,
        {
            "id": "c",
            "title": "Burger",
            "slots": [
                {
                    "id": "bun",
                    "label": "Bun",
                    "options": [{"id": "x", "label": "X"}, {"id": "y", "label": "Y"}],
                }
            ],
        },
    )
    boxes = Boxes()
    d = acted(kind, d, "open", boxes.context())
    boxes.apply(
        kind.command(
            ViewerCommand("pick", d, {"slot": "bun", "option": "y"}, ANN, "k"), boxes.context()
        )
    )
    d = acted(kind, d, "lock_all", boxes.context())
    change = kind.act("reveal", d, {}, boxes.context())
    [announcement] = change.announce
    assert announcement.event["type"] == "design_revealed"
    assert announcement.event["final"]["slots"][0]["option"] == "y"


def test_reactions_are_buffered_taps_of_the_emoji_offered():
    kind = reactions.KIND
    d = Registry().builtins()["reactions"]
    [op] = kind.ops
    assert op.buffered and not op.keyed and op.targets == "room"
    write = kind.command(
        ViewerCommand("react", d, {"emoji": "❤️", "count": 3}, ANN, ""), Context(NOW)
    )
    assert write.deltas == {"e:❤️": 3}
    assert kind.burst_event(d, {"e:❤️": 40, "e:🔥": 2}) == {
        "type": "reaction",
        "interaction": "reactions",
        "counts": {"❤️": 40, "🔥": 2},
    }
    for fields, code in (
        ({"emoji": "💩"}, "unknown_option"),
        ({"emoji": "❤️", "count": 99}, "invalid_field"),
    ):
        with pytest.raises(InteractionError) as refused:
            kind.command(ViewerCommand("react", d, fields, ANN, ""), Context(NOW))
        assert refused.value.code == code
    closed = Definition(d.id, d.kind, d.spec, Status("closed"), 0.0)
    with pytest.raises(InteractionError) as refused:
        kind.command(ViewerCommand("react", closed, {"emoji": "❤️"}, ANN, ""), Context(NOW))
    assert refused.value.code == "not_open"
    counts = kind.view(d, Context(NOW, data=Data({"reactions": {"e:❤️": 7}})), Audience.PUBLIC)
    assert counts["counts"]["❤️"] == 7 and counts["total"] == 7


def test_stored_definitions_round_trip_through_the_registry():
    registry = Registry()
    for kind in registry:
        d = registry.builtins().get(kind.builtin or "") if kind.builtin else None
        if d is None and kind.example is not None:
            d = made(kind, dict(kind.example))
        if d is None:
            continue
        assert registry.decode(d.id, registry.encode(d)) == d, kind.name
    assert registry.decode("x", {"kind": "no-such-kind", "spec": {}, "state": {}}) is None
