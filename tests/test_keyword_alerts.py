"""Keyword alerts, the pure part (server/moderation/alerts.py): watch lists as hosts send
them, the matcher over normalised text, and the spike detector on a fake clock."""

from __future__ import annotations

import pytest

from server.moderation.alerts import (
    BASELINE_S,
    KeywordMatcher,
    SpikeDetector,
    WatchList,
    WatchListError,
    parse_watchlists,
    stand_in_normalise,
)


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


REFUND = WatchList.parse(
    {
        "id": "refund",
        "name": "退款 / 投诉",
        "terms": ["退款", "投诉"],
        "pairs": [["BrandX", "差"]],
        "threshold": 3,
        "window_s": 10,
        "baseline": 3,
    }
)


def matcher(*lists: WatchList) -> KeywordMatcher:
    return KeywordMatcher(lists, stand_in_normalise)


# --- watch lists ---------------------------------------------------------------------------


def test_a_watch_list_round_trips_and_takes_defaults():
    parsed = WatchList.parse({"id": "w1", "terms": ["scam"]})
    assert parsed.public() == {
        "id": "w1",
        "name": "w1",
        "terms": ["scam"],
        "pairs": [],
        "threshold": 10,
        "window_s": 60,
        "baseline": 3.0,
    }
    assert WatchList.parse(REFUND.public()) == REFUND


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([{"id": "x y", "terms": ["a"]}], "id must match"),
        ([{"id": "x"}], "at least one term or pair"),
        ([{"id": "x", "terms": [""]}], "1 to 40 characters"),
        ([{"id": "x", "terms": ["a" * 41]}], "1 to 40 characters"),
        ([{"id": "x", "pairs": [["brand"]]}], "list of two words"),
        ([{"id": "x", "terms": ["a"], "threshold": 0}], "threshold"),
        ([{"id": "x", "terms": ["a"], "threshold": True}], "threshold"),
        ([{"id": "x", "terms": ["a"], "window_s": 1}], "window_s"),
        ([{"id": "x", "terms": ["a"], "baseline": 0.5}], "baseline"),
        ([{"id": "x", "terms": ["a"], "colour": "red"}], "unknown"),
        ([{"id": "x", "terms": ["a"]}, {"id": "x", "terms": ["b"]}], "must differ"),
        ([{"id": f"w{i}", "terms": ["a"]} for i in range(21)], "at most 20"),
        ({"id": "x"}, "must be a list"),
    ],
)
def test_a_wrong_watch_list_is_refused_with_what_was_expected(value, says):
    with pytest.raises(WatchListError, match=says):
        parse_watchlists(value)


# --- matching -----------------------------------------------------------------------------


def test_terms_match_anywhere_and_pairs_only_together():
    m = matcher(REFUND)
    assert m.hits("我要退款!!") == [REFUND]
    assert m.hits("投诉 客服") == [REFUND]
    assert m.hits("brandx 真的太差了") == [REFUND]  # both words of the pair
    assert m.hits("BrandX 新品好看") == []  # the brand alone is not a match
    assert m.hits("质量差") == []
    assert m.hits("666 主播好棒") == []


def test_matching_uses_the_normalised_text():
    scam = WatchList.parse({"id": "scam", "terms": ["Scam"]})
    m = matcher(scam)
    assert m.hits("ＳＣＡＭ alert") == [scam]  # full-width letters, case folded
    assert m.hits("this is a scam") == [scam]
    assert m.hits("scram") == []


def test_one_message_counts_once_per_list_and_for_every_list_it_hits():
    other = WatchList.parse({"id": "other", "terms": ["退款"]})
    m = matcher(REFUND, other)
    assert m.hits("退款 退款 投诉 退款") == [REFUND, other]


def test_an_empty_matcher_matches_nothing():
    m = matcher()
    assert not m
    assert m.hits("退款") == []


# --- spikes -------------------------------------------------------------------------------


def sample(i: int) -> dict[str, str]:
    return {"user": f"u{i}", "text": f"退款 {i}"}


def test_threshold_matches_within_the_window_make_a_spike_once():
    clock = FakeClock()
    detector = SpikeDetector(clock)
    detector.watch([REFUND])
    assert detector.add(REFUND, sample(1)) is None
    clock.now += 4
    assert detector.add(REFUND, sample(2)) is None
    clock.now += 4
    spike = detector.add(REFUND, sample(3))
    assert spike is not None
    assert spike.count == 3
    assert spike.watch is REFUND
    assert [s["user"] for s in spike.samples] == ["u1", "u2", "u3"]
    clock.now += 1
    assert detector.add(REFUND, sample(4)) is None  # the same spike: no second alert


def test_matches_spread_wider_than_the_window_make_no_spike():
    clock = FakeClock()
    detector = SpikeDetector(clock)
    detector.watch([REFUND])
    for i in range(10):
        assert detector.add(REFUND, sample(i)) is None
        clock.now += 6  # two in any 10 s window, never three


def test_a_list_fires_again_after_its_count_fell_below_the_threshold():
    clock = FakeClock()
    detector = SpikeDetector(clock)
    detector.watch([REFUND])
    for i in range(3):
        detector.add(REFUND, sample(i))
    clock.now += 60  # quiet
    assert detector.add(REFUND, sample(10)) is None  # below again: re-armed
    assert detector.add(REFUND, sample(11)) is None
    assert detector.add(REFUND, sample(12)) is not None


def test_samples_are_the_last_few():
    clock = FakeClock()
    detector = SpikeDetector(clock)
    many = WatchList.parse({"id": "m", "terms": ["x"], "threshold": 8, "window_s": 10})
    spike = None
    for i in range(8):
        spike = detector.add(many, sample(i))
    assert spike is not None
    assert [s["user"] for s in spike.samples] == ["u3", "u4", "u5", "u6", "u7"]


def test_a_room_that_always_says_it_alerts_only_well_above_its_normal():
    """A busy room matches the list 6 times per 10 s all along (over the threshold of 3):
    no alert, however long; four times that rate is a spike."""
    clock = FakeClock()
    detector = SpikeDetector(clock)
    detector.watch([REFUND])
    fired = []
    for _ in range(BASELINE_S // 5):  # 10 minutes: 3 matches every 5 s
        for i in range(3):
            spike = detector.add(REFUND, sample(i))
            if spike is not None:
                fired.append(clock.now)
        clock.now += 5
    # Only while the room had no normal yet (its first window) may it fire.
    assert all(at < 1_000_000.0 + REFUND.window_s for at in fired)
    for _ in range(4):  # now 24 per 10 s: four times the normal
        spikes = [detector.add(REFUND, sample(i)) for i in range(12)]
        if any(spikes):
            spike = next(s for s in spikes if s is not None)
            assert spike.count >= 3 * spike.normal
            assert spike.normal == pytest.approx(6.0, rel=0.2)
            break
        clock.now += 5
    else:
        pytest.fail("a rate four times the room's normal raised no alert")


def test_a_spike_right_after_a_quiet_start_fires_with_no_normal():
    clock = FakeClock()
    detector = SpikeDetector(clock)
    detector.watch([REFUND])
    clock.now += 300  # watched, quiet for five minutes
    spikes = [detector.add(REFUND, sample(i)) for i in range(3)]
    assert spikes[-1] is not None
    assert spikes[-1].normal == 0.0


def test_forgotten_lists_are_dropped_and_new_ones_start_empty():
    clock = FakeClock()
    detector = SpikeDetector(clock)
    detector.watch([REFUND])
    detector.add(REFUND, sample(1))
    detector.add(REFUND, sample(2))
    detector.watch([])
    detector.watch([REFUND])
    assert detector.add(REFUND, sample(3)) is None  # the two before were forgotten
