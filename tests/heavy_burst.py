"""100 concurrent QR-code or report requests while viewers are served (issue 14, target
5, second half): do they move the node off level 0, stall its loop, or cost the viewers
a danmaku? Spawns ``hudong serve`` on the embedded default, joins ``--viewers`` viewers
to a room with ``--interactions`` polls, has the host send ``--rate`` danmaku/s
throughout, and fires each burst from 100 different loopback addresses (127.0.0.2 ...),
so that the per-client limit of heavy requests (server/api/limits.py) does not answer
them with 429: every request is real work (each QR code for a room of its own, so none
comes from the cache).

    python -m tests.heavy_burst --viewers 300 --rate 40

It runs the server's pages and client code from this checkout, so it lives beside the
tests (loadtest/ never imports the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.conftest import free_port

ADMIN = "heavy-burst-admin-token-0123456789"
BURST = 100


async def viewer(ws_url: str, room: str, token: str | None, got: list[int]) -> Any:
    ws = await connect(ws_url, subprotocols=[Subprotocol("hudong.v1.json")], ping_interval=None)
    await ws.recv()  # hello
    join = {"op": "join", "id": 1, "room": room, **({"token": token} if token else {})}
    await ws.send(orjson.dumps(join).decode())

    async def read() -> None:
        async for raw in ws:
            message = orjson.loads(raw)
            if message.get("type") == "batch":
                got[0] += sum(1 for e in message["events"] if e.get("type") == "danmaku")

    asyncio.get_running_loop().create_task(read())
    return ws


async def main(args: argparse.Namespace) -> int:
    port = free_port()
    env = {
        **os.environ,
        "HUDONG_ADMIN_TOKEN": ADMIN,
        "HUDONG_DATA_DIR": tempfile.mkdtemp(prefix="hudong-heavy-burst-"),
        "HUDONG_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", str(port)], env=env)
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    auth = {"Authorization": f"Bearer {ADMIN}"}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(200):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            await http.post("/api/v1/rooms", json={"id": "r"}, headers=auth)
            for i in range(BURST):  # a QR code is made only for a room that exists
                await http.post("/api/v1/rooms", json={"id": f"room-{i}"}, headers=auth)
            options = [{"id": o, "label": o} for o in "abc"]
            for i in range(args.interactions):
                spec = {"id": f"p{i}", "question": f"q{i}?", "kind": "single", "options": options}
                await http.post(
                    "/api/v1/rooms/r/interactions",
                    headers=auth,
                    json={"kind": "poll", "spec": spec},
                )
            minted = await http.post("/api/v1/rooms/r/tokens", headers=auth, json={"role": "host"})
            host_token = minted.json()["token"]
            counts = [[0] for _ in range(args.viewers)]
            sockets = [await viewer(ws_url, "r", None, c) for c in counts]
            host = await viewer(ws_url, "r", host_token, [0])
            sent = [0]

            async def publish(until: float) -> None:
                while time.monotonic() < until:
                    sent[0] += 1
                    await host.send(
                        orjson.dumps({"op": "danmaku", "text": f"弹幕 {sent[0]}"}).decode()
                    )
                    await asyncio.sleep(1 / args.rate)

            async def one(i: int, path: str, headers: dict[str, str] | None) -> int:
                transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{i + 2}")
                async with httpx.AsyncClient(base_url=base, transport=transport, timeout=60) as c:
                    return (await c.get(path, headers=headers)).status_code

            async def levels(until: float, seen: set[int]) -> None:
                while time.monotonic() < until:
                    seen.add((await http.get("/api/v1/degrade", headers=auth)).json()["level"])
                    await asyncio.sleep(0.1)

            bursts = {
                "qr": (lambda i: f"/qr/room-{i}.svg", None),
                "report": (lambda i: "/api/v1/rooms/r/report", auth),
            }
            failed = False
            for name, (path, headers) in bursts.items():
                await asyncio.sleep(3)
                before = sent[0]
                base_counts = [c[0] for c in counts]
                end = time.monotonic() + 8
                seen: set[int] = set()
                publisher = asyncio.create_task(publish(end))
                watcher = asyncio.create_task(levels(end + 1, seen))
                await asyncio.sleep(2)
                started = time.perf_counter()
                codes = await asyncio.gather(*(one(i, path(i), headers) for i in range(BURST)))
                took = time.perf_counter() - started
                await publisher
                await watcher
                await asyncio.sleep(1.5)  # the last ticks reach everyone
                delivered = [c[0] - b for c, b in zip(counts, base_counts, strict=True)]
                sent_now = sent[0] - before
                short = sum(1 for d in delivered if d < sent_now)
                metrics = (await http.get("/metrics")).text
                stall = next(
                    float(line.split()[-1])
                    for line in metrics.splitlines()
                    if line.startswith("hudong_event_loop_stall_max_seconds")
                )
                statuses = {c: codes.count(c) for c in sorted(set(codes))}
                print(
                    f"{name}: {BURST} at once from {BURST} addresses: {statuses} in {took:.2f} s; "
                    f"levels seen {sorted(seen)}; loop stall max {stall * 1000:.0f} ms; "
                    f"{sent_now} danmaku sent meanwhile, {args.viewers - short}/{args.viewers} "
                    f"viewers got all of them (min {min(delivered)})",
                    flush=True,
                )
                failed |= seen != {0} or short > 0 or statuses != {200: BURST}
            for ws in [*sockets, host]:
                await ws.close()
            return 1 if failed else 0
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m tests.heavy_burst", description=__doc__)
    ap.add_argument("--viewers", type=int, default=300)
    ap.add_argument("--rate", type=float, default=40, help="danmaku/s from the host")
    ap.add_argument("--interactions", type=int, default=10, help="polls in the room")
    sys.exit(asyncio.run(main(ap.parse_args())))
