"""Wire bytes and server CPU per delivered danmaku, with and without permessage-deflate,
in one run: ``python -m loadtest.wirebytes`` (issue 14, target 3; BENCHMARKS.md,
"Wire bytes").

One node (spawned from this checkout, or ``--server-src``), one room, a storm of
realistic Chinese danmaku (:mod:`loadtest.chinese`) from 50 anonymous senders with
Chinese names at ``--rate`` a second for the whole run. Meanwhile ``--viewers``
viewers join and leave in phases that alternate: viewers that do not offer
permessage-deflate ("plain") and viewers that offer it as Chromium does ("deflate"),
``--rounds`` of each, in the order plain/deflate, deflate/plain, ... so that drift
falls on both. Each phase measures for ``--window`` seconds, after the viewers joined
and ``--settle`` seconds passed:

- wire bytes per delivered danmaku: every byte the phase's viewers read from their
  sockets (WebSocket frame headers and payloads, pings included; not TCP/IP headers)
  over the danmaku they found in the batches (inflated where compressed);
- server CPU per delivered danmaku: utime+stime of the node over the danmaku
  delivered to the phase's viewers (the senders read plain in every phase, so their
  share is the same on both sides).

The viewers are asyncio protocols in this process (uvloop when installed), pinned
with ``--gen-cpu``; the node is pinned with ``--server-cpu``. Degrade levels are
switched off on the node (``HUDONG_HUB_DEGRADE_AUTO=false``): merged or dropped
danmaku would change what is counted. Viewers may send 50 commands/s here (the
senders send ``rate / 50`` each). Prints one line per phase and a summary, writes
the JSON result to ``--json-out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loadtest import procstat
from loadtest.chinese import SENDERS, nicknames, storm
from loadtest.rest import AdminApi
from loadtest.servers import free_port
from loadtest.wire import (
    DEFLATE_OFFER,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    check_upgrade,
    client_frame,
    inflate,
    new_key,
    response_headers,
    upgrade_request,
)
from protocol.codec import JSON, MSGPACK, Codec

ROOT = Path(__file__).resolve().parent.parent
ROOM = "wirebytes"
ADMIN = "wirebytes-admin-token-0123456789"
SECRET = "wirebytes-secret-0123456789abcdefghijklmnop"


class Viewer(asyncio.Protocol):
    """One WebSocket client: upgrades (offering permessage-deflate or not), joins, then
    counts the bytes it reads and the danmaku in what it reads."""

    def __init__(
        self, codec: Codec, deflate: bool, join: dict[str, Any], ready: asyncio.Future[None]
    ) -> None:
        self.codec = codec
        self.offer = deflate
        self.deflated = False  # the server accepted the offer
        self.join = client_frame(
            OP_BINARY if codec.binary else OP_TEXT, codec.encode({"op": "join", **join})
        )
        self.ready = ready
        self.mark = codec.encode({"type": "danmaku"})[1:]  # the pair, in either codec
        if not codec.binary:
            self.mark = self.mark[:-1]
        self.key = new_key()
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.buf = b""
        self.upgraded = False
        self.joined = False
        self.bytes = 0
        self.danmaku = 0
        self.compressed = 0  # data frames that came with RSV1
        self.frames = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(  # type: ignore[union-attr]
            upgrade_request(
                "127.0.0.1",
                0,
                "/ws",
                self.key,
                subprotocol=self.codec.subprotocol,
                extensions=DEFLATE_OFFER if self.offer else None,
            )
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before joining: {exc}"))

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end], self.head[end + 4 :]
            problem = check_upgrade(head, self.key, self.codec.subprotocol)
            answer = response_headers(head).get(b"sec-websocket-extensions", b"")
            self.deflated = b"permessage-deflate" in answer
            if self.offer and b"server_no_context_takeover" not in answer:
                problem = problem or f"deflate offered, answered {answer!r}"
            if problem:
                self.ready.set_exception(ConnectionError(problem))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded = True
        self.bytes += len(data)
        buf = self.buf + data if self.buf else data
        pos, n = 0, len(buf)
        while pos + 2 <= n:
            b0, b1 = buf[pos], buf[pos + 1] & 0x7F
            if b1 < 126:
                h, ln = 2, b1
            elif b1 == 126:
                if pos + 4 > n:
                    break
                h, ln = 4, int.from_bytes(buf[pos + 2 : pos + 4], "big")
            else:
                if pos + 10 > n:
                    break
                h, ln = 10, int.from_bytes(buf[pos + 2 : pos + 10], "big")
            end = pos + h + ln
            if end > n:
                break
            self.frame(b0, buf[pos + h : end])
            pos = end
        self.buf = buf[pos:]

    def frame(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        if opcode == OP_PING:
            self.transport.write(client_frame(OP_PONG, payload))  # type: ignore[union-attr]
            return
        if opcode == OP_CLOSE:
            self.transport.close()  # type: ignore[union-attr]
            return
        if opcode not in (OP_TEXT, OP_BINARY):
            return
        self.frames += 1
        if b0 & 0x40:
            self.compressed += 1
            payload = inflate(payload)
        if self.joined:
            self.danmaku += payload.count(self.mark)
            return
        message = self.codec.decode(payload)
        if message.get("type") == "hello":
            self.transport.write(self.join)  # type: ignore[union-attr]
        elif message.get("type") == "joined":
            self.joined = True
            self.ready.set_result(None)
        elif message.get("type") == "error":
            self.ready.set_exception(ConnectionError(f"join refused: {message}"))


async def connect(
    port: int, count: int, codec: Codec, deflate: bool, joins: list[dict[str, Any]]
) -> list[Viewer]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(100)

    async def one(i: int) -> Viewer:
        async with gate:
            ready = loop.create_future()
            join = joins[i % len(joins)]
            _, viewer = await loop.create_connection(
                lambda: Viewer(codec, deflate, join, ready), "127.0.0.1", port
            )
            await asyncio.wait_for(ready, 30)
            return viewer

    return await asyncio.gather(*(one(i) for i in range(count)))


async def publish(senders: list[Viewer], rate: float, stop: asyncio.Event, seed: int) -> int:
    """The storm, on an absolute schedule, until ``stop``; returns how many were sent."""
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), 0
    texts = storm(seed, len(senders))
    while not stop.is_set():
        due = start + sent / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
            continue
        index, text = next(texts)
        sender = senders[index]
        if sender.transport is not None and not sender.transport.is_closing():
            command = JSON.encode({"op": "danmaku", "text": text})
            sender.transport.write(client_frame(OP_TEXT, command))
        sent += 1
    return sent


def spawn(args: argparse.Namespace, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    src = Path(args.server_src).resolve() if args.server_src else ROOT
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "HUDONG_ADMIN_TOKEN": ADMIN,
        "HUDONG_SECRET": SECRET,
        "HUDONG_LOG_LEVEL": "warning",
        "HUDONG_HUB_DEGRADE_AUTO": "false",
        "HUDONG_LIMITS_VIEWER_COMMANDS_PER_S": "50",
        "HUDONG_LIMITS_VIEWER_COMMAND_BURST": "100",
        # Each sender connection plays many people of the storm, who say the same
        # things (666, 哈哈哈): not one viewer repeating itself, which the node refuses.
        "HUDONG_LIMITS_DUPLICATE_WINDOW_S": "0",
    }
    for item in args.server_env:
        key, _, value = item.partition("=")
        env[key] = value
    cmd = [sys.executable, "-m", "server", "serve", "--port", str(port), "--data-dir", data_dir]
    if args.server_cpu is not None:
        cmd = ["taskset", "-c", args.server_cpu, *cmd]
    log = open(Path(data_dir) / "node.log", "wb")  # closed with the process
    return subprocess.Popen(cmd, cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    codec = MSGPACK if args.codec == "msgpack" else JSON
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="hudong-wirebytes-")
    proc = spawn(args, port, data_dir)
    api = AdminApi(f"http://127.0.0.1:{port}", ADMIN)
    phases: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(api.ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (Path(data_dir) / "node.log").read_text()
                raise RuntimeError("the node did not start: " + log)
            await asyncio.sleep(0.2)
        await asyncio.to_thread(api.prepare_room, ROOM)
        names = nicknames(args.seed, SENDERS)
        senders = await connect(
            port, SENDERS, JSON, False, [{"room": ROOM, "name": n, "lang": "zh-CN"} for n in names]
        )
        stop = asyncio.Event()
        publisher = asyncio.get_running_loop().create_task(
            publish(senders, args.rate, stop, args.seed)
        )
        pids = procstat.process_tree(proc.pid)
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            for deflate in order:
                viewers = await connect(port, args.viewers, codec, deflate, [{"room": ROOM}])
                await asyncio.sleep(args.settle)
                b0 = sum(v.bytes for v in viewers)
                d0 = sum(v.danmaku for v in viewers)
                z0 = sum(v.compressed for v in viewers)
                f0 = sum(v.frames for v in viewers)
                c0, t0 = sum(procstat.cpu_user_sys(pids)), time.monotonic()
                await asyncio.sleep(args.window)
                c1, t1 = sum(procstat.cpu_user_sys(pids)), time.monotonic()
                b1 = sum(v.bytes for v in viewers)
                d1 = sum(v.danmaku for v in viewers)
                z1 = sum(v.compressed for v in viewers)
                f1 = sum(v.frames for v in viewers)
                for v in viewers:
                    v.transport.abort()  # type: ignore[union-attr]
                dur, danmaku = t1 - t0, d1 - d0
                phase = {
                    "round": r,
                    "mode": "deflate" if deflate else "plain",
                    "negotiated": sum(v.deflated for v in viewers),
                    "viewers": len(viewers),
                    "window_s": round(dur, 3),
                    "danmaku_delivered": danmaku,
                    "delivered_pct": round(100 * danmaku / (args.rate * dur * len(viewers)), 2),
                    "frames": f1 - f0,
                    "compressed_frames": z1 - z0,
                    "bytes": b1 - b0,
                    "bytes_per_danmaku": round((b1 - b0) / danmaku, 2) if danmaku else None,
                    "server_cpu_pct": round(100 * (c1 - c0) / dur, 1),
                    "server_us_per_danmaku": round(1e6 * (c1 - c0) / danmaku, 4)
                    if danmaku
                    else None,
                }
                phases.append(phase)
                print(json.dumps(phase), file=sys.stderr, flush=True)
                await asyncio.sleep(1.0)  # the closes settle outside the next window
        stop.set()
        published = await publisher
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"published": published, "phases": phases, "summary": summarize(phases)}


def summarize(phases: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("plain", "deflate"):
        rows = [p for p in phases if p["mode"] == mode]
        out[mode] = {
            key: {
                "median": statistics.median(p[key] for p in rows),
                "min": min(p[key] for p in rows),
                "max": max(p[key] for p in rows),
            }
            for key in ("bytes_per_danmaku", "server_us_per_danmaku", "server_cpu_pct")
        }
    # CPU of each deflate phase against the plain phase of the same round.
    ratios = []
    for r in sorted({p["round"] for p in phases}):
        by = {p["mode"]: p for p in phases if p["round"] == r}
        ratios.append(
            round(by["deflate"]["server_us_per_danmaku"] / by["plain"]["server_us_per_danmaku"], 3)
        )
    out["cpu_ratio_deflate_to_plain_per_round"] = ratios
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m loadtest.wirebytes", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--viewers", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=500, help="danmaku per second, all senders")
    ap.add_argument("--codec", choices=("json", "msgpack"), default="json")
    ap.add_argument("--rounds", type=int, default=3, help="plain and deflate phases each")
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--server-cpu", default="0", help="taskset CPU list for the node ('' none)")
    ap.add_argument("--gen-cpu", default="1", help="CPU list for this process ('' none)")
    ap.add_argument("--server-src", help="run the node from this source tree")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    if args.server_cpu == "":
        args.server_cpu = None
    if args.gen_cpu:
        os.sched_setaffinity(0, {int(c) for c in args.gen_cpu.split(",")})
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = asyncio.run(run(args))
    result = {
        "tool": "wirebytes",
        "started_at": started,
        "argv": sys.argv,
        "config": {k: v for k, v in vars(args).items() if k != "json_out"},
        "machine": procstat.machine(),
        **result,
    }
    s = result["summary"]
    for mode in ("plain", "deflate"):
        m = s[mode]
        print(
            f"{mode:8} B/danmaku {m['bytes_per_danmaku']['median']:7.2f} "
            f"({m['bytes_per_danmaku']['min']}-{m['bytes_per_danmaku']['max']})  "
            f"server µs/danmaku {m['server_us_per_danmaku']['median']:.4f} "
            f"({m['server_us_per_danmaku']['min']}-{m['server_us_per_danmaku']['max']})  "
            f"CPU {m['server_cpu_pct']['median']}%"
        )
    print("CPU deflate/plain per round:", s["cpu_ratio_deflate_to_plain_per_round"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
