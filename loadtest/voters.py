"""Voting viewers in client processes, for the burst scenarios (``votes``, ``chatvotes``):
the parent spawns the processes (:class:`Fleet`), each opens and joins its raw WebSocket
viewers (:func:`join_all`), all wait for the one start the parent sets (:func:`started`),
then each viewer sends its command and the process reports what came back."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from loadtest.harness import Run, collect_workers, worker_stopper


@dataclass
class Share:
    """One client process's part: ``count`` viewers numbered from ``first``; the start
    time, the result queue and the joined count are shared with the parent."""

    ws_url: str
    room: str
    count: int
    first: int
    ack_timeout: float
    start_at: Any  # multiprocessing.Value("d"): the common start, 0 until set
    out: Any  # multiprocessing.Queue: ("done", [result, ...]) or ("error", text)
    progress: Any  # multiprocessing.Value("i"): viewers joined, all processes


async def join_all(share: Share) -> list[tuple[int, Any]]:
    """Open and join the process's viewers, 64 at a time (5 tries each to connect):
    (viewer index, connection) in the order they joined."""
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    gate = asyncio.Semaphore(64)
    conns: list[tuple[int, Any]] = []

    async def open_one(i: int) -> None:
        async with gate:
            for attempt in range(5):
                try:
                    ws = await connect(
                        share.ws_url,
                        subprotocols=[Subprotocol("hudong.v1.json")],
                        compression=None,
                        ping_interval=None,
                        open_timeout=30,
                        max_size=None,
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                raise ConnectionError("could not connect")
            await ws.recv()  # hello
            await ws.send(orjson.dumps({"op": "join", "id": 1, "room": share.room}).decode())
            while orjson.loads(await ws.recv()).get("type") != "joined":
                pass
            conns.append((share.first + i, ws))
            with share.progress.get_lock():
                share.progress.value += 1

    await asyncio.gather(*(open_one(i) for i in range(share.count)))
    return conns


async def started(share: Share) -> float:
    """Wait for the common start; it comes from the parent through shared memory: poll."""
    while time.time() < share.start_at.value or share.start_at.value == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return float(share.start_at.value)


async def reply(ws: Any, timeout: float) -> dict[str, Any]:
    """The reply to the viewer's command (``"id": 2``), read within ``timeout`` seconds
    (TimeoutError). Every viewer gets every state and count: only what may be the
    reply is parsed, and one timeout covers the wait (``asyncio.wait_for`` per frame
    costs a task each), or the generator's core, not the node, sets the latency."""
    async with asyncio.timeout(timeout):
        while True:
            raw = await ws.recv()
            if '"id":2' in raw and (message := orjson.loads(raw)).get("id") == 2:
                return dict(message)


class Fleet:
    """The client processes of one burst, from the parent's side: spawned with their
    shares, waited for until joined, started together, and their reports collected."""

    def __init__(self, run: Run, viewers: int, workers: int) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.start_at = self.ctx.Value("d", 0.0)
        self.progress = self.ctx.Value("i", 0)
        self.out = self.ctx.Queue()
        self.viewers = viewers
        self.workers = max(1, min(workers, viewers))
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.stop = worker_stopper(self.procs)
        run.closers.append(self.stop)
        self.ws_url = run.server.base.replace("http", "ws", 1) + "/ws"
        self.room = run.room

    def spawn(
        self, worker: Callable[[Any], None], ack_timeout: float, share: type[Share] = Share,
        **extra: Any,
    ) -> None:  # fmt: skip
        """One process per worker, the viewers split evenly; ``extra``: fields of a
        scenario's own ``share`` type."""
        first = 0
        for i in range(self.workers):
            count = self.viewers // self.workers + (1 if i < self.viewers % self.workers else 0)
            part = share(
                self.ws_url, self.room, count, first, ack_timeout,
                self.start_at, self.out, self.progress, **extra,
            )  # fmt: skip
            p = self.ctx.Process(target=worker, args=(part,), daemon=True)
            p.start()
            self.procs.append(p)
            first += count

    async def joined(self, deadline: float) -> int:
        """How many joined, once all have or a process died or ``deadline`` (monotonic)."""
        while self.progress.value < self.viewers:
            if time.monotonic() > deadline or not any(p.is_alive() for p in self.procs):
                break
            await asyncio.sleep(0.2)
        return int(self.progress.value)

    async def go(self, deadline: float) -> tuple[float, list[Any], list[str]]:
        """Start every viewer half a second from now; the start time, then every
        process's results (flattened) and errors (``stop`` ends the processes)."""
        begin = time.time() + 0.5
        self.start_at.value = begin
        parts, errors = await collect_workers(self.out, self.procs, self.workers, deadline)
        return begin, [r for part in parts for r in part], errors
