"""The cockpit scenario (issue 16, acceptance 5): what N open /cockpit pages cost the
node that serves a room of 1,000 viewers.

Each "page" here does what one open page of ``clients/web/cockpit.js`` asks of the node,
no more and no less (tests/test_loadtest.py reads cockpit.js and keeps the two in step):

* one WebSocket, joined to the room with the page's token (a host token, as the event
  team opens it), that takes every batch and state message the room sends;
* its polling loops, each awaiting its requests in order and then sleeping its
  interval, as cockpit.js's ``poll``: ``GET …/stats`` every 2 s (``STATS_MS``);
  ``GET …/timeline`` then ``GET …/alerts`` every 5 s (``TIMELINE_MS``);
  ``GET …/top-words?n=20`` every 5 s (``WORDS_MS``); each loop on a keep-alive HTTP
  connection of its own, as a browser keeps them. The page's files (HTML, scripts),
  loaded once when it opens, are not part of the steady cost measured.

1. server: as every scenario (``--spawn``, ``--server-cpu``, ``--server-src`` ...);
2. connect ``--viewers`` idle viewers (drain workers), then a host sends ``--danmaku``
   Chinese danmaku (loadtest/chinese.py), so that stats, timeline and top words have
   something to count;
3. ``--rounds`` times: a window of ``--duration`` seconds without pages, then
   ``--pages`` pages open, ``--settle`` seconds for their first requests, a window of
   the same length with them, the pages closed and ``--settle`` seconds again. The
   node's CPU (utime + stime, loadtest/procstat.py) is read at each window's ends;
4. the pages' cost: the mean CPU with them less the mean without, in % of one core.

The node's degrade level is not polled (its REST requests would be measured too).
Every page request must answer 200 (a check). Exit status: 0, 1 if a check or an SLO
given on the command line failed, 2 if the run could not be done.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from typing import Any

from loadtest import chinese, stats
from loadtest.harness import Run
from loadtest.results import Fatal, Rows
from loadtest.servers import Server
from loadtest.viewers import Client, Member

NAME = "cockpit"
HELP = "N cockpit pages on a room of 1,000 viewers: the node's CPU with and without them"
CONFIG = (
    "viewers",
    "workers",
    "pages",
    "danmaku",
    "rounds",
    "settle",
    "duration",
    "server_cpu",
    "gen_cpu",
    "server_env",
)
LOAD = {"viewers": 1000}
SLOS = {"--slo-pages-cpu-pct": "what the pages cost the node, %% of one core"}
DEGRADE = False

# What one open page of clients/web/cockpit.js asks, loop by loop: (interval s, the
# requests each round awaits in order, under /api/v1/rooms/{room}). Kept in step with
# cockpit.js by tests/test_loadtest.py.
PAGE_LOOPS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (2.0, ("/stats",)),
    (5.0, ("/timeline", "/alerts")),
    (5.0, ("/top-words?n=20",)),
)
HTTP_TIMEOUT_S = 10.0


class KeepAlive:
    """One keep-alive HTTP/1.1 connection of a page, as a browser holds one: GETs with
    the page's token, one at a time."""

    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.token = token
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.opened = 0  # connections opened

    async def get(self, path: str) -> int:
        """The answer's status (its body read and dropped); 0 when the connection failed.
        The node closes a connection idle for ``limits.http_idle_timeout_s`` (5 s): as a
        browser does, a request that finds its kept connection closed is sent again on a
        new one."""
        for attempt in (1, 2):
            reused = self.streams is not None
            try:
                return await asyncio.wait_for(self._get(path), HTTP_TIMEOUT_S)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
                self.close()
                if not reused or attempt == 2:
                    return 0
        return 0

    async def _get(self, path: str) -> int:
        if self.streams is not None and self.streams[0].at_eof():
            self.close()  # closed by the node while idle: a new one
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.server.host, self.server.port)
            self.opened += 1
        reader, writer = self.streams
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {self.server.host}:{self.server.port}\r\n"
                f"Authorization: Bearer {self.token}\r\nAccept: */*\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        if "content-length" not in headers:
            raise ValueError(f"no content-length from {path}")
        await reader.readexactly(int(headers["content-length"]))
        return status

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class Page:
    """One open cockpit page: its WebSocket in the room and its polling loops."""

    def __init__(self, run: Run, token: str) -> None:
        self.run = run
        self.token = token
        self.answers: dict[int, int] = {}  # status -> requests answered with it
        self.tasks: list[asyncio.Task[None]] = []
        self.links: list[KeepAlive] = []
        self.socket: Client | None = None

    async def open(self) -> None:
        join = {"op": "join", "room": self.run.room, "token": self.token}
        ok, errors = await self.run.connect(Client, 1, join)
        if not ok:
            raise Fatal(f"a cockpit page could not join: {errors[:1]}")
        self.socket = ok[0]
        loop = asyncio.get_running_loop()
        for interval, paths in PAGE_LOOPS:
            link = KeepAlive(self.run.server, self.token)
            self.links.append(link)
            self.tasks.append(loop.create_task(self._poll(link, interval, paths)))

    async def _poll(self, link: KeepAlive, interval: float, paths: tuple[str, ...]) -> None:
        base = f"/api/v1/rooms/{self.run.room}"
        while True:
            for path in paths:
                status = await link.get(base + path)
                self.answers[status] = self.answers.get(status, 0) + 1
                if status != 200:
                    break  # cockpit.js's poll: a failed step ends the round
            await asyncio.sleep(interval)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        # bounded: a loop stuck in a read the node never answers must not hold the run
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        for link in self.links:
            link.close()
        if self.socket is not None:
            self.socket.stats.closing = True
            self.socket.abort()


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--pages", type=int, default=20, help="open cockpit pages")
    load.add_argument("--danmaku", type=int, default=300, help="danmaku sent before measuring")
    load.add_argument("--rounds", type=int, default=2, help="windows without, then with pages")
    load.add_argument("--settle", type=float, default=3, help="wait after opening/closing pages")
    load.add_argument("--duration", type=float, default=30, help="each measured window (s)")


def check_args(args: argparse.Namespace) -> None:
    if args.duration <= 0 or args.rounds < 1 or args.pages < 1 or args.danmaku < 0:
        raise Fatal(
            "--duration must be positive, --rounds and --pages at least 1, --danmaku 0 or more"
        )
    if args.deadline is None:
        per_round = 2 * (args.duration + args.settle) + 10
        args.deadline = args.connect_timeout + args.danmaku / 50 + args.rounds * per_round + 60


async def seed(run: Run, host_token: str, n: int) -> int:
    """``n`` Chinese danmaku from a host, about 100 a second; how many were accepted."""
    join = {"op": "join", "room": run.room, "token": host_token}
    ok, errors = await run.connect(Member, 1, join)
    if not ok:
        raise Fatal(f"the host could not join: {errors[:1]}")
    host, accepted = ok[0], 0
    deadline = time.monotonic() + 60
    for text in itertools.islice(chinese.texts(seed=16), n):
        reply = await host.command({"op": "danmaku", "text": text}, 5.0, deadline)
        accepted += reply.get("type") == "ack"
        await asyncio.sleep(0.01)
    host.stats.closing = True
    host.abort()
    return accepted


async def window(run: Run, seconds: float) -> dict[str, Any]:
    w0 = {**run.mark(), "cpu": run.server.cpu()}
    await asyncio.sleep(seconds)
    w1 = {**run.mark(), "cpu": run.server.cpu()}
    dur = w1["t"] - w0["t"]
    return {"window_s": round(dur, 3), **stats.cpu_window(w0["cpu"], w1["cpu"], dur)}


async def body(run: Run) -> None:
    a, res = run.args, run.res
    host_token = await asyncio.to_thread(run.api.prepare_room, run.room)
    aud = run.audience()
    pages: list[Page] = []

    async def status() -> str:
        c = await aud.counts()
        return f"viewers {c['ready']} | pages {len(pages)}"

    run.status = status
    run.phase = "connect"
    res["connect"] = await aud.connect(a.viewers, 0, a.workers)
    if not res["connect"]["connected"]:
        raise Fatal("no viewer connected")
    run.phase = "seed"
    res["danmaku_accepted"] = await seed(run, host_token, a.danmaku)
    await asyncio.sleep(a.settle)
    without, with_pages = [], []
    answers: dict[int, int] = {}  # status -> requests answered with it, all pages
    for _ in range(a.rounds):
        run.phase = "without"
        without.append(await window(run, a.duration))
        run.phase = "open"
        pages = [Page(run, host_token) for _ in range(a.pages)]
        for page in pages:
            await page.open()
        await asyncio.sleep(a.settle)
        run.phase = "with"
        before = sum(sum(p.answers.values()) for p in pages)
        opened = sum(link.opened for p in pages for link in p.links)
        with_pages.append(await window(run, a.duration))
        res.setdefault("requests_in_windows", 0)
        res.setdefault("connections_in_windows", 0)
        res["requests_in_windows"] += sum(sum(p.answers.values()) for p in pages) - before
        res["connections_in_windows"] += sum(k.opened for p in pages for k in p.links) - opened
        for page in pages:
            for code, n in page.answers.items():
                answers[code] = answers.get(code, 0) + n
            await page.close()
        pages = []
        run.phase = "closed"
        await asyncio.sleep(a.settle)
    after = await aud.counts()
    mean_without = sum(w["cpu_pct"] for w in without) / len(without)
    mean_with = sum(w["cpu_pct"] for w in with_pages) / len(with_pages)
    cost = round(mean_with - mean_without, 2)
    res.update(
        {
            "connected": res["connect"]["connected"],
            "windows_without": without,
            "windows_with": with_pages,
            "server_cpu_pct_without": round(mean_without, 2),
            "server_cpu_pct_with": round(mean_with, 2),
            "pages_cpu_pct": cost,
            "per_page_cpu_pct": round(cost / a.pages, 3),
            "answers": {str(k): v for k, v in sorted(answers.items())},
            "disconnects": after["disconnects"],
            "disconnect_codes": run.close_codes(),
            "server_rss_kb": run.server.memory_kb()[0],
        }
    )
    run.check(
        "pages_answered",
        set(answers) == {200},
        f"page requests by status: {json.dumps(res['answers'])}",
    )
    run.check("seeded", res["danmaku_accepted"] == a.danmaku, f"{res['danmaku_accepted']} taken")
    run.slo("pages_cpu_pct", a.slo_pages_cpu_pct, cost)


def rows(res: dict[str, Any]) -> Rows:
    con = res["connect"]

    def each(windows: list[dict[str, Any]]) -> str:
        return ", ".join(f"{w['cpu_pct']}%" for w in windows)

    return [
        ("viewers", f"{con['connected']} connected, {con['failed']} failed, in {con['time_s']} s"),
        ("danmaku", f"{res['danmaku_accepted']} sent before measuring"),
        (
            "without pages",
            f"{res['server_cpu_pct_without']}% of a core ({each(res['windows_without'])})",
        ),
        ("with pages", f"{res['server_cpu_pct_with']}% of a core ({each(res['windows_with'])})"),
        (
            "the pages' cost",
            f"{res['pages_cpu_pct']}% of a core, {res['per_page_cpu_pct']}% per page "
            f"({res['requests_in_windows']} requests on {res['connections_in_windows']} new "
            "connections in the windows)",
        ),
        ("answers", json.dumps(res["answers"])),
        ("disconnects", f"{res['disconnects']} {res['disconnect_codes'] or ''}".strip()),
        ("server RSS", f"{res['server_rss_kb'] / 1024:.1f} MiB"),
    ]
