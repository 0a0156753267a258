"""The JS client's Node example (clients/js/examples/node-danmaku) against a live node
(`hudong serve`, one for the module): `node watch.js` joins a room with a token from its
command line and prints each danmaku the room gets as one line, user text exactly as
sent; a room that does not exist ends it with a clear message and status 1.

The browser examples (plain page, esbuild bundle, React, Vue): test_browser_examples.py.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import IO

import pytest

from tests.browser_kit import XSS, Node, viewer_ws
from tests.conftest import UNIT
from tests.example_kit import EXAMPLES, install, mint, require

WATCH = EXAMPLES / "node-danmaku"


class Lines:
    """The lines a process writes to one of its pipes, read by a thread, each waited for
    with a timeout (a test that hangs says what it saw)."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pipe = pipe
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next(self, timeout: float = 10.0) -> str:
        try:
            line = self._queue.get(timeout=timeout * UNIT)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout * UNIT} s; seen {self.seen}") from None
        assert line is not None, f"the pipe closed; seen {self.seen}"
        self.seen.append(line)
        return line

    def close(self) -> None:
        """Once the process has ended: the rest is read, and the pipe closed."""
        self._thread.join(10 * UNIT)
        self._pipe.close()

    def until(self, predicate: str, timeout: float = 10.0) -> str:
        while predicate not in (line := self.next(timeout)):
            pass
        return line


@pytest.fixture(scope="module")
def installed() -> None:
    install(WATCH)


def watch(node: Node, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [require("node"), "watch.js", node.base.replace("http", "ws") + "/ws", *args],
        cwd=WATCH,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


@pytest.fixture
def watcher(installed: None, node: Node) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
    node.room("river")
    # a screen token, as a bot that only reads would get one
    token = mint(node, "river", "danmaku-bot", "Bot", role="screen")
    process = watch(node, "river", "--token", token)
    assert process.stdout is not None and process.stderr is not None
    out, err = Lines(process.stdout), Lines(process.stderr)
    try:
        yield process, out, err
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        out.close()
        err.close()


def test_the_node_script_prints_each_danmaku_of_the_room_as_a_line(watcher, node):
    process, out, err = watcher
    assert "joined river as Bot" in err.until("joined")
    texts = ["666", "弹幕来了 🎉", XSS]
    with viewer_ws(node.base, "river", name="Ann") as ann:
        for text in texts:
            ann.ok("danmaku", text=text)
            # one at a time: the room merges identical danmaku, not different ones
            assert out.next() == f"Ann: {text}"
    process.send_signal(signal.SIGINT)  # Ctrl-C: it closes the connection and exits
    assert process.wait(10 * UNIT) == 0, err.seen


def test_the_node_script_prints_json_lines_with_the_token_from_the_environment(installed, node):
    node.room("lake")
    token = mint(node, "lake", "json-bot", "JsonBot", role="screen")
    process = watch(node, "lake", "--json", HUDONG_TOKEN=token)
    assert process.stdout is not None and process.stderr is not None
    out, err = Lines(process.stdout), Lines(process.stderr)
    try:
        assert "joined lake as JsonBot" in err.until("joined")
        with viewer_ws(node.base, "lake", name="Ann") as ann:
            sent = ann.ok("danmaku", text=XSS)
            printed = json.loads(out.next())
        assert printed["id"] == sent["event"]
        assert (printed["type"], printed["text"], printed["user"]["name"]) == (
            "danmaku",
            XSS,
            "Ann",
        )
    finally:
        process.kill()
        process.wait()
        out.close()
        err.close()


def test_the_node_script_says_why_it_cannot_join_and_exits_1(installed, node):
    process = watch(node, "no-such-room")
    stdout, stderr = process.communicate(timeout=20 * UNIT)
    assert process.returncode == 1, stderr
    assert "cannot join no-such-room: room_not_found" in stderr
    assert stdout == ""


def test_the_node_script_without_a_room_prints_its_usage(installed, node):
    process = subprocess.run(
        [require("node"), "watch.js"], cwd=WATCH, capture_output=True, text=True, timeout=20
    )
    assert process.returncode == 2
    assert process.stderr.startswith("usage: node watch.js WS_URL ROOM")
