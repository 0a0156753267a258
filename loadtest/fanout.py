"""The fan-out scenario: one room, N viewers, one publisher (ARCHITECTURE.md, "The hot path").

Phases, every one bounded:

1. server: attach to ``--url`` (and measure ``--server-pid``), or ``--spawn`` a
   ``hudong serve`` on a free loopback port with a generated admin token, pinned to
   ``--server-cpu`` with taskset; wait for ``/readyz``;
2. room: create it (``POST /api/v1/rooms``) and mint a host token for the publisher
   (viewers may send 5 commands/s, hosts 500/s; the room allows 1000 danmaku/s);
3. connect N viewers: N−P cheap "drain" viewers in ``--workers`` processes
   (loadtest/drain.py) and P latency probes here, in slices, so the probes are
   spread over the server's connection order; then the publisher; wait ``--settle``
   seconds and read the server's idle RSS;
4. publish M danmaku/s for ``--warmup`` + ``--duration`` seconds on an absolute
   schedule; each text carries its send time (``time.time_ns()``). The measured
   window is the last ``--duration`` seconds: server CPU (utime+stime of the process
   and its children), delivered frames and danmaku (drains + probes), probe latency
   (receipt − send) of danmaku sent inside the window;
5. cooldown: until every viewer has every danmaku, nothing arrived for ``--stall``
   seconds, or ``--cooldown`` seconds; what is still missing is ``undelivered_pct``;
6. close everything; stop the spawned server (SIGTERM, then SIGKILL).

Every second a progress line goes to stderr; at the end a summary table goes to
stdout and the result to ``--json-out``. Exit status: 0, 1 if an SLO given on the
command line was missed, 2 if the run could not be done.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from loadtest import procstat
from loadtest.wire import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    check_upgrade,
    client_frame,
    close_code,
    new_key,
    split_frames,
    upgrade_request,
)
from protocol.codec import JSON
from protocol.codes import CLOSE_BY_NAME

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "loadtest" / "results"
TEXT_PREFIX = "lt "  # a probe reads "lt <send ns> <seq> ..." back out of each danmaku
TEXT_PAD = "danmaku 233333 gogo nice!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
TEXT_CHARS = 79  # like the peer harness's ~80-byte messages (BENCHMARKS.md)
CLOSE_NAMES = {str(c.code): name for name, c in CLOSE_BY_NAME.items()}
HTTP_TIMEOUT_S = 5.0


# --- REST -------------------------------------------------------------------------------


def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def scrape_metrics(base: str) -> dict[str, float]:
    """hudong's Prometheus counters that tell what the server itself saw."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=HTTP_TIMEOUT_S) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(
            (
                "hudong_frames_out_total",
                "hudong_bytes_out_total",
                "hudong_messages_delivered_total",
                "hudong_events_out_total",
                "hudong_drops_total",
                "hudong_disconnects_total",
                "hudong_commands_total",
            )
        ):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def metrics_delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round(v - a.get(k, 0.0), 3) for k, v in sorted(b.items()) if v - a.get(k, 0.0)}


# --- the server under test ----------------------------------------------------------------


@dataclass
class Server:
    base: str  # http://127.0.0.1:port
    host: str
    port: int
    admin_token: str
    pid: int | None
    proc: subprocess.Popen[bytes] | None = None
    log_path: str | None = None

    def pids(self) -> list[int]:
        return procstat.process_tree(self.pid) if self.pid else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def spawn_server(args: argparse.Namespace) -> Server:
    port = args.port or free_port()
    token = secrets.token_urlsafe(24)
    cmd = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.server_cpu is not None:
        if not shutil.which("taskset"):
            raise SystemExit("--server-cpu needs taskset (util-linux)")
        cmd = ["taskset", "-c", str(args.server_cpu), *cmd]
    env = {**os.environ, "HUDONG_ADMIN_TOKEN": token}
    src = Path(args.server_src).resolve() if args.server_src else PROJECT_ROOT
    if args.server_src:  # `python -m server` imports from its working directory first
        env["PYTHONPATH"] = str(src)
    for item in args.server_env:
        key, _, value = item.partition("=")
        env[key] = value
    fd, log_path = tempfile.mkstemp(prefix="hudong-loadtest-", suffix=".server.log")
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=fd,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=src,
    )
    os.close(fd)
    server = Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, token, proc.pid, proc, log_path)
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"hudong serve exited with {proc.returncode}; log: {log_path}")
        status, _ = _try_http("GET", f"{server.base}/readyz")
        if status == 200:
            return server
        time.sleep(0.1)
    stop_server(server)
    raise SystemExit(f"hudong serve was not ready within {args.start_timeout:g} s; log: {log_path}")


def _try_http(method: str, url: str) -> tuple[int, Any]:
    try:
        return http(method, url)
    except OSError:
        return 0, None


def stop_server(server: Server) -> int | None:
    proc = server.proc
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def server_log_problems(path: str | None, limit: int = 8) -> tuple[int, list[str]]:
    if not path:
        return 0, []
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return 0, []
    bad = [ln for ln in lines if re.search(r"\b(ERROR|CRITICAL|Traceback|WARNING)\b", ln)]
    return len(bad), bad[:limit]


def server_source(args: argparse.Namespace) -> dict[str, Any]:
    """Which code a spawned server runs: a source tree's git revision, and whether the
    hot path (server/, protocol/) differs from it. Others may be editing the tree."""
    src = Path(args.server_src).resolve() if args.server_src else PROJECT_ROOT
    info: dict[str, Any] = {"path": str(src)}
    rev_file = src / ".hudong-rev"
    if rev_file.exists():
        info["rev"] = rev_file.read_text().strip()
        return info
    try:
        info["rev"] = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--", "server", "protocol"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
        info["uncommitted"] = [line[3:] for line in changed]
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def require_loopback(url: str) -> None:
    """Load is only ever aimed at this machine."""
    if urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit("loadtest targets loopback only (127.0.0.1, localhost, ::1)")


def attach_server(args: argparse.Namespace) -> Server:
    require_loopback(args.url)
    u = urlsplit(args.url)
    scheme = "https" if u.scheme in ("https", "wss") else "http"
    port = u.port or (443 if scheme == "https" else 80)
    token = args.admin_token or os.environ.get("HUDONG_ADMIN_TOKEN", "")
    if not token:
        raise SystemExit("give the admin token with --admin-token or HUDONG_ADMIN_TOKEN")
    return Server(f"{scheme}://{u.netloc}", u.hostname, port, token, args.server_pid)


def prepare_room(server: Server, room: str) -> str:
    """Create ``room`` (an existing one is fine) and return a host token for it."""
    status, body = http("POST", f"{server.base}/api/v1/rooms", server.admin_token, {"id": room})
    if status != 201 and not (status == 409 and body["error"]["code"] == "room_exists"):
        raise SystemExit(f"creating room {room!r}: {status} {body}")
    status, body = http(
        "POST",
        f"{server.base}/api/v1/rooms/{room}/tokens",
        server.admin_token,
        {"role": "host", "name": "loadtest publisher"},
    )
    if status != 201:
        raise SystemExit(f"minting a host token: {status} {body}")
    token: str = body["token"]
    return token


# --- probes and publisher: asyncio clients ------------------------------------------------


class Client(asyncio.Protocol):
    """One WebSocket client: upgrade, hello, join (PROTOCOL.md, "Session"), then frames."""

    def __init__(self, host: str, port: int, join: dict[str, Any], stats: ClientStats) -> None:
        self.key = new_key()
        self.request = upgrade_request(host, port, "/ws", self.key)
        self.join = client_frame(OP_TEXT, JSON.encode(join))
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
            problem = check_upgrade(buf[:end], self.key)
            if problem:
                self._fail(problem)
                return
            self.upgraded = True
            buf = buf[end + 4 :]
        frames, self.rest = split_frames(buf)
        for op, payload in frames:
            if op == OP_TEXT:
                if self.ready.done():
                    self.on_message(payload, now)
                else:
                    self._handshake(payload)
            elif op == OP_PING:
                self.stats.pings += 1
                self.send(client_frame(OP_PONG, payload))
            elif op == OP_CLOSE:
                code = close_code(payload)
                self._closed(str(code) if code is not None else "no_code")
                return

    def _handshake(self, payload: bytes) -> None:
        msg = JSON.decode(payload)
        kind = msg.get("type")
        if kind == "hello":
            self.send(self.join)
        elif kind == "joined":
            self.ready.set_result(True)
        else:
            self._fail(f"join: {payload[:160].decode(errors='replace')}")

    def on_message(self, payload: bytes, now_ns: int) -> None:
        self.stats.other_frames += 1

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _closed(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self.ready.done() and not self.stats.closing:
            self.stats.disconnects += 1
            self.stats.close_codes[why] = self.stats.close_codes.get(why, 0) + 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed during handshake: {why}"))
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed("eof")


@dataclass
class ClientStats:
    disconnects: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)
    pings: int = 0
    other_frames: int = 0
    closing: bool = False


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


class Publisher(Client):
    """Sends danmaku as a host; counts the errors the server answers with."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.errors: dict[str, int] = {}

    def on_message(self, payload: bytes, now_ns: int) -> None:
        if payload.startswith(b'{"type":"error"'):
            code = JSON.decode(payload).get("code", "?")
            self.errors[code] = self.errors.get(code, 0) + 1


def danmaku_frame(seq: int) -> bytes:
    text = f"{TEXT_PREFIX}{time.time_ns()} {seq:06d} {TEXT_PAD}"[:TEXT_CHARS]
    # No "id": successful danmaku are then not acknowledged (PROTOCOL.md, "Commands").
    return client_frame(OP_TEXT, JSON.encode({"op": "danmaku", "text": text}))


async def connect_client(
    cls: type[Client],
    server: Server,
    join: dict[str, Any],
    stats: ClientStats,
    timeout: float,
) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(
            lambda: cls(server.host, server.port, join, stats), server.host, server.port
        ),
        timeout,
    )
    await asyncio.wait_for(client.ready, timeout)
    return client


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


# --- the run ------------------------------------------------------------------------------


def pct(sorted_vals: list[float], q: float) -> float | None:
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def rnd(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)


class Run:
    def __init__(self, args: argparse.Namespace, server: Server) -> None:
        self.args = args
        self.server = server
        self.room = args.room or f"loadtest-{secrets.token_hex(3)}"
        self.workers: list[Worker] = []
        self.probes: list[Probe] = []
        self.probe_stats = ClientStats()
        self.pub_stats = ClientStats()
        self.publisher: Publisher | None = None
        self.res: dict[str, Any] = {}
        self.phase = "start"
        self.t0 = time.monotonic()
        self.published = 0
        self.rss_peak = 0
        self.progress_prev: tuple[float, int, int, float] | None = None

    # counters over everything -------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        snaps = await asyncio.gather(*(w.snap() for w in self.workers))
        return {
            "frames": sum(s["frames"] for s in snaps) + sum(p.frames for p in self.probes),
            "messages": sum(s["messages"] for s in snaps) + sum(p.messages for p in self.probes),
            "ready": sum(s["ready"] for s in snaps) + len(self.probes),
            "failed": sum(s["failed"] for s in snaps),
            "connecting": sum(s["connecting"] for s in snaps),
            "disconnects": sum(s["disconnects"] for s in snaps) + self.probe_stats.disconnects,
        }

    def server_cpu(self) -> tuple[float, float]:
        return procstat.cpu_user_sys(self.server.pids())

    def gen_cpu(self) -> tuple[float, float]:
        """CPU seconds of this process (probes, publisher) and of the drain workers."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        workers = sum(procstat.cpu_user_sys([w.proc.pid for w in self.workers]))
        return own.ru_utime + own.ru_stime, workers

    async def progress(self) -> None:
        """One line per second on stderr, until cancelled."""
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                c = await self.counts()
                now = time.monotonic()
                cpu = sum(self.server_cpu())
                line = (
                    f"[{now - self.t0:6.1f}s] {self.phase:<9} viewers {c['ready']}"
                    f" (+{c['connecting']} joining, {c['failed']} failed)"
                    f" published {self.published}"
                )
                if self.progress_prev is not None:
                    t, fr, ms, cp = self.progress_prev
                    dt = max(1e-6, now - t)
                    line += (
                        f" | {(c['frames'] - fr) / dt:,.0f} frames/s"
                        f" {(c['messages'] - ms) / dt:,.0f} msg/s"
                        f" | server CPU {100 * (cpu - cp) / dt:.0f}%"
                    )
                line += f" | disconnects {c['disconnects']}"
                self.progress_prev = (now, c["frames"], c["messages"], cpu)
                print(line, file=sys.stderr, flush=True)

    async def rss_sampler(self) -> None:
        while True:
            rss, _ = procstat.memory_kb(self.server.pids())
            self.rss_peak = max(self.rss_peak, rss)
            await asyncio.sleep(0.5)

    # phases ---------------------------------------------------------------------------

    async def connect_viewers(self, host_token: str) -> None:
        a, res = self.args, self.res
        n_probes = min(a.probes, a.viewers)
        n_drains = a.viewers - n_probes
        lifetime = a.deadline + 30
        self.workers = [
            await Worker.start(self.server, self.room, a, lifetime)
            for _ in range(max(1, a.workers) if n_drains else 0)
        ]
        deadline = time.monotonic() + a.connect_timeout
        errors: list[str] = []
        probe_failed = 0
        slices = max(1, min(10, n_probes))
        started = time.monotonic()
        for i in range(slices):
            # drains of this slice, spread over the workers
            lo, hi = n_drains * i // slices, n_drains * (i + 1) // slices
            if hi > lo and self.workers:
                k = len(self.workers)
                for j, w in enumerate(self.workers):
                    share = (hi - lo) * (j + 1) // k - (hi - lo) * j // k
                    if share:
                        await w.command(f"connect {share}")
                while time.monotonic() < deadline:
                    c = await self.counts()
                    if c["connecting"] == 0 and c["ready"] - len(self.probes) + c["failed"] >= hi:
                        break
                    await asyncio.sleep(0.05)
            plo, phi = n_probes * i // slices, n_probes * (i + 1) // slices
            results = await asyncio.gather(
                *(
                    connect_client(
                        Probe,
                        self.server,
                        {"op": "join", "room": self.room},
                        self.probe_stats,
                        a.handshake_timeout,
                    )
                    for _ in range(phi - plo)
                ),
                return_exceptions=True,
            )
            for r in results:
                if isinstance(r, Probe):
                    self.probes.append(r)
                else:
                    probe_failed += 1
                    errors.append(f"probe: {r!r}")
            if time.monotonic() > deadline:
                errors.append("connect deadline reached")
                break
        c = await self.counts()
        for w in self.workers:
            errors.extend(w.last.get("errors", []))
        res["connect"] = {
            "connected": c["ready"],
            "failed": c["failed"] + probe_failed,
            "still_connecting": c["connecting"],
            "probes": len(self.probes),
            "time_s": round(time.monotonic() - started, 2),
            "errors_sample": sorted(set(errors))[:5],
        }
        pub = await connect_client(
            Publisher,
            self.server,
            {"op": "join", "room": self.room, "token": host_token},
            self.pub_stats,
            a.handshake_timeout,
        )
        assert isinstance(pub, Publisher)
        self.publisher = pub

    async def publish(self) -> None:
        a = self.args
        loop = asyncio.get_running_loop()
        assert self.publisher is not None
        pub = self.publisher
        interval = 1.0 / a.rate
        t_start = loop.time()
        t_end = t_start + a.warmup + a.duration
        seq = 0
        while not pub.closed:
            target = t_start + seq * interval
            if target >= t_end:
                break
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # send every danmaku that is due (a late wake-up catches up at once)
            now = loop.time()
            while seq * interval + t_start <= now and t_start + seq * interval < t_end:
                pub.send(danmaku_frame(seq))
                seq += 1
            self.published = seq

    async def snapshot(self) -> dict[str, Any]:
        t, t_ns = time.monotonic(), time.time_ns()
        cpu = self.server_cpu()
        cores = procstat.core_times()
        gen = self.gen_cpu()
        c = await self.counts()
        return {"t": t, "t_ns": t_ns, "cpu": cpu, "cores": cores, "gen": gen, **c}

    async def run(self) -> dict[str, Any]:
        a, res, server = self.args, self.res, self.server
        loop = asyncio.get_running_loop()
        res["room"] = self.room
        rss_base, _ = procstat.memory_kb(server.pids())
        host_token = await asyncio.to_thread(prepare_room, server, self.room)
        progress = loop.create_task(self.progress())
        from loadtest.scenarios import DegradePoller  # it imports this module

        poller = DegradePoller(server, self.t0)
        polling = loop.create_task(poller.run())
        sampler: asyncio.Task[None] | None = None
        window_start: float | None = None
        try:
            self.phase = "connect"
            await self.connect_viewers(host_token)
            connected = res["connect"]["connected"]
            if not connected:
                res["fatal"] = "no viewer connected"
                return res
            self.phase = "settle"
            await asyncio.sleep(a.settle)
            rss_idle, _ = procstat.memory_kb(server.pids())
            self.rss_peak = rss_idle
            sampler = loop.create_task(self.rss_sampler())
            disc_before = (await self.counts())["disconnects"]

            self.phase = "warmup"
            pub_task = loop.create_task(self.publish())
            await asyncio.sleep(a.warmup)
            m0 = await asyncio.to_thread(scrape_metrics, server.base) if a.metrics else {}
            w0 = await self.snapshot()
            window_start = w0["t"] - self.t0
            self.phase = "measure"
            await asyncio.sleep(max(0.0, w0["t"] + a.duration - time.monotonic()))
            w1 = await self.snapshot()
            m1 = await asyncio.to_thread(scrape_metrics, server.base) if a.metrics else {}
            self.phase = "cooldown"
            await pub_task
            published = self.published
            expected_total = published * connected
            t_cd = time.monotonic()
            last, last_change = -1, t_cd
            while time.monotonic() - t_cd < a.cooldown:
                v = (await self.counts())["messages"]
                if v >= expected_total:
                    break
                if v != last:
                    last, last_change = v, time.monotonic()
                elif time.monotonic() - last_change > a.stall:
                    break
                await asyncio.sleep(0.1)
            end = await self.counts()
            _, hwm = procstat.memory_kb(server.pids())
        finally:
            progress.cancel()
            polling.cancel()
            if sampler is not None:
                sampler.cancel()
            await asyncio.gather(
                progress, polling, *([sampler] if sampler else []), return_exceptions=True
            )
            res["degrade"] = poller.summary()
            if window_start is not None:
                res["degrade_window"] = poller.summary(window_start)
            res["degrade_samples"] = poller.samples

        dur = w1["t"] - w0["t"]
        frames = w1["frames"] - w0["frames"]
        messages = w1["messages"] - w0["messages"]
        user = w1["cpu"][0] - w0["cpu"][0]
        system = w1["cpu"][1] - w0["cpu"][1]
        cpu_s = user + system
        lats: list[float] = []
        for p in self.probes:
            for sent, got in zip(p.sent_ns, p.recv_ns, strict=True):
                if w0["t_ns"] <= sent < w1["t_ns"]:
                    lats.append((got - sent) / 1e6)
        lats.sort()
        expected_probe = round((w1["t_ns"] - w0["t_ns"]) / 1e9 * a.rate) * len(self.probes)
        pub = self.publisher
        assert pub is not None
        res.update(
            {
                "window_s": round(dur, 3),
                "published_total": published,
                "publish_errors": pub.errors,
                "publisher_disconnected": pub.closed and not self.pub_stats.closing,
                "frames_window": frames,
                "messages_window": messages,
                "frames_per_s": round(frames / dur),
                "messages_per_s": round(messages / dur),
                "expected_messages_per_s": round(connected * a.rate),
                "messages_per_frame": rnd(messages / frames if frames else None),
                "server_cpu_s": round(cpu_s, 3),
                "server_cpu_pct": round(100 * cpu_s / dur, 1),
                "server_user_pct": round(100 * user / dur, 1),
                "server_sys_pct": round(100 * system / dur, 1),
                "server_us_per_frame": rnd(1e6 * cpu_s / frames if frames else None, 3),
                "server_us_per_message": rnd(1e6 * cpu_s / messages if messages else None, 4),
                "latency_ms": {
                    "p50": rnd(pct(lats, 0.5)),
                    "p90": rnd(pct(lats, 0.9)),
                    "p99": rnd(pct(lats, 0.99)),
                    "max": rnd(lats[-1] if lats else None),
                    "samples": len(lats),
                },
                "probe_received_pct": rnd(
                    100 * len(lats) / expected_probe if expected_probe else None
                ),
                "server_rss_kb": {
                    "base": rss_base,
                    "idle": rss_idle,
                    "peak": self.rss_peak,
                    "hwm": hwm,
                },
                "idle_kb_per_conn": round((rss_idle - rss_base) / connected, 2),
                "delivered_total": end["messages"],
                "expected_total": expected_total,
                "undelivered_pct": rnd(
                    100 * (1 - end["messages"] / expected_total) if expected_total else None, 3
                ),
                "cooldown_s": round(time.monotonic() - t_cd, 2),
                "connect_failed": res["connect"]["failed"],
                "disconnects": end["disconnects"],
                "disconnects_before_publish": disc_before,
                "disconnect_codes": self.close_codes(),
                "gen_cpu_pct": round(100 * (sum(w1["gen"]) - sum(w0["gen"])) / dur, 1),
                "gen_main_cpu_pct": round(100 * (w1["gen"][0] - w0["gen"][0]) / dur, 1),
                "gen_workers_cpu_pct": round(100 * (w1["gen"][1] - w0["gen"][1]) / dur, 1),
                "cores": procstat.core_busy(w0["cores"], w1["cores"]),
                "server_metrics_window": metrics_delta(m0, m1) if a.metrics else None,
            }
        )
        return res

    def close_codes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for codes in [w.last.get("close_codes", {}) for w in self.workers] + [
            self.probe_stats.close_codes
        ]:
            for code, n in codes.items():
                name = f"{code} {CLOSE_NAMES[code]}" if code in CLOSE_NAMES else code
                out[name] = out.get(name, 0) + n
        return out

    async def close(self) -> None:
        self.probe_stats.closing = self.pub_stats.closing = True
        for p in self.probes:
            if p.transport is not None:
                p.transport.abort()
        if self.publisher is not None and self.publisher.transport is not None:
            self.publisher.transport.abort()
        await asyncio.gather(*(w.close() for w in self.workers), return_exceptions=True)


# --- report -------------------------------------------------------------------------------


def check_slos(args: argparse.Namespace, res: dict[str, Any]) -> dict[str, Any]:
    lat = res.get("latency_ms", {})
    checks = [
        ("p50_ms", args.slo_p50_ms, lat.get("p50"), "max"),
        ("p99_ms", args.slo_p99_ms, lat.get("p99"), "max"),
        ("cpu_pct", args.slo_cpu_pct, res.get("server_cpu_pct"), "max"),
        ("us_per_message", args.slo_us_per_message, res.get("server_us_per_message"), "max"),
        ("us_per_frame", args.slo_us_per_frame, res.get("server_us_per_frame"), "max"),
        ("undelivered_pct", args.slo_undelivered_pct, res.get("undelivered_pct"), "max"),
        ("disconnects", args.slo_disconnects, res.get("disconnects"), "max"),
        ("connect_failed", args.slo_connect_failed, res.get("connect_failed"), "max"),
    ]
    out = {}
    for name, limit, value, _kind in checks:
        if limit is None:
            continue
        out[name] = {"limit": limit, "value": value, "ok": value is not None and value <= limit}
    return out


def summary(res: dict[str, Any], path: Path) -> str:
    """The human table printed at the end of a run."""
    if "fatal" in res:
        return f"FATAL: {res['fatal']}\n  result: {path}"
    lat, rss, con, cfg = res["latency_ms"], res["server_rss_kb"], res["connect"], res["config"]
    mib = {k: f"{v / 1024:.1f}" for k, v in rss.items()}
    cores = ", ".join(
        f"{k} {v['busy_pct']}% ({v['softirq_pct']}% softirq)" for k, v in res["cores"].items()
    )
    rows = [
        (
            "viewers",
            f"{con['connected']} connected ({con['probes']} probes), "
            f"{con['failed']} failed, in {con['time_s']} s",
        ),
        (
            "publish",
            f"{cfg['rate']:g} danmaku/s for {cfg['warmup']:g}+{cfg['duration']:g} s: "
            f"{res['published_total']} sent, errors {res['publish_errors'] or 'none'}",
        ),
        ("window", f"{res['window_s']} s"),
        (
            "delivered",
            f"{res['frames_per_s']:,} frames/s, {res['messages_per_s']:,} msg/s "
            f"of {res['expected_messages_per_s']:,} offered "
            f"({res['messages_per_frame']} msg/frame)",
        ),
        (
            "server CPU",
            f"{res['server_cpu_pct']}% "
            f"(user {res['server_user_pct']}%, sys {res['server_sys_pct']}%)",
        ),
        (
            "server cost",
            f"{res['server_us_per_frame']} µs/frame, {res['server_us_per_message']} µs/message",
        ),
        (
            "latency ms",
            f"p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}  "
            f"({lat['samples']} samples, {res['probe_received_pct']}% of expected)",
        ),
        (
            "server RSS",
            f"base {mib['base']} MiB, idle {mib['idle']} MiB, peak {mib['peak']} MiB, "
            f"{res['idle_kb_per_conn']} KB per idle connection",
        ),
        ("undelivered", f"{res['undelivered_pct']}% after {res['cooldown_s']} s cooldown"),
        ("disconnects", f"{res['disconnects']} {res['disconnect_codes'] or ''}".strip()),
        (
            "generator",
            f"{res['gen_cpu_pct']}% CPU (main {res['gen_main_cpu_pct']}%, "
            f"drain workers {res['gen_workers_cpu_pct']}%)",
        ),
        ("cores", cores),
        (
            "degrade levels",
            " → ".join(str(x) for x in res.get("degrade", {}).get("path", []))
            + " (window: "
            + " → ".join(str(x) for x in (res.get("degrade_window") or {}).get("path", []))
            + ")",
        ),
    ]
    if res.get("server_log_problems"):
        rows.append(("server log", f"{res['server_log_problems']} warning/error lines"))
    for name, s in res.get("slo", {}).items():
        rows.append(
            (f"SLO {name}", f"{'ok' if s['ok'] else 'MISSED'}: {s['value']} (limit {s['limit']})")
        )
    rows.append(("result", str(path)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


# --- entry point --------------------------------------------------------------------------


def add_arguments(ap: argparse.ArgumentParser) -> None:
    tgt = ap.add_argument_group("server under test")
    tgt.add_argument(
        "--url", help="base URL of a running node (loopback), e.g. http://127.0.0.1:8000"
    )
    tgt.add_argument(
        "--server-pid", type=int, help="its PID, for CPU and memory (children included)"
    )
    tgt.add_argument("--admin-token", help="its admin token (default: env HUDONG_ADMIN_TOKEN)")
    tgt.add_argument("--spawn", action="store_true", help="start `hudong serve` on a free port")
    tgt.add_argument("--server-cpu", type=int, help="--spawn: pin the server to this CPU (taskset)")
    tgt.add_argument("--port", type=int, help="--spawn: port (default: a free one)")
    tgt.add_argument(
        "--server-src",
        metavar="DIR",
        help="--spawn: run the server from this source tree (e.g. a `git archive` snapshot) "
        "instead of this checkout",
    )
    tgt.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--spawn: extra environment, e.g. HUDONG_HUB_TICK_MS=50 (repeatable)",
    )
    tgt.add_argument("--start-timeout", type=float, default=20)
    load = ap.add_argument_group("load")
    load.add_argument(
        "--viewers", type=int, default=2000, help="viewer connections, probes included"
    )
    load.add_argument("--probes", type=int, default=50, help="latency probes among the viewers")
    load.add_argument("--workers", type=int, default=2, help="drain worker processes")
    load.add_argument("--rate", type=float, default=200, help="danmaku per second")
    load.add_argument("--duration", type=float, default=15, help="measured window, seconds")
    load.add_argument("--warmup", type=float, default=3, help="publishing before the window")
    load.add_argument(
        "--settle", type=float, default=2, help="idle wait after connecting (idle RSS)"
    )
    load.add_argument("--cooldown", type=float, default=5, help="longest wait for stragglers")
    load.add_argument(
        "--stall", type=float, default=1.5, help="end cooldown after no progress this long"
    )
    load.add_argument("--room", help="room id (default: loadtest-<random>)")
    load.add_argument("--gen-cpu", type=int, help="pin the generator (and its workers) to this CPU")
    load.add_argument("--drain-interval-ms", type=float, default=100)
    load.add_argument("--connect-concurrency", type=int, default=100, help="per worker")
    load.add_argument("--connect-timeout", type=float, default=60, help="deadline for all connects")
    load.add_argument("--handshake-timeout", type=float, default=10)
    load.add_argument("--deadline", type=float, help="hard limit for the whole run, seconds")
    load.add_argument(
        "--no-metrics",
        dest="metrics",
        action="store_false",
        help="do not scrape /metrics at the window's ends",
    )
    out = ap.add_argument_group("output and SLOs (exit 1 when one is missed)")
    out.add_argument("--json-out", help="default: loadtest/results/fanout-<timestamp>.json")
    out.add_argument("--slo-p50-ms", type=float)
    out.add_argument("--slo-p99-ms", type=float)
    out.add_argument("--slo-cpu-pct", type=float)
    out.add_argument("--slo-us-per-message", type=float)
    out.add_argument("--slo-us-per-frame", type=float)
    out.add_argument("--slo-undelivered-pct", type=float)
    out.add_argument("--slo-disconnects", type=int)
    out.add_argument("--slo-connect-failed", type=int)


def run_fanout(args: argparse.Namespace) -> int:
    if args.spawn == bool(args.url):
        raise SystemExit("give either --spawn or --url (with --server-pid to measure CPU)")
    if args.rate <= 0 or args.duration <= 0 or args.viewers <= 0:
        raise SystemExit("--rate, --duration and --viewers must be positive")
    if args.deadline is None:
        args.deadline = (
            args.connect_timeout + args.settle + args.warmup + args.duration + args.cooldown + 60
        )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.viewers + 1024  # spawned server and workers inherit it
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            print(f"warning: open files limited to {new}", file=sys.stderr)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    json_out = Path(args.json_out) if args.json_out else RESULTS_DIR / f"fanout-{stamp}.json"
    server = spawn_server(args) if args.spawn else attach_server(args)
    if args.gen_cpu is not None:  # after spawning: the server must not inherit it
        os.sched_setaffinity(0, {args.gen_cpu})
    if not server.pid:
        print("warning: no --server-pid: server CPU and memory are not measured", file=sys.stderr)
    res: dict[str, Any] = {
        "scenario": "fanout",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "machine": procstat.machine(),
        "config": {
            k: getattr(args, k)
            for k in (
                "viewers",
                "probes",
                "workers",
                "rate",
                "duration",
                "warmup",
                "settle",
                "cooldown",
                "server_cpu",
                "gen_cpu",
                "drain_interval_ms",
                "server_env",
            )
        },
        "server": {"url": server.base, "pid": server.pid, "spawned": bool(args.spawn)},
    }
    if args.spawn:
        res["server"]["source"] = server_source(args)

    async def main() -> None:
        run = Run(args, server)
        try:
            res.update(await asyncio.wait_for(run.run(), args.deadline))
        except TimeoutError:
            res["fatal"] = f"deadline of {args.deadline:g} s reached"
        except Exception as exc:  # reported in the result; the server is still stopped
            traceback.print_exc()
            res["fatal"] = f"{type(exc).__name__}: {exc}"
        finally:
            await run.close()

    try:
        try:
            import uvloop

            uvloop.run(main())
        except ImportError:
            asyncio.run(main())
    finally:
        if args.spawn:
            rc = stop_server(server)
            res["server"]["exit_code"] = rc
            res["server"]["log"] = server.log_path
            n, lines = server_log_problems(server.log_path)
            res["server_log_problems"] = n
            res["server_log_sample"] = lines
    alive = server.proc is None or res["server"].get("exit_code") in (0, None)
    res["server"]["clean_exit"] = alive
    if "fatal" not in res:
        res["slo"] = check_slos(args, res)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(res, indent=1) + "\n")
    print(summary(res, json_out))
    if "fatal" in res:
        return 2
    return 0 if all(s["ok"] for s in res["slo"].values()) else 1
