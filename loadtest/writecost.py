"""The floor of fan-out by frame size: what one write of the same bytes to every viewer
costs the kernel and uvloop, with nothing of hudong (or of websockets) around it.

    python -m loadtest.writecost --viewers 5000 --sizes 4250,12700 --rounds 3

One process (pinned to ``--server-cpu``) accepts ``--viewers`` loopback connections from
a reader process (pinned to ``--reader-cpu``) that drains them, then writes one frame of
each size to every connection every ``--tick-ms``, the sizes taking turns for
``--seconds`` each, ``--rounds`` times. It prints the writer's CPU (user and system) and
the microseconds per write for each turn, then the median and spread per size. The
reader counts what arrived, so a size that was not delivered in full is reported, not
averaged in.

Why: the peer harness's bare fan-out (system f) writes the harness's 84-byte messages,
about 4.2 KB a frame at 5,000 x 500/s; hudong writes each danmaku as an event with its
sender, id, colour, mode and time, about three times the bytes. On loopback the sender's
core does the receiver's TCP work too, so bytes cost CPU: this measures how much, on the
machine at hand (BENCHMARKS.md, "What a frame's bytes cost").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import selectors
import socket
import statistics
import sys
import time
from typing import Any

HOST = "127.0.0.1"  # loopback only


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted), hard))


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _reader(port: int, viewers: int, cpu: int | None, report: int) -> None:
    """The child: connect every viewer, drain until the writer closes them, then write
    the byte count to the ``report`` pipe."""
    _pin(cpu)
    sel = selectors.DefaultSelector()
    for _ in range(viewers):
        s = socket.create_connection((HOST, port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    received = 0
    open_ = viewers
    while open_:
        for key, _ in sel.select(1.0):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if not data:
                sel.unregister(sock)
                sock.close()
                open_ -= 1
            received += len(data)
    os.write(report, f"{received}\n".encode())


async def _writer(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []

    class Viewer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)  # type: ignore[arg-type]

    server = await loop.create_server(Viewer, HOST, 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the reader
        os.close(report_r)
        try:
            _reader(port, args.viewers, args.reader_cpu, report_w)
        finally:
            os._exit(0)
    os.close(report_w)
    deadline = time.monotonic() + 60
    while len(transports) < args.viewers:
        if time.monotonic() > deadline:
            raise SystemExit(f"writecost: only {len(transports)} of {args.viewers} connected")
        await asyncio.sleep(0.05)
    print(f"writecost: {args.viewers} viewers connected", flush=True)
    await asyncio.sleep(1.0)

    tick = args.tick_ms / 1000
    turns: list[dict[str, Any]] = []
    sent = 0
    for rnd in range(1, args.rounds + 1):
        for size in args.sizes:
            frame = b"\x81\x7e" + (size - 4).to_bytes(2, "big") + b"x" * (size - 4)
            before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            writes = 0
            at = loop.time()
            while time.perf_counter() - started < args.seconds:
                at += tick
                await asyncio.sleep(max(0.0, at - loop.time()))
                for transport in transports:
                    transport.write(frame)
                writes += len(transports)
            after = resource.getrusage(resource.RUSAGE_SELF)
            wall = time.perf_counter() - started
            sent += writes * size
            user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
            turn = {
                "round": rnd,
                "size": size,
                "writes": writes,
                "cpu_pct": round(100 * (user + system) / wall, 1),
                "user_pct": round(100 * user / wall, 1),
                "sys_pct": round(100 * system / wall, 1),
                "us_per_write": round(1e6 * (user + system) / writes, 2),
            }
            turns.append(turn)
            print(
                f"writecost: round {rnd}, {size:6d} B: CPU {turn['cpu_pct']:5.1f}% "
                f"(user {turn['user_pct']:.1f}%, sys {turn['sys_pct']:.1f}%), "
                f"{turn['us_per_write']:.2f} us/write",
                flush=True,
            )
            await asyncio.sleep(0.5)  # let the reader catch up between turns
    for transport in transports:
        transport.close()
    server.close()
    # (off the loop: the loop must run for the closes to reach the reader)
    received = int((await loop.run_in_executor(None, os.read, report_r, 64)).decode() or 0)
    await loop.run_in_executor(None, os.waitpid, pid, 0)
    return {"turns": turns, "bytes_sent": sent, "bytes_received": received}


def summarise(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per size: the median and the range of microseconds per write over the rounds."""
    out = []
    for size in dict.fromkeys(t["size"] for t in turns):
        us = [t["us_per_write"] for t in turns if t["size"] == size]
        out.append(
            {
                "size": size,
                "us_per_write_median": statistics.median(us),
                "us_min": min(us),
                "us_max": max(us),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m loadtest.writecost",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--viewers", type=int, default=5000, help="loopback connections")
    ap.add_argument(
        "--sizes", default="4250,12700", help="frame sizes in bytes, comma-separated (130-65539)"
    )
    ap.add_argument("--tick-ms", type=float, default=100.0, help="one frame to everyone this often")
    ap.add_argument("--seconds", type=float, default=6.0, help="each size's turn in a round")
    ap.add_argument("--rounds", type=int, default=3, help="the sizes take turns this many times")
    ap.add_argument("--server-cpu", type=int, default=None, help="pin the writer to this CPU")
    ap.add_argument("--reader-cpu", type=int, default=None, help="pin the reader to this CPU")
    ap.add_argument("--json-out", default=None, help="write the turns and the summary here")
    args = ap.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--sizes: whole numbers of bytes, comma-separated, not {args.sizes!r}")
    if not args.sizes or not all(130 <= s <= 65539 for s in args.sizes):
        ap.error("--sizes: each between 130 and 65539 bytes (a frame with a 16-bit length)")
    if args.viewers < 1 or args.rounds < 1 or args.seconds <= 0 or args.tick_ms <= 0:
        ap.error("--viewers, --rounds, --seconds and --tick-ms must be positive")
    _raise_open_files(args.viewers + 64)
    _pin(args.server_cpu)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency of the server
        print("writecost: uvloop is not installed (pip install -e .)", file=sys.stderr)
        return 2
    result = uvloop.run(_writer(args))
    summary = summarise(result["turns"])
    base = summary[0]["us_per_write_median"]
    for row in summary:
        print(
            f"writecost: {row['size']:6d} B: {row['us_per_write_median']:.2f} us/write "
            f"(median of {args.rounds}; {row['us_min']:.2f}-{row['us_max']:.2f}), "
            f"{row['us_per_write_median'] / base:.2f}x the first size",
            flush=True,
        )
    complete = result["bytes_received"] == result["bytes_sent"]
    print(
        f"writecost: reader got {result['bytes_received']:,} of {result['bytes_sent']:,} bytes"
        + ("" if complete else " (NOT all: these figures are not of a delivered fan-out)"),
        flush=True,
    )
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(
                {"argv": sys.argv, "args": vars(args), **result, "summary": summary}, f, indent=1
            )
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
