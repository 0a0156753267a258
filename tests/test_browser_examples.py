"""The JS client's browser examples (clients/js/examples) in Chromium against a live node,
as an integrator runs them: served by a site of their own (here a static file server on
another port, whose origin the node lists in server.allowed_origins), each example
built with esbuild from its committed lockfile, one node and one browser for the module.

- plain-html: the page loads the client from the node (/static/client/…), shows the
  poll named in its address, and a click on an option counts a vote (REST agrees);
- bundler: the esbuild bundle (client and MessagePack in one file) joins the room, shows
  a danmaku sent by another viewer and sends one of its own;
- react, vue: each component renders the poll, a click counts the vote, REST agrees.

User text (the poll's question, danmaku) is `<img src=x onerror=alert(1)>` and shows as
those characters; no page opens a dialog, logs an error or asks another host for anything.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser_kit import XSS, Node, shot, start_node, stop_node, viewer_ws, wait_count
from tests.conftest import UNIT, free_port
from tests.example_kit import BUILT, EXAMPLES, build, counts, mint, open_poll

pytestmark = pytest.mark.slow


class QuietFiles(SimpleHTTPRequestHandler):
    """Serves the examples' folder as an integrator's own site would, without logging."""

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":  # the site's icon is not the examples' business
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The integrator's site: clients/js/examples over HTTP on a port of its own."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(QuietFiles, directory=str(EXAMPLES))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def node(site: str) -> Iterator[Node]:
    """`hudong serve` that lets the site's pages in (its WebSocket and CORS)."""
    started = start_node(free_port(), name="examples-node", HUDONG_ALLOWED_ORIGINS=site)
    try:
        yield started
    finally:
        stop_node(started)


@pytest.fixture(scope="module")
def built() -> None:
    for name in BUILT:
        build(name)


def vote_on_the_page(page: Any, node: Node, room: str) -> None:
    """The poll shows (its question as text), a click on an option counts once."""
    page.wait_for_selector("[data-poll='p'] [data-option='a'] button:not([disabled])")
    assert page.locator("[data-poll='p'] h1, [data-poll='p'] h2").first.inner_text() == XSS
    assert [b.inner_text() for b in page.locator("[data-poll='p'] button").all()] == [
        "Noodles",
        "Rice",
    ]
    assert counts(node, room) == {"a": 0, "b": 0}
    page.click("[data-poll='p'] [data-option='a'] button")
    wait_count(page, "[data-poll='p'] [data-option='a'] .count", 1)
    page.wait_for_selector("text=Thanks, your vote counts.")
    assert counts(node, room) == {"a": 1, "b": 0}
    # another viewer's vote moves the page's count too: it is live
    with viewer_ws(node.base, room, name="Bo") as bo:
        bo.ok("vote", interaction="p", option="a")
    wait_count(page, "[data-poll='p'] [data-option='a'] .count", 2)
    assert counts(node, room) == {"a": 2, "b": 0}


def test_the_plain_page_loads_the_client_from_the_node_and_counts_a_vote(pages, node, site):
    open_poll(node, "plain", XSS)
    token = mint(node, "plain", "member-7", "Mei")  # from the integrator's backend
    page = pages(
        f"/plain-html/index.html?node={node.base}&room=plain&poll=p#token={token}", base=site
    )
    page.wait_for_selector("#conn[data-state='connected']")
    vote_on_the_page(page, node, "plain")
    assert node.view("plain", "p")["results"]["voters"] == 2
    shot(page, "example-plain-html")


@pytest.mark.parametrize("framework", ["react", "vue"])
def test_the_component_renders_the_poll_and_counts_a_vote(built, pages, node, site, framework):
    open_poll(node, framework, XSS)
    page = pages(f"/{framework}/index.html?node={node.base}&room={framework}", base=site)
    page.wait_for_selector("#conn[data-state='connected']")
    vote_on_the_page(page, node, framework)
    shot(page, f"example-{framework}")


def test_the_bundle_shows_and_sends_danmaku(built, pages, node, site):
    node.room("bundle")
    page = pages(f"/bundler/index.html?node={node.base}&room=bundle", base=site)
    page.wait_for_selector("#conn[data-state='connected']")
    with viewer_ws(node.base, "bundle", name="Ann") as ann:
        page.wait_for_function("() => document.getElementById('online').textContent === '2'")
        ann.ok("danmaku", text=XSS)
        page.wait_for_selector("#feed li")
        assert page.locator("#feed li").all_inner_texts() == [f"Ann: {XSS}"]
        page.fill("#text", "弹幕 from the bundle")
        page.click("#send button")
        page.wait_for_function("() => document.querySelectorAll('#feed li').length === 2")
        name = page.locator("#you").inner_text()
        assert page.locator("#feed li").all_inner_texts()[1] == f"{name}: 弹幕 from the bundle"
        # the other viewer got it from the node
        texts: list[str] = []
        while "弹幕 from the bundle" not in texts:
            message = json.loads(ann.ws.recv(timeout=10 * UNIT))
            texts += [e.get("text") for e in message.get("events", [])]
    shot(page, "example-bundler")
