"""What the browser tests share: `hudong serve` as a process, headless Chromium (Debian's
`chromium`, driven by Playwright, no browser download), pages that are watched for requests
to other hosts, dialogs and errors, and the console's composer driven as a host drives it.

The fixtures (`node`, `browser`, `pages`) reach every test module through `pytest_plugins`
in tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, SECRET, TLS, UNIT, free_port

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-artifacts" / "screenshots"
AXE_DIR = Path(__file__).resolve().parent / "browser"
XSS = "<img src=x onerror=alert(1)>"
WAIT_MS = int(15_000 * UNIT)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--autoplay-policy=no-user-gesture-required",
]


def _chromium() -> str:
    path = os.environ.get("HUDONG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        message = (
            "chromium is not installed (apt-get install chromium): the browser tests cannot run"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"!!! {message} (they run in CI)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        message = "playwright is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"!!! {message}")
    return path


# --- the node and the browser ----------------------------------------------------------------


@dataclass
class Node:
    base: str
    process: subprocess.Popen[bytes]
    log: Any

    def http(self, token: str = ADMIN) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10 * UNIT,
            verify=TLS,
        )

    def room(self, room: str, **settings: Any) -> dict[str, str]:
        """A new room, and its host and screen tokens."""
        with self.http() as http:
            r = http.post(
                "/api/v1/rooms", json={"id": room, "title": f"Room {room}", "settings": settings}
            )
            assert r.status_code == 201, r.text
            tokens = {}
            for role in ("host", "screen"):
                r = http.post(
                    f"/api/v1/rooms/{room}/tokens",
                    json={"role": role, "user_id": f"{role}-1", "name": role.title()},
                )
                assert r.status_code == 201, r.text
                tokens[role] = r.json()["token"]
        return tokens

    def view(self, room: str, iid: str) -> dict[str, Any]:
        with self.http() as http:
            r = http.get(f"/api/v1/rooms/{room}/interactions/{iid}")
            assert r.status_code == 200, r.text
            return dict(r.json())


def start_node(port: int, *args: str, name: str = "browser-node", **env: str) -> Node:
    """`hudong serve` as a process, ready to serve: on the embedded default, in a data
    directory of its own unless ``HUDONG_DATA_DIR`` (or ``--memory``) says otherwise."""
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    if "HUDONG_DATA_DIR" not in env:
        env["HUDONG_DATA_DIR"] = tempfile.mkdtemp(prefix=f"hudong-{name}-")
    log_path = ROOT / "test-artifacts" / f"{name}.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port), *args],
        cwd=ROOT,
        env={
            **os.environ,
            "HUDONG_ADMIN_TOKEN": ADMIN,
            "HUDONG_SECRET": SECRET,
            "HUDONG_LOG_LEVEL": "warning",
            "PYTHONFAULTHANDLER": "1",  # stacks into the log on SIGABRT (stop_node)
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20 * UNIT
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1, verify=TLS).status_code == 200:
                return Node(base, process, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    if process.poll() is None:
        process.kill()
    process.wait()
    log.close()
    raise AssertionError(f"hudong serve did not become ready: {log_path.read_text()}")


def stop_node(node: Node) -> None:
    """SIGTERM, as a supervisor stops it: it tells its clients, waits up to
    ``hub.shutdown_grace_s`` (5 s) for them, and exits. One still running 15 s later is
    a defect: SIGABRT makes it print every thread's stack (PYTHONFAULTHANDLER, set by
    :func:`start_node`) into its log, and the test fails with them."""
    process = node.process
    process.terminate()
    try:
        process.wait(15 * UNIT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        try:
            process.wait(5 * UNIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        node.log.close()
        tail = Path(node.log.name).read_text(errors="replace")[-6000:]
        raise AssertionError(f"hudong serve ignored SIGTERM for 15 s; its log:\n{tail}") from None
    node.log.close()


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    """`hudong serve` on the embedded default, as a newcomer runs it."""
    started = start_node(free_port())
    try:
        yield started
    finally:
        stop_node(started)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watch:
    """What the pages of one test did that they must not: requests to other hosts,
    dialogs, errors in the console or uncaught."""

    base: str
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # other hudong nodes of the test
    notices: list[str] = field(default_factory=list)  # what the pages told their users
    outage: bool = False  # the test takes a node away: failed WebSocket attempts are expected

    def check(self) -> None:
        ours = tuple(f"{base}/" for base in (self.base, *self.others))
        elsewhere = [u for u in self.requests if not u.startswith((*ours, "data:", "blob:"))]
        assert not elsewhere, f"requests outside the hudong server: {elsewhere}"
        assert not self.dialogs, f"dialogs opened: {self.dialogs}"
        errors = [
            e
            for e in self.errors
            if not (self.outage and "WebSocket connection to" in e and "failed" in e)
        ]
        assert not errors, f"errors on the pages: {errors}"


# Every notice a page shows goes to its console as "notice: …", so that a failing test
# says what the user was told (pytest prints a failed test's output).
NOTICE_TAP = """addEventListener('DOMContentLoaded', () => {
  const region = document.getElementById('notices');
  if (!region) return;
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) console.info('notice: ' + n.textContent);
  }).observe(region, { childList: true });
});"""


@pytest.fixture
def pages(browser: Any, node: Node) -> Iterator[Any]:
    """Opens pages, each in its own context (its own storage: its own guest), watched."""
    watch = Watch(node.base)
    contexts: list[Any] = []

    def open_page(
        path: str,
        *,
        width: int = 1280,
        height: int = 800,
        mobile: bool = False,
        base: str | None = None,
    ) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            is_mobile=mobile,
            has_touch=mobile,
            locale="en-US",
        )
        contexts.append(context)
        context.add_init_script(NOTICE_TAP)
        context.on("request", lambda request: watch.requests.append(request.url))
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("dialog", lambda dialog: (watch.dialogs.append(dialog.message), dialog.dismiss()))

        def on_console(message: Any) -> None:
            if message.type == "error":
                watch.errors.append(f"{path}: {message.text}")
            elif message.text.startswith("notice: "):
                watch.notices.append(f"{path}: {message.text}")
                print(watch.notices[-1])

        page.on("console", on_console)
        page.on("pageerror", lambda e: watch.errors.append(f"{path}: {e}"))
        if base is not None and base != watch.base:
            watch.others.append(base)
        page.goto((base or node.base) + path)
        return page

    open_page.watch = watch  # type: ignore[attr-defined]
    yield open_page
    for context in contexts:
        context.close()
    watch.check()


def shot(page: Any, name: str, **kw: Any) -> bytes:
    data: bytes = page.screenshot(path=str(SHOTS / f"{name}.png"), **kw)
    return data


def count_of(page: Any, selector: str) -> int:
    """The exact count an element shows (its data-count)."""
    return int(page.locator(selector).first.get_attribute("data-count"))


def wait_count(page: Any, selector: str, expected: int) -> None:
    page.wait_for_function(
        "([sel, n]) => [...document.querySelectorAll(sel)]"
        ".some(e => e.dataset.count === String(n))",
        arg=[selector, expected],
    )


def console_for(open_page: Any, room: str, tokens: dict[str, str]) -> Any:
    page = open_page(f"/console#room={room}&token={tokens['host']}", width=1366, height=900)
    page.wait_for_selector("#conn[data-state='connected']")
    return page


def viewers(open_page: Any, room: str, n: int) -> list[Any]:
    found = []
    for _ in range(n):
        page = open_page(f"/live/{room}", width=360, height=740, mobile=True)
        page.wait_for_selector("#conn[data-state='connected']")  # the server's hello
        # ... and joined: "#you" names the viewer ("You: {name}", "你：{name}"), where it
        # said "You" until then. A test that reads the name before would read "You".
        page.wait_for_function("() => /[:：]/.test(document.querySelector('#you').textContent)")
        found.append(page)
    return found


def create(console: Any, kind: str, **fields: str) -> str:
    """Fill the console's composer and create; returns the new interaction's id."""
    console.click("[data-tab='interactions']")
    if not console.locator("#new-kind").is_visible():  # folded once there are interactions
        console.click("#composer-box summary")
    console.select_option("#new-kind", kind)
    for name, value in fields.items():
        target = console.locator(f"#f-{name}")
        if target.evaluate("e => e.tagName") == "SELECT":
            target.select_option(value)
        elif target.get_attribute("type") == "checkbox":
            target.check()
        else:
            target.fill(value)
    before = set(
        console.eval_on_selector_all(
            "[data-interaction]", "es => es.map(e => e.dataset.interaction)"
        )
    )
    console.click("#composer button[type=submit]")
    console.wait_for_function(
        "n => document.querySelectorAll('#interaction-list [data-interaction]').length > n",
        arg=len(before),
    )
    after = console.eval_on_selector_all(
        "[data-interaction]", "es => es.map(e => e.dataset.interaction)"
    )
    [new] = [i for i in after if i not in before]
    return str(new)


def action(console: Any, iid: str, name: str) -> None:
    console.click(f"[data-interaction='{iid}'] button[data-action='{name}']")


# --- viewers without a page ----------------------------------------------------------------


class WsViewer:
    """An anonymous viewer on a raw WebSocket: sends commands and waits for each answer."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 1

    def send(self, op: str, **fields: Any) -> dict[str, Any]:
        self.next_id += 1
        cid = self.next_id
        self.ws.send(json.dumps({"op": op, "id": cid, **fields}))
        return self.reply(cid)

    def reply(self, cid: int) -> dict[str, Any]:
        """The answer to command ``cid`` (batches and other messages on the way skipped)."""
        while True:
            message = json.loads(self.ws.recv(timeout=10 * UNIT))
            if message.get("id") == cid and message.get("type") != "batch":
                return dict(message)

    def ok(self, op: str, **fields: Any) -> dict[str, Any]:
        answer = self.send(op, key=f"{op}-{self.next_id}", **fields)
        assert answer["type"] == "ack", answer
        return answer


@contextmanager
def viewer_ws(
    base: str, room: str, name: str | None = None, token: str | None = None
) -> Iterator[WsViewer]:
    """A viewer of ``room`` on the node at ``base`` (anonymous, or the ``token``'s),
    joined, for the block."""
    from websockets.sync.client import connect

    with connect(base.replace("http", "ws") + "/ws", subprotocols=["hudong.v1.json"]) as ws:
        ws.recv(timeout=5 * UNIT)  # hello
        viewer = WsViewer(ws)
        ws.send(
            json.dumps(
                {"op": "join", "id": 1, "room": room}
                | ({"name": name} if name else {})
                | ({"token": token} if token else {})
            )
        )
        joined = viewer.reply(1)
        assert joined["type"] == "joined", joined
        yield viewer
