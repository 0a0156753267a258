"""Chromium over permessage-deflate (server/hub/deflate.py): the viewer page negotiates it
with ``server_no_context_takeover``, shows every danmaku of a storm that reached it as
compressed batches, and what Chromium itself sends compressed is read by the node."""

from __future__ import annotations

import itertools
from typing import Any

from loadtest.chinese import storm
from tests.browser_kit import shot, viewer_ws


def test_the_viewer_page_shows_danmaku_that_came_compressed(pages, node):
    node.room("deflate")
    page = pages("/live/deflate", width=360, height=740, mobile=True)
    page.wait_for_selector("#conn[data-state='connected']")
    # Reload with the DevTools protocol listening, to read the handshake's answer.
    handshakes: list[dict[str, Any]] = []
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.on("Network.webSocketHandshakeResponseReceived", lambda e: handshakes.append(e))
    page.reload()
    page.wait_for_selector("#conn[data-state='connected']")
    [answer] = [h["response"] for h in handshakes if h["response"]["status"] == 101]
    headers = {k.lower(): v for k, v in answer["headers"].items()}
    extension = headers.get("sec-websocket-extensions", "")
    assert "permessage-deflate" in extension, answer["headers"]
    assert "server_no_context_takeover" in extension, extension

    # 8: with the join, within a viewer's burst of 10 commands
    texts = [f"{text} #{i}" for i, (_, text) in enumerate(itertools.islice(storm(), 8))]
    with viewer_ws(node.base, "deflate", name="王芒果") as sender:
        for text in texts:
            answer = sender.send("danmaku", text=text)
            assert answer["type"] == "ack", answer
        for text in texts:
            page.locator(".feed-item", has_text=text).wait_for()
        # Chromium compresses what it sends: the node inflates it for everyone.
        page.fill("#text", "从浏览器发来的弹幕 🎉")
        page.click("#send")
        while True:
            message = sender.ws.recv(timeout=10)
            if "从浏览器发来的弹幕 🎉" in message:
                break
    shot(page, "live-deflate", full_page=True)
