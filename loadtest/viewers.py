"""The tool's WebSocket clients and how they are connected.

* ``Client`` — one asyncio connection: upgrade, ``hello``, ``join`` (PROTOCOL.md,
  "Session"), pings answered; ``Probe`` parses every batch and timestamps each danmaku
  (the latency probes); ``Member`` sends commands and waits for their ``ack``, tracks
  ``state`` versions and counts batches cheaply (publishers, voters, entrants).
* ``Worker`` — a ``python -m loadtest.drain`` process of thousands of cheap viewers,
  driven over its stdin/stdout.
* ``Audience`` — the viewers of one room on one node: drains in workers and probes
  here, joined in slices so that the probes are spread over the node's connection
  order; its counters, close codes and teardown.
* ``paced`` — an absolute send schedule (even or Poisson), ``danmaku_frame`` — one
  publisher danmaku that carries its send time.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from loadtest import wire
from loadtest.servers import PROJECT_ROOT, Server
from protocol.codec import JSON
from protocol.codes import CLOSE_BY_NAME

TEXT_PREFIX = "lt "  # a probe reads "lt <send ns> <seq> ..." back out of each danmaku
TEXT_PAD = "danmaku 233333 gogo nice!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
TEXT_CHARS = 79  # like the peer harness's ~80-byte messages (BENCHMARKS.md)
CLOSE_NAMES = {str(c.code): name for name, c in CLOSE_BY_NAME.items()}
# Errors after which a command is sent again with the same idempotency key.
RETRYABLE = ("store_unavailable", "rate_limited", "internal_error")
SLICES = 10  # probes join among the drains in this many slices


@dataclass
class ClientStats:
    """What the clients of one group saw; ``closing`` once the tool closes them itself."""

    disconnects: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)
    pings: int = 0
    other_frames: int = 0
    closing: bool = False


class Client(asyncio.Protocol):
    """One WebSocket client: upgrade, hello, join (PROTOCOL.md, "Session"), then frames."""

    def __init__(self, host: str, port: int, join: dict[str, Any], stats: ClientStats) -> None:
        self.key = wire.new_key()
        self.request = wire.upgrade_request(host, port, "/ws", self.key)
        self.join = wire.client_frame(wire.OP_TEXT, JSON.encode(join))
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buf = self.rest + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.rest = buf
                return
            problem = wire.check_upgrade(buf[:end], self.key)
            if problem:
                self._fail(problem)
                return
            self.upgraded = True
            buf = buf[end + 4 :]
        frames, self.rest = wire.split_frames(buf)
        for op, payload in frames:
            if op == wire.OP_TEXT:
                if self.ready.done():
                    self.on_message(payload, now)
                else:
                    self._handshake(payload)
            elif op == wire.OP_PING:
                self.stats.pings += 1
                self.send(wire.client_frame(wire.OP_PONG, payload))
            elif op == wire.OP_CLOSE:
                code = wire.close_code(payload)
                self._closed(str(code) if code is not None else "no_code")
                return

    def _handshake(self, payload: bytes) -> None:
        msg = JSON.decode(payload)
        kind = msg.get("type")
        if kind == "hello":
            self.send(self.join)
        elif kind == "joined":
            self.on_joined(msg)
            self.ready.set_result(True)
        else:
            self._fail(f"join: {payload[:160].decode(errors='replace')}")

    def on_joined(self, msg: dict[str, Any]) -> None:
        pass

    def on_message(self, payload: bytes, now_ns: int) -> None:
        self.stats.other_frames += 1

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        self.closed = True
        self.abort()

    def _closed(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self.ready.done() and not self.stats.closing:
            self.stats.disconnects += 1
            self.stats.close_codes[why] = self.stats.close_codes.get(why, 0) + 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed during handshake: {why}"))
        self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed("eof")


class Probe(Client):
    """A viewer that parses every batch and records (send time, receipt time) per danmaku."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.frames = 0
        self.messages = 0
        self.sent_ns = array.array("q")
        self.recv_ns = array.array("q")

    def on_message(self, payload: bytes, now_ns: int) -> None:
        msg = JSON.decode(payload)
        if msg.get("type") != "batch":
            self.stats.other_frames += 1
            return
        self.frames += 1
        for ev in msg["events"]:
            if ev.get("type") != "danmaku":
                continue
            self.messages += 1
            text = ev.get("text", "")
            if text.startswith(TEXT_PREFIX):
                self.sent_ns.append(int(text.split(" ", 2)[1]))
                self.recv_ns.append(now_ns)


class Member(Client):
    """A viewer or host that sends commands and waits for their answer (by ``id``),
    counts batches cheaply, counts the errors and notices it gets, and tracks ``state``
    versions: for each acknowledged state change it records the time from the ``ack``
    to the first ``state`` message whose ``version`` includes it."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 1
        self.state_version = -1  # the version the views held are at
        self.gaps = 0  # state messages that did not follow the version held
        self.asked = False  # a snapshot was asked for after a gap, none came yet
        self.waiting: list[tuple[int, int]] = []  # (version, ack time ns)
        self.state_lat_ms: list[float] = []
        self.state_ack_ns: list[int] = []  # the ack time of each state_lat_ms sample
        self.batches = 0
        self.danmaku = 0
        self.errors: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()

    def on_message(self, payload: bytes, now_ns: int) -> None:
        if payload.startswith(wire.BATCH_PREFIX):
            self.batches += 1
            self.danmaku += payload.count(wire.DANMAKU_MARK)
            return
        msg = JSON.decode(payload)
        kind = msg.get("type")
        if kind == "state":
            self._state(int(msg.get("version", -1)), now_ns, msg.get("base"))
            return
        if kind == "snapshot":  # asked for after a gap, or after draining
            self.asked = False
            self._state(int(msg["snapshot"].get("version", -1)), now_ns)
            return
        fut = self.pending.pop(msg.get("id", -1), None) if "id" in msg else None
        if fut is not None:
            if not fut.done():
                fut.set_result({**msg, "_at": now_ns})
            return
        if kind == "error":
            self.errors[str(msg.get("code"))] += 1
        elif kind == "notice":
            self.notices[str(msg.get("kind"))] += 1
        else:
            self.stats.other_frames += 1

    def on_joined(self, msg: dict[str, Any]) -> None:
        self.state_version = int(msg.get("snapshot", {}).get("version", -1))

    def _state(self, version: int, now_ns: int, base: int | None = None) -> None:
        """A state message (changes from ``base``, PROTOCOL.md "State messages") or a
        snapshot (``base`` None). One whose base is after the version held shows a
        missed message: counted in ``gaps``, and a snapshot is asked for (once)."""
        if base is not None and base > self.state_version:
            self.gaps += 1
            if not self.asked:
                self.asked = True
                self.send(wire.client_frame(wire.OP_TEXT, b'{"op":"snapshot"}'))
            return
        self.state_version = max(self.state_version, version)
        left = []
        for v, t in self.waiting:
            if v <= version:
                self.state_lat_ms.append((now_ns - t) / 1e6)
                self.state_ack_ns.append(t)
            else:
                left.append((v, t))
        self.waiting = left

    def ack_seen(self, reply: dict[str, Any]) -> None:
        """Start the ack → state clock for a state-changing command's ack."""
        version = reply.get("version")
        if not isinstance(version, int):
            return
        if self.state_version >= version:
            self.state_lat_ms.append(0.0)  # the state arrived before the ack
            self.state_ack_ns.append(int(reply["_at"]))
        else:
            self.waiting.append((version, int(reply["_at"])))

    async def call(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        mid = self.next_id
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[mid] = fut
        self.send(wire.client_frame(wire.OP_TEXT, JSON.encode({**cmd, "id": mid})))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(mid, None)

    async def command(self, cmd: dict[str, Any], timeout: float, deadline: float) -> dict[str, Any]:
        """Send until answered: retry (same key) on timeout and retryable errors."""
        while True:
            try:
                reply = await self.call(cmd, timeout)
            except TimeoutError:
                if time.monotonic() > deadline or self.closed:
                    return {"type": "error", "code": "timeout"}
                continue
            if reply.get("type") == "error" and reply.get("code") in RETRYABLE:
                if time.monotonic() > deadline:
                    return reply
                await asyncio.sleep(float(reply.get("retry_after_ms", 200)) / 1000)
                continue
            return reply


C = TypeVar("C", bound=Client)


async def connect(
    cls: type[C],
    server: Server,
    join: dict[str, Any],
    stats: ClientStats,
    timeout: float,
    rcvbuf: int | None = None,
) -> C:
    """One client, joined; ``rcvbuf`` sets a small receive buffer (a slow consumer)."""
    loop = asyncio.get_running_loop()

    def factory() -> C:
        return cls(server.host, server.port, join, stats)

    if rcvbuf is None:
        conn = loop.create_connection(factory, server.host, server.port)
    else:
        sock = socket.socket(socket.AF_INET6 if ":" in server.host else socket.AF_INET)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, (server.host, server.port)), timeout)
        except BaseException:
            sock.close()
            raise
        conn = loop.create_connection(factory, sock=sock)
    _, client = await asyncio.wait_for(conn, timeout)
    await asyncio.wait_for(client.ready, timeout)
    return client


async def connect_many(
    cls: type[C],
    server: Server,
    n: int,
    join: dict[str, Any],
    stats: ClientStats,
    timeout: float,
    concurrency: int = 100,
    rcvbuf: int | None = None,
) -> tuple[list[C], list[str]]:
    """``n`` clients, at most ``concurrency`` joining at once: those joined, the errors."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> C:
        async with gate:
            return await connect(cls, server, join, stats, timeout, rcvbuf)

    out = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    return [c for c in out if isinstance(c, cls)], [repr(e) for e in out if not isinstance(e, cls)]


def close_code_names(sources: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Close codes summed over ``sources``, named (``4008 too_slow``, ``eof``, ...)."""
    out: dict[str, int] = {}
    for codes in sources:
        for code, n in codes.items():
            name = f"{code} {CLOSE_NAMES[code]}" if code in CLOSE_NAMES else code
            out[name] = out.get(name, 0) + n
    return out


# --- drain workers ------------------------------------------------------------------------


class Worker:
    """A loadtest.drain process, driven over its stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, timeout: float) -> None:
        self.proc = proc
        self.timeout = timeout
        self.last: dict[str, Any] = {}
        self.lock = asyncio.Lock()

    @classmethod
    async def start(
        cls, server: Server, room: str, args: argparse.Namespace, lifetime: float
    ) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loadtest.drain",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--room",
            room,
            "--interval-ms",
            str(args.drain_interval_ms),
            "--concurrency",
            str(args.connect_concurrency),
            "--handshake-timeout",
            str(args.handshake_timeout),
            "--max-lifetime",
            str(lifetime),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=PROJECT_ROOT,
        )
        return cls(proc, args.handshake_timeout + 10)

    async def command(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self.lock:
            self.proc.stdin.write(line.encode() + b"\n")
            await self.proc.stdin.drain()
            out = await asyncio.wait_for(self.proc.stdout.readline(), self.timeout)
        if not out:
            raise RuntimeError(f"drain worker {self.proc.pid} exited")
        reply: dict[str, Any] = json.loads(out)
        return reply

    async def snap(self) -> dict[str, Any]:
        self.last = await self.command("snap")
        return self.last

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.command("close")
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


COUNTS = ("ready", "failed", "connecting", "frames", "messages", "disconnects")


class Audience:
    """The viewers of one room on one node: cheap drain viewers in worker processes and
    latency probes in this one. Options read from ``args``: ``drain_interval_ms``,
    ``connect_concurrency``, ``connect_timeout``, ``handshake_timeout``, ``deadline``."""

    def __init__(self, server: Server, room: str, args: argparse.Namespace) -> None:
        self.server = server
        self.room = room
        self.args = args
        self.workers: list[Worker] = []
        self.probes: list[Probe] = []
        self.stats = ClientStats()
        self.connected: dict[str, Any] = {}

    async def connect(self, viewers: int, probes: int, workers: int) -> dict[str, Any]:
        """Join ``viewers`` anonymously, ``probes`` of them latency probes, the rest in
        ``workers`` drain processes; in slices, each slice's drains first, so that the
        probes are spread over the node's connection order. Bounded by
        ``--connect-timeout``; returns (and keeps) what joined and what failed."""
        a = self.args
        n_probes = min(probes, viewers)
        n_drains = viewers - n_probes
        self.workers = [
            await Worker.start(self.server, self.room, a, a.deadline + 30)
            for _ in range(max(1, workers) if n_drains else 0)
        ]
        deadline = time.monotonic() + a.connect_timeout
        errors: list[str] = []
        probe_failed = 0
        slices = max(1, min(SLICES, n_probes))
        started = time.monotonic()
        join = {"op": "join", "room": self.room}
        for i in range(slices):
            lo, hi = n_drains * i // slices, n_drains * (i + 1) // slices
            if hi > lo:
                k = len(self.workers)
                for j, w in enumerate(self.workers):
                    share = (hi - lo) * (j + 1) // k - (hi - lo) * j // k
                    if share:
                        await w.command(f"connect {share}")
                while time.monotonic() < deadline:
                    c = await self.drain_counts()
                    if c["connecting"] == 0 and c["ready"] + c["failed"] >= hi:
                        break
                    await asyncio.sleep(0.05)
            plo, phi = n_probes * i // slices, n_probes * (i + 1) // slices
            ok, failed = await connect_many(
                Probe, self.server, phi - plo, join, self.stats, a.handshake_timeout
            )
            self.probes += ok
            probe_failed += len(failed)
            errors += [f"probe: {e}" for e in failed]
            if time.monotonic() > deadline:
                errors.append("connect deadline reached")
                break
        c = await self.counts()
        for w in self.workers:
            errors.extend(w.last.get("errors", []))
        self.connected = {
            "connected": c["ready"],
            "failed": c["failed"] + probe_failed,
            "still_connecting": c["connecting"],
            "probes": len(self.probes),
            "time_s": round(time.monotonic() - started, 2),
            "errors_sample": sorted(set(errors))[:5],
        }
        return self.connected

    async def drain_counts(self) -> dict[str, int]:
        """The drain workers' counters, summed."""
        if not self.workers:
            return dict.fromkeys(COUNTS, 0)
        snaps = await asyncio.gather(*(w.snap() for w in self.workers))
        return {k: sum(int(s.get(k, 0)) for s in snaps) for k in COUNTS}

    async def counts(self) -> dict[str, int]:
        """Drains and probes: ready, failed, connecting, frames, messages, disconnects."""
        c = await self.drain_counts()
        c["ready"] += len(self.probes)
        c["frames"] += sum(p.frames for p in self.probes)
        c["messages"] += sum(p.messages for p in self.probes)
        c["disconnects"] += self.stats.disconnects
        return c

    def close_codes(self) -> list[Mapping[str, int]]:
        return [w.last.get("close_codes", {}) for w in self.workers] + [self.stats.close_codes]

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]

    async def close(self) -> None:
        self.stats.closing = True
        for p in self.probes:
            p.abort()
        await asyncio.gather(*(w.close() for w in self.workers), return_exceptions=True)


# --- sending --------------------------------------------------------------------------------


def danmaku_frame(seq: int) -> bytes:
    """One danmaku whose text starts with ``lt <send time ns> <seq>``, ~79 characters."""
    text = f"{TEXT_PREFIX}{time.time_ns()} {seq:06d} {TEXT_PAD}"[:TEXT_CHARS]
    # No "id": successful danmaku are then not acknowledged (PROTOCOL.md, "Commands").
    return wire.client_frame(wire.OP_TEXT, JSON.encode({"op": "danmaku", "text": text}))


async def paced(
    rate: float,
    seconds: float,
    send: Callable[[int], object],
    *,
    poisson_seed: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """``send(seq)`` ``rate`` times a second for ``seconds`` on an absolute schedule:
    evenly spaced, or Poisson arrivals (exponential gaps) with ``poisson_seed``. A late
    wake-up sends everything due at once. Returns how many were sent."""
    loop = asyncio.get_running_loop()
    rng = random.Random(poisson_seed)
    start = loop.time()
    end = start + seconds
    due, seq = start, 0
    while not stop() and due < end:
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        now = loop.time()
        while due <= now and due < end:
            send(seq)
            seq += 1
            due = due + rng.expovariate(rate) if poisson_seed is not None else start + seq / rate
    return seq


class Publisher:
    """Sends danmaku through ``senders`` in turn (hosts or viewers), on a schedule."""

    def __init__(self, senders: list[Member]) -> None:
        self.senders = senders
        self.sent = 0
        self.sent_by = [0] * len(senders)  # per sender

    def send(self, seq: int) -> None:
        i = seq % len(self.senders)
        self.senders[i].send(danmaku_frame(seq))
        if i >= len(self.sent_by):  # senders added after the start (fanout, crossnode)
            self.sent_by += [0] * (len(self.senders) - len(self.sent_by))
        self.sent_by[i] += 1
        self.sent = seq + 1

    async def run(self, rate: float, seconds: float, poisson_seed: int | None = None) -> int:
        """Until every sender is closed or the schedule ends; the danmaku sent."""
        return await paced(
            rate,
            seconds,
            self.send,
            poisson_seed=poisson_seed,
            stop=lambda: all(s.closed for s in self.senders),
        )

    @property
    def errors(self) -> dict[str, int]:
        """The ``error`` replies the senders got, by code (e.g. ``room_rate_limited``)."""
        out: Counter[str] = Counter()
        for s in self.senders:
            out.update(s.errors)
        return dict(out)


async def wait_delivered(
    delivered: Callable[[], Awaitable[int]], expected: int, cooldown: float, stall: float
) -> float:
    """Wait until ``delivered()`` reaches ``expected``, or has not grown for ``stall``
    seconds, or ``cooldown`` seconds passed; returns the seconds waited."""
    t0 = time.monotonic()
    last, last_change = -1, t0
    while time.monotonic() - t0 < cooldown:
        v = await delivered()
        if v >= expected:
            break
        if v != last:
            last, last_change = v, time.monotonic()
        elif time.monotonic() - last_change > stall:
            break
        await asyncio.sleep(0.1)
    return round(time.monotonic() - t0, 2)
