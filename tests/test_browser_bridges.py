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
from tests.browser_kit import Node, shot, start_node, stop_node
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
