"""Platform chat bridges in the console (PROTOCOL.md, "Bridges"), in headless Chromium
against `hudong serve`: the host adds a webhook bridge in the Danmaku tab, a signed post
of the chat reaches the console's danmaku feed, the panel shows the bridge connected with
its message count, and Remove takes it away."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest

from server.bridges.webhook import signature
from tests.browser_kit import Node, shot, start_node, stop_node, wait_count
from tests.conftest import UNIT, free_port

pytestmark = pytest.mark.slow

ROOM = "bridged"
SECRET = "the shop chat's webhook secret"


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    """`hudong serve` with a webhook secret in its configuration (never in the room)."""
    started = start_node(free_port(), HUDONG_BRIDGES_WEBHOOK_SECRET=SECRET)
    try:
        yield started
    finally:
        stop_node(started)


def test_a_host_adds_a_bridge_sees_its_chat_and_health_and_removes_it(pages, node):
    tokens = node.room(ROOM)
    host = pages(f"/console#room={ROOM}&token={tokens['host']}", width=1366, height=900)
    host.wait_for_selector("#conn[data-state='connected']")
    host.click("[data-tab='danmaku']")
    host.wait_for_selector(
        "#bridges-card:not([hidden]) #bridge-platform option[value='twitch']", state="attached"
    )
    host.select_option("#bridge-platform", "webhook")
    host.fill("#bridge-channel", "shopchat")
    host.click("#bridge-form button[type=submit]")
    item = "#bridge-list [data-bridge='webhook:shopchat']"
    host.wait_for_selector(f"{item} [data-state='connected']", timeout=10_000 * UNIT)
    with node.http() as http:  # the node that runs it: its lease's owner
        (listed,) = http.get(f"/api/v1/rooms/{ROOM}/bridges").json()["bridges"]
    host.wait_for_selector(f"{item}:has-text('on {listed['node']}')")

    raw = orjson.dumps({"sender": "u7", "name": "Shopper", "text": "来自商城的弹幕", "id": "m1"})
    ts = str(int(time.time()))
    headers = {"X-Hudong-Timestamp": ts, "X-Hudong-Signature": signature(SECRET, ts, raw)}
    with node.http() as http:
        r = http.post(
            f"/api/v1/rooms/{ROOM}/bridges/webhook/shopchat", content=raw, headers=headers
        )
        assert r.status_code == 202, r.text
    host.locator("#danmaku-feed li:has-text('来自商城的弹幕')").wait_for()
    host.wait_for_selector(f"{item}:has-text('1 messages')", timeout=10_000 * UNIT)
    shot(host, "console-bridges", full_page=True)

    host.click(f"{item} button[data-action='remove-bridge']")
    host.wait_for_selector(item, state="detached")
    with node.http() as http:
        assert http.get(f"/api/v1/rooms/{ROOM}/bridges").json()["bridges"] == []


def _post_chat(node: Node, channel: str, *messages: tuple[str, str, str]) -> None:
    """Signed webhook posts, one per (sender, text, message id)."""
    with node.http() as http:
        for sender, text, mid in messages:
            raw = orjson.dumps({"sender": sender, "name": sender.title(), "text": text, "id": mid})
            ts = str(int(time.time()))
            headers = {"X-Hudong-Timestamp": ts, "X-Hudong-Signature": signature(SECRET, ts, raw)}
            r = http.post(
                f"/api/v1/rooms/{VOTES}/bridges/webhook/{channel}", content=raw, headers=headers
            )
            assert r.status_code == 202, r.text


VOTES = "bridgedvotes"


def test_a_bridged_chat_votes_while_the_overlay_bar_moves_and_its_codes_stay_off_the_scroll(
    pages, node
):
    """Issue 18, acceptance 4: a platform's chat (the webhook bridge) types 1, ２ and A into
    a poll that takes danmaku, in a room with hide_vote_danmaku; the overlay's bars move
    as the chat votes and changes its mind, and its scrolling layer shows the ordinary
    chat but none of the vote codes."""
    tokens = node.room(VOTES, hide_vote_danmaku=True)
    spec = {
        "id": "colour",
        "question": "哪个颜色？",
        "kind": "single",
        "options": [{"id": "red", "label": "红色"}, {"id": "blue", "label": "蓝色"}],
        "danmaku": True,
    }
    with node.http() as http:
        r = http.post(f"/api/v1/rooms/{VOTES}/interactions", json={"kind": "poll", "spec": spec})
        assert r.status_code == 201, r.text
        r = http.post(f"/api/v1/rooms/{VOTES}/interactions/colour/actions", json={"action": "open"})
        assert r.status_code == 200, r.text
        r = http.post(
            f"/api/v1/rooms/{VOTES}/bridges", json={"platform": "webhook", "channel": "live"}
        )
        assert r.status_code == 201, r.text
    overlay = pages(f"/overlay/{VOTES}#token={tokens['screen']}", width=1920, height=1080)
    poll = "[data-poll='colour']"
    overlay.wait_for_selector(f"{poll}[data-phase='open']")

    _post_chat(node, "live", ("ann", "1", "m1"), ("bo", "２", "m2"), ("cy", "A", "m3"))
    wait_count(overlay, f"{poll} [data-option='red'] .count", 2)
    wait_count(overlay, f"{poll} [data-option='blue'] .count", 1)
    shot(overlay, "overlay-bridged-votes-1")
    # Bo changes their mind by chat; a repeat of a platform message id counts nothing.
    _post_chat(node, "live", ("bo", "红色", "m4"), ("ann", "2", "m1"), ("dee", "主播好", "m5"))
    wait_count(overlay, f"{poll} [data-option='red'] .count", 3)
    wait_count(overlay, f"{poll} [data-option='blue'] .count", 0)
    overlay.locator(".danmaku", has_text="主播好").wait_for()  # sent after every vote
    shown = overlay.eval_on_selector_all(".danmaku", "es => es.map(e => e.textContent)")
    assert not [t for t in shown if any(v in t for v in ("1", "２", "A", "红色", "2"))], shown
    shot(overlay, "overlay-bridged-votes-2")
    with node.http() as http:
        view = http.get(f"/api/v1/rooms/{VOTES}/interactions/colour").json()
    assert {o["id"]: o["count"] for o in view["results"]["options"]} == {"red": 3, "blue": 0}
