"""server.interactions.draws: commit-reveal lucky draws and their audit (issue 4, acceptance 3)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import draw_algorithm
from server.draw_verification import verify_audit
from server.interactions import draws
from server.interactions.base import InteractionError, Tally, dump, parse
from server.interactions.draws import DrawSpec, DrawState

SEED = bytes(range(32))
SEVEN = ["alice", "bob", "carol", "dave", "eve", "frank", "grace"]


def code_of(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(InteractionError) as err:
        fn(*args, **kw)
    return err.value.code


def reference_winners(seed: bytes, entrants: list[str], n: int) -> list[str]:
    """hudong-draw-v1 written again from server/draw_algorithm.py's docstring, the slow and
    plain way."""
    listing = b"".join(len(e.encode()).to_bytes(4, "big") + e.encode() for e in entrants)
    list_hash = hashlib.sha256(listing).digest()
    words: list[int] = []
    block = 0

    def word() -> int:
        nonlocal block
        if not words:
            msg = b"hudong-draw-v1\x00" + list_hash + block.to_bytes(8, "big")
            digest = hmac.new(seed, msg, hashlib.sha256).digest()
            words.extend(int.from_bytes(digest[i * 8 : i * 8 + 8], "big") for i in range(4))
            block += 1
        return words.pop(0)

    def uniform(r: int) -> int:
        while True:
            w = word()
            if w < 2**64 - (2**64 % r):
                return w % r

    pool = list(entrants)
    k = min(n, len(pool))
    for i in range(k):
        j = i + uniform(len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


def test_known_vector():
    # Pinned so that a reimplementation elsewhere (verify-draw in JS, say) can check itself.
    assert draw_algorithm.commitment_of(SEED) == (
        "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    )
    assert draw_algorithm.entrant_list_hash(SEVEN) == (
        "28185a8efeb393597f2b8fabacf047e3101939f9fadcdc03b177a1e4f2a58a7b"
    )
    assert draw_algorithm.select_winners(SEED, SEVEN, 3) == ["grace", "carol", "bob"]
    assert reference_winners(SEED, SEVEN, 3) == ["grace", "carol", "bob"]


@settings(max_examples=100, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    entrants=st.sets(
        st.text(min_size=1, max_size=8).filter(
            lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)
        ),
        max_size=40,
    ),
    n=st.integers(1, 50),
)
def test_selection_matches_the_documented_algorithm(seed, entrants, n):
    frozen = draw_algorithm.entrant_list(entrants)
    assert frozen == sorted(entrants)
    got = draw_algorithm.select_winners(seed, frozen, n)
    assert got == reference_winners(seed, frozen, n)
    assert len(got) == min(n, len(frozen)) == len(set(got))


def test_winners_are_uniform_enough():
    counts: Counter[str] = Counter()
    trials = 3000
    for i in range(trials):
        seed = hashlib.sha256(i.to_bytes(4, "big")).digest()
        counts.update(draw_algorithm.select_winners(seed, ["a", "b", "c"], 1))
    # Each should win ~1000 times; 150 is over 5 standard deviations (sd ~ 25.8).
    assert all(abs(counts[x] - trials / 3) < 150 for x in "abc"), counts


def test_rejection_sampling_skips_the_biased_tail():
    words = draw_algorithm._Words(SEED, bytes(32))
    r = 2**63 + 1  # limit = 2**64 - (2**64 mod r) = r: about half of all words are rejected
    values = [words.below(r) for _ in range(200)]
    assert all(0 <= v < r for v in values)


def open_spec(**kw: Any) -> tuple[DrawSpec, DrawState]:
    spec = DrawSpec("d1", "Lucky draw", **kw)
    return spec, draws.open_draw(spec, SEED, 1000.0)


def test_ten_thousand_entrants():
    spec, state = open_spec(winners=100, source="presence")
    entrants = [f"viewer-{i}" for i in range(10_000)]
    start = time.perf_counter()
    drawn, audit = draws.run_draw(
        spec, state, entrants + entrants[:500], 1060.0, excluded=["viewer-7", "nobody"]
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"a 10,000 entrant draw took {elapsed:.3f} s"
    winners = audit.winners
    assert len(winners) == 100 == len(set(winners))
    assert set(winners) <= set(entrants) and "viewer-7" not in winners
    assert len(audit.entrants) == 9_999 and drawn.winners == winners
    record = dump(audit)
    start = time.perf_counter()
    result = verify_audit(record, commitment=state.commitment, entrants_hash=audit.entrants_hash)
    assert time.perf_counter() - start < 1.0
    assert result.ok and result.problems == [] and result.winners == list(winners)

    def problems(change: Any) -> list[str]:
        altered = copy.deepcopy(record)
        change(altered)
        outcome = verify_audit(altered, commitment=state.commitment)
        assert not outcome.ok
        return outcome.problems

    # An entrant added, dropped or swapped for another id.
    assert "the entrant list does not match its hash" in problems(
        lambda r: r["entrants"].append("zz-sockpuppet")
    )
    assert "the entrant list does not match its hash" in problems(
        lambda r: r["entrants"].remove(r["winners"][0])
    )
    assert problems(lambda r: r["entrants"].__setitem__(5, r["entrants"][5] + "x"))

    # Even with a matching recomputed hash, the winners give the change away.
    def reforged(r: dict[str, Any]) -> None:
        r["entrants"] = r["entrants"][1:]
        r["entrants_hash"] = draw_algorithm.entrant_list_hash(r["entrants"])

    assert any(p.startswith("the winners differ") for p in problems(reforged))
    # Another seed.
    other = bytes(32).hex()
    assert "the seed does not match the commitment" in problems(
        lambda r: r.__setitem__("seed", other)
    )

    # Another seed with its own commitment: caught by the commitment published at opening.
    def reseeded(r: dict[str, Any]) -> None:
        r["seed"], r["commitment"] = other, hashlib.sha256(bytes(32)).hexdigest()

    assert "the commitment differs from the one published when the draw opened" in problems(
        reseeded
    )
    # Winners swapped, reordered, duplicated, or an outsider.
    assert any(
        p.startswith("the winners differ")
        for p in problems(
            lambda r: r["winners"].__setitem__(
                0, "viewer-9999" if r["winners"][0] != "viewer-9999" else "viewer-9998"
            )
        )
    )
    assert problems(lambda r: r["winners"].reverse())
    assert "a winner appears twice" in problems(
        lambda r: r["winners"].__setitem__(1, r["winners"][0])
    )
    assert "a winner is not in the entrant list" in problems(
        lambda r: r["winners"].__setitem__(0, "outsider")
    )
    assert "an excluded viewer is in the entrant list" in problems(
        lambda r: r["excluded"].append(r["entrants"][0])
    )
    assert problems(lambda r: r.__setitem__("n", 99))


def test_viewers_audit_hides_entrant_ids_and_still_verifies():
    """Issue 15: what a viewer reads of a draw's audit lists no entrant's id, and a
    viewer still checks the draw and finds its own entry."""
    spec, state = open_spec(winners=2)
    entrants = [f"fan-{i:03d}" for i in range(40)]
    _, audit = draws.run_draw(spec, state, entrants, 2.0, excluded=["fan-000"])
    record = draw_algorithm.viewers_audit(dump(audit))
    text = str(record)
    assert "entrants" not in record and "excluded" not in record
    assert [e for e in entrants if e in text] == sorted(audit.winners)  # winners are public
    assert len(record["entrant_digests"]) == 39
    assert draw_algorithm.entrant_digest(SEED, "fan-007") in record["entrant_digests"]
    result = verify_audit(record, commitment=state.commitment, me="fan-007")
    assert result.ok and result.winners == list(audit.winners), result.problems
    assert not verify_audit(record, me="fan-000").ok  # excluded: not an entrant
    assert not verify_audit(record, me="stranger").ok

    def problems(change: Any) -> list[str]:
        altered = copy.deepcopy(record)
        change(altered)
        outcome = verify_audit(altered, commitment=state.commitment)
        assert not outcome.ok
        return outcome.problems

    loser = next(e for e in entrants[1:] if e not in audit.winners)
    assert problems(lambda r: r["winners"].__setitem__(0, loser))
    assert problems(lambda r: r["winners"].reverse())
    assert problems(lambda r: r["entrant_digests"].insert(0, "00" * 32))  # positions move
    assert problems(lambda r: r.__setitem__("seed", bytes(32).hex()))
    assert problems(lambda r: r["excluded_digests"].append(r["entrant_digests"][3]))
    assert problems(lambda r: r.__setitem__("entrants_hash", "zz" * 32))
    assert not verify_audit({"entrant_digests": ["x"], "winners": [1]}).ok


def test_verify_audit_never_raises_on_garbage():
    assert not verify_audit("nope").ok
    assert not verify_audit({}).ok
    bad = {
        "version": draw_algorithm.ALGORITHM,
        "seed": "zz" * 32,
        "entrants": [1, 2],
        "n": "3",
        "winners": None,
        "excluded": "x",
        "commitment": 5,
        "entrants_hash": None,
    }
    result = verify_audit(bad)
    assert not result.ok and len(result.problems) >= 5


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "version",
                "seed",
                "commitment",
                "entrants",
                "entrants_hash",
                "n",
                "winners",
                "excluded",
                "entrant_digests",
                "excluded_digests",
            ]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=70),
            lambda inner: st.lists(inner, max_size=4),
            max_leaves=8,
        ),
    )
)
def test_verify_audit_fuzz(record):
    assert not verify_audit(record).ok


def test_draw_lifecycle_and_state():
    spec, state = open_spec(winners=2)
    assert state.commitment == hashlib.sha256(SEED).hexdigest()
    assert state.public()["seed"] is None and "seed" not in repr(state)
    assert parse(DrawState, dump(state)) == state
    assert parse(DrawSpec, dump(spec)) == spec
    drawn, audit = draws.run_draw(spec, state, ["x", "y", "z"], 1100.0)
    assert drawn.phase == "drawn" and drawn.public()["seed"] == SEED.hex()
    assert parse(DrawState, dump(drawn)) == drawn
    assert dump(audit)["seed"] == SEED.hex() and audit.n == 2
    assert code_of(draws.run_draw, spec, drawn, ["x"], 1200.0) == "illegal_transition"
    assert code_of(draws.run_draw, spec, state, [], 1200.0) == "no_entrants"
    assert code_of(draws.run_draw, spec, state, ["x"], 1200.0, excluded=["x"]) == "no_entrants"
    assert code_of(draws.run_draw, spec, state, ["ok", ""], 1200.0) == "invalid_field"
    assert code_of(draws.run_draw, spec, state, ["\ud800"], 1200.0) == "invalid_field"
    few, _ = draws.run_draw(DrawSpec("d2", "Many", winners=10), state, ["x", "y"], 1200.0)
    assert sorted(few.winners) == ["x", "y"]
    with pytest.raises(ValueError):
        draws.open_draw(spec, b"short", 0.0)
    assert (
        len(draw_algorithm.new_seed()) == 32
        and draw_algorithm.new_seed() != draw_algorithm.new_seed()
    )


def test_spec_validation():
    bad = [
        {"id": "d", "title": "t", "winners": 0},
        {"id": "d", "title": "t", "source": "magic"},
        {"id": "d", "title": "t", "source": "keyword"},
        {"id": "d", "title": "t", "source": "keyword", "keyword": "   "},
        {"id": "d", "title": "t", "source": "keyword", "keyword": 5},
        {"id": "d", "title": "t", "source": "poll"},
        {"id": "d", "title": "t", "window_s": 0.5},
    ]
    for obj in bad:
        assert code_of(parse, DrawSpec, obj) == "invalid_field", obj


def test_explicit_entry_once_and_eligibility():
    spec, state = open_spec()
    t = Tally()
    c = draws.enter(spec, state, "v1", 1001.0)
    assert c.once and c.deltas == {"n": 1}
    assert t.apply("v1", c, "k1").status == "applied"
    assert t.apply("v1", c, "k1").status == "duplicate"
    assert t.apply("v1", draws.enter(spec, state, "v1", 1002.0), "k2").status == "already_done"
    t.apply("v2", draws.enter(spec, state, "v2", 1003.0), "k1")
    assert code_of(draws.enter, spec, state, "v3", 1004.0, excluded={"v3"}) == "not_eligible"
    presence, pstate = open_spec(source="presence")
    assert code_of(draws.enter, presence, pstate, "v1", 1004.0) == "not_eligible"
    drawn, audit = draws.run_draw(spec, state, t.records, 1005.0)
    assert audit.entrants == ("v1", "v2")
    assert code_of(draws.enter, spec, drawn, "v4", 1006.0) == "not_open"


def test_keyword_entrants_within_the_window():
    spec, state = open_spec(source="keyword", keyword="我要 抽奖", window_s=60)
    messages = [
        ("v1", "我要抽奖!!", 1010.0),
        ("v1", "我要抽奖", 1020.0),  # the same viewer again: still one entrant
        ("v2", "主播 我要 抽奖 666", 1059.0),
        ("v3", "我要抽", 1020.0),  # not the keyword
        ("v4", "我要抽奖", 999.0),  # before the draw opened
        ("v5", "我要抽奖", 1061.0),  # after the window
        ("v6", "ＨＩ我要抽奖", 1030.0),  # full-width text is normalised (NFKC)
    ]
    start, end = draws.keyword_window(spec, state, 2000.0)
    assert (start, end) == (1000.0, 1060.0)
    assert draws.keyword_window(spec, state, 1030.0) == (1000.0, 1030.0)
    assert draws.keyword_entrants(messages, spec.keyword or "", start, end) == {"v1", "v2", "v6"}
    assert draws.keyword_entrants([("v1", "HELLO there", 1.0)], "hello", 0, 2) == {"v1"}
    assert draws.keyword_entrants(messages, "  ", start, end) == set()


def test_excluding_previous_winners():
    spec, state = open_spec(winners=3, exclude_previous_winners=True)
    _, first = draws.run_draw(spec, state, SEVEN, 1100.0)
    before = draws.previous_winners([dump(first)])
    assert before == set(first.winners)
    second_state = draws.open_draw(spec, bytes(reversed(SEED)), 1200.0)
    _, second = draws.run_draw(spec, second_state, SEVEN, 1300.0, excluded=before)
    assert not set(second.winners) & before and len(second.winners) == 3
    assert second.excluded == tuple(sorted(before))
    assert verify_audit(dump(second)).ok
