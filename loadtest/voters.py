"""Voting viewers in client processes, for the burst scenarios (``votes``, ``chatvotes``):
the parent spawns the processes (:class:`Fleet`), each opens and joins its raw WebSocket
viewers (:class:`Voter`, :func:`join_all`), all wait for the one start the parent sets
(:func:`started`), then each viewer sends its command and the process reports what came
back."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from loadtest import wire
from loadtest.harness import Run, collect_workers, worker_stopper
from loadtest.results import Fatal
from loadtest.viewers import Client, ClientStats


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


class Voter(Client):
    """One viewer of a burst: a raw connection (loadtest/viewers.py ``Client``) whose
    only frame of interest is the reply to its command (``"id": 2``). Every viewer gets
    every state and count; those frames are passed over unparsed, and no task waits
    per frame, or the generator's core, not the node, would set the latency."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.waiting: asyncio.Future[dict[str, Any]] | None = None

    def on_message(self, payload: bytes, now_ns: int) -> None:
        waiting = self.waiting
        if waiting is None or waiting.done() or b'"id":2' not in payload:
            return
        message = orjson.loads(payload)
        if message.get("id") == 2:
            waiting.set_result(message)

    async def command(self, frame: bytes, timeout: float) -> dict[str, Any]:
        """Send ``frame`` (a command with ``"id": 2``) and return its reply; TimeoutError
        after ``timeout`` seconds."""
        self.waiting = asyncio.get_running_loop().create_future()
        self.send(frame)
        async with asyncio.timeout(timeout):
            return await self.waiting

    def close(self) -> None:
        """The closing handshake's first frame (1000); the node answers and closes."""
        self.send(wire.client_frame(wire.OP_CLOSE, (1000).to_bytes(2, "big")))


def command_frame(command: dict[str, Any]) -> bytes:
    return wire.client_frame(wire.OP_TEXT, orjson.dumps(command))


async def join_all(share: Share) -> list[tuple[int, Voter]]:
    """Open and join the process's viewers, 64 at a time (5 tries each to connect):
    (viewer index, connection) in the order they joined."""
    url = urlsplit(share.ws_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    join = {"op": "join", "id": 1, "room": share.room}
    stats = ClientStats()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(64)
    conns: list[tuple[int, Voter]] = []

    async def open_one(i: int) -> None:
        async with gate:
            for attempt in range(5):
                try:
                    _, voter = await asyncio.wait_for(
                        loop.create_connection(lambda: Voter(host, port, join, stats), host, port),
                        30,
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                raise ConnectionError("could not connect")
            await asyncio.wait_for(voter.ready, 30)  # hello, join, joined
            conns.append((share.first + i, voter))
            with share.progress.get_lock():
                share.progress.value += 1

    await asyncio.gather(*(open_one(i) for i in range(share.count)))
    return conns


async def close_all(conns: list[tuple[int, Voter]]) -> None:
    """Close every viewer, and give the node a moment to answer before the process ends."""
    for _, voter in conns:
        voter.stats.closing = True
        voter.close()
    await asyncio.sleep(0.5)


async def started(share: Share) -> float:
    """Wait for the common start; it comes from the parent through shared memory: poll."""
    while time.time() < share.start_at.value or share.start_at.value == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return float(share.start_at.value)


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
        self.on_first_node: list[range] = []  # the viewers of the processes on node 0
        self.stop = worker_stopper(self.procs)
        run.closers.append(self.stop)
        # with --url and --also-url, the processes take the nodes in turn
        self.ws_urls = [node.base.replace("http", "ws", 1) + "/ws" for node in run.deployment.nodes]
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
                self.ws_urls[i % len(self.ws_urls)], self.room, count, first, ack_timeout,
                self.start_at, self.out, self.progress, **extra,
            )  # fmt: skip
            p = self.ctx.Process(target=worker, args=(part,), daemon=True)
            p.start()
            self.procs.append(p)
            if i % len(self.ws_urls) == 0:
                self.on_first_node.append(range(first, first + count))
            first += count

    def of_first_node(self, index: int) -> bool:
        """Whether viewer ``index`` is on node 0, the one whose CPU is read."""
        return any(index in viewers for viewers in self.on_first_node)

    async def joined(self, deadline: float) -> int:
        """How many joined, once all have or a process died or ``deadline`` (monotonic)."""
        while self.progress.value < self.viewers:
            if time.monotonic() > deadline or not any(p.is_alive() for p in self.procs):
                break
            await asyncio.sleep(0.2)
        return int(self.progress.value)

    async def all_joined(self, deadline: float) -> int:
        """How many joined, once all have; ``Fatal`` when some could not join before
        ``deadline``: a burst of fewer viewers than asked measures something else."""
        connected = await self.joined(deadline)
        if connected >= self.viewers:
            return connected
        errors = []
        while not self.out.empty():
            kind, payload = self.out.get_nowait()
            if kind == "error":
                errors.append(str(payload)[:200])
        said = f": {'; '.join(errors[:3])}" if errors else ""
        raise Fatal(
            f"{connected} of {self.viewers} viewers joined before --deadline{said} (a node "
            f"holds a file descriptor per viewer: see its open-files limit, ulimit -n)"
        )

    async def go(self, deadline: float) -> tuple[float, list[Any], list[str]]:
        """Start every viewer half a second from now; the start time, then every
        process's results (flattened) and errors (``stop`` ends the processes)."""
        begin = time.time() + 0.5
        self.start_at.value = begin
        parts, errors = await collect_workers(self.out, self.procs, self.workers, deadline)
        return begin, [r for part in parts for r in part], errors
