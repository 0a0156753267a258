"""Votes by danmaku in a real browser (issue 18): a poll made in /console with votes by
danmaku turned on and a code of the host's own in brackets; viewers type "1", "#红" and
"２" as danmaku; the overlay's bars move and show what to type, and in a room with
`hide_vote_danmaku` its scrolling layer shows the chat but none of the votes."""

from __future__ import annotations

import pytest

from tests.browser_kit import action, console_for, create, shot, viewer_ws, wait_count

pytestmark = pytest.mark.slow


def test_danmaku_votes_move_the_overlay_bars_and_stay_off_its_scroll(pages, node):
    tokens = node.room("chatvote", hide_vote_danmaku=True)
    console = console_for(pages, "chatvote", tokens)
    overlay = pages(f"/overlay/chatvote#token={tokens['screen']}", width=1920, height=1080)
    iid = create(
        console,
        "poll",
        question="哪个颜色？",
        type="single",
        options="红色 (#红)\n蓝色",
        danmaku="on",
    )
    spec = node.view("chatvote", iid)["spec"]
    assert spec["danmaku"] is True
    assert [o.get("codes", []) for o in spec["options"]] == [["#红"], []]
    action(console, iid, "open")
    # the flush that shows the open poll has also set the room's danmaku listeners
    overlay.wait_for_selector(f"[data-poll='{iid}'][data-phase='open']")
    overlay.locator(f"[data-poll='{iid}'] [data-option='o1'] .label", has_text="#红").wait_for()
    with viewer_ws(node.base, "chatvote") as a, viewer_ws(node.base, "chatvote") as b:
        with viewer_ws(node.base, "chatvote") as c:
            assert a.send("danmaku", text="1")["vote"] is True
            assert b.send("danmaku", text="#红")["hidden"] is True
            assert c.send("danmaku", text="２")["vote"] is True
            chat = c.send("danmaku", text="好看！")
            assert "vote" not in chat and chat["event"]
    for page in (overlay, console):
        wait_count(page, f"[data-poll='{iid}'] [data-option='o1'] .count", 2)
        wait_count(page, f"[data-poll='{iid}'] [data-option='o2'] .count", 1)
        wait_count(page, f"[data-poll='{iid}'] .voters", 3)
    overlay.locator(".danmaku", has_text="好看！").wait_for()  # sent after the votes
    shown = overlay.eval_on_selector_all(".danmaku", "es => es.map(e => e.textContent)")
    assert not [text for text in shown if any(v in text for v in ("1", "#红", "２"))], shown
    shot(overlay, "overlay-danmaku-votes")
