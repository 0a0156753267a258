"""The CPU of a danmaku's way in on a node: the host's frames, each as the network would
hand it over, through the WebSocket parser, the command's checks, the text filter and
the stream into the room's batch (one viewer gets the batches), 500 a second (50 a
tick), on the durable embedded store in a temporary folder. One process under uvloop,
no sockets for the two connections (their transports record what is written), no load
tool: what it measures is the node's own work a danmaku, less the node's idle cost over
the same time.

    python3 -m tests.intake_cost 5000            # N danmaku (the peer harness's text)
    python3 -m tests.intake_cost 5000 --ack      # each with an id: the node acks it
    python3 -m tests.intake_cost 3000 -p         # and the cProfile of the danmaku part

Prints µs of CPU a danmaku (process time), median of three rounds, and the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
from typing import Any

import orjson
import uvloop

from loadtest import wire
from server.hub.connection import Connection
from tests.conftest import ADMIN, running_server

ROOM = "intake"
PER_TICK = 50
TICK_S = 0.1
# the peer harness's message (shared/bench/peers/loadgen.py), as hudong's dialect sends it
HARNESS_TEXT = '{"user":"u00123","text":"dm000123 danmaku 233333 gogo","ts":1765000000000000000}'


class Transport:
    """What a Connection asks of its transport; keeps a count of what is written."""

    def __init__(self) -> None:
        self.bytes = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        return None

    def write(self, data: bytes) -> None:
        self.bytes += len(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


def connect(hub: Any, path: str = "/ws") -> tuple[Connection, Transport]:
    conn = Connection(hub=hub)
    transport = Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    key = wire.new_key()
    conn.data_received(wire.upgrade_request("127.0.0.1", 80, path, key))
    return conn, transport


def frame(command: dict[str, Any]) -> bytes:
    return wire.client_frame(wire.OP_TEXT, orjson.dumps(command))


async def rounds(n: int, ack: bool, spread: bool, profile: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as data_dir:
        # the two connections answer no ping: no heartbeat closes them meanwhile
        sections: dict[str, Any] = {
            "server": {"data_dir": data_dir},
            "hub": {"heartbeat_s": 3600.0, "heartbeat_timeout_s": 7200.0},
        }
        async with running_server(**sections) as live:
            await live.create_room(ROOM)
            async with live.http(ADMIN) as http:
                r = await http.post(f"/api/v1/rooms/{ROOM}/tokens", json={"role": "host"})
                token = r.json()["token"]
            hub = live.hub
            host, _ = connect(hub)
            viewer, seen = connect(hub)
            host.data_received(frame({"op": "join", "room": ROOM, "token": token}))
            viewer.data_received(frame({"op": "join", "room": ROOM}))
            await asyncio.sleep(0.5)
            results = []
            for r_ in range(3):
                frames = [
                    frame(
                        {"op": "danmaku", "text": HARNESS_TEXT}
                        | ({"id": r_ * 1_000_000 + k} if ack else {})
                    )
                    for k in range(n)
                ]

                def wake(k: int) -> None:  # the idle node, woken as often as the feed wakes it
                    if spread:
                        loop = asyncio.get_running_loop()
                        for j in range(PER_TICK):
                            loop.call_later(j * TICK_S / PER_TICK, _nothing)

                idle = await _cpu_over(n // PER_TICK, wake)
                before = seen.bytes
                profiler = cProfile.Profile() if profile and r_ == 0 else None
                if profiler is not None:
                    profiler.enable()

                def feed(k: int, frames: list[bytes] = frames) -> None:
                    batch = frames[k * PER_TICK : (k + 1) * PER_TICK]
                    if not spread:
                        for data in batch:
                            host.data_received(data)
                        return
                    loop = asyncio.get_running_loop()
                    for j, data in enumerate(batch):  # one at a time, as they would arrive
                        loop.call_later(j * TICK_S / PER_TICK, host.data_received, data)

                busy = await _cpu_over(n // PER_TICK, feed)
                await asyncio.sleep(3 * TICK_S)
                if profiler is not None:
                    profiler.disable()
                    stats = pstats.Stats(profiler).sort_stats("cumulative")
                    stats.print_stats(45)
                got = seen.bytes - before
                assert got > n * len(HARNESS_TEXT), f"the viewer got only {got} bytes"
                results.append((busy - idle) / n * 1e6)
            host.close("normal")
            viewer.close("normal")
            return results


def _nothing() -> None:
    return None


async def _cpu_over(ticks: int, each: Any) -> float:
    """Process CPU over ``ticks`` ticks of TICK_S, calling ``each(k)`` at the start of each."""
    start = time.process_time()
    due = time.monotonic()
    for k in range(ticks):
        each(k)
        due += TICK_S
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=5000, help="danmaku per round")
    parser.add_argument("--ack", action="store_true", help="each danmaku with an id (acked)")
    parser.add_argument(
        "--spread", action="store_true", help="each frame at its own moment, not 50 at once"
    )
    parser.add_argument("-p", "--profile", action="store_true", help="cProfile the first round")
    args = parser.parse_args()
    results = uvloop.run(rounds(args.n, args.ack, args.spread, args.profile))
    spread = ", ".join(f"{r:.1f}" for r in results)
    print(f"intake: {statistics.median(results):.1f} µs of CPU a danmaku (rounds: {spread})")


if __name__ == "__main__":
    main()
