"""A competing process: takes one CPU for ``--busy-ms`` every ``--every-s`` seconds, for
``--duration`` seconds at most, then exits (issue 14, target 8: "a competing process
that takes the server's core for 200 ms every 5 s").

    python -m loadtest.hog --cpu 0 --busy-ms 200 --every-s 5 --duration 600

It pins itself to ``--cpu`` and asks for the real-time FIFO class, which a normal
process cannot pre-empt: for ``--busy-ms`` the server on that CPU gets nothing, as
when a neighbour on the VM or a GC pause takes it. Without the privilege it falls back
to nice -20, then to a plain process (the kernel then shares the CPU, so the server
loses about half of the burst; ``--plain`` asks for that); the first line it prints
says which it got. Each burst
is printed with its measured length, so a run's log shows what the server went through.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _take_priority(plain: bool) -> str:
    if plain:
        return "a plain process, as asked (the server gets about half of the CPU during a burst)"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
        return "SCHED_FIFO (the server on that CPU gets nothing during a burst)"
    except (PermissionError, OSError):
        pass
    try:
        os.nice(-20)
        return "nice -20 (the server gets a small share during a burst)"
    except (PermissionError, OSError):
        return "a plain process (the server gets about half of the CPU during a burst)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m loadtest.hog", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--cpu", type=int, default=0, help="the CPU to take (default 0)")
    ap.add_argument("--busy-ms", type=float, default=200, help="length of each burst (ms)")
    ap.add_argument("--every-s", type=float, default=5, help="time from one burst to the next")
    ap.add_argument("--duration", type=float, default=600, help="stop after this many seconds")
    ap.add_argument(
        "--plain",
        action="store_true",
        help="do not ask for a higher priority: share the CPU with the server as a busy "
        "neighbour does, instead of taking it",
    )
    a = ap.parse_args(argv)
    if not 0 < a.busy_ms < a.every_s * 1000:
        ap.error("--busy-ms must be over 0 and under --every-s")
    if not 0 < a.duration <= 7200:
        ap.error("--duration must be over 0 and at most 7200 s")
    os.sched_setaffinity(0, {a.cpu})
    print(
        f"hog: CPU {a.cpu}, {a.busy_ms:g} ms every {a.every_s:g} s, as {_take_priority(a.plain)}",
        flush=True,
    )
    end = time.monotonic() + a.duration
    next_burst = time.monotonic() + a.every_s
    bursts = 0
    while True:
        pause = next_burst - time.monotonic()
        if next_burst >= end:
            break
        if pause > 0:
            time.sleep(pause)
        start = time.monotonic()
        until = start + a.busy_ms / 1000
        while time.monotonic() < until:
            pass
        bursts += 1
        print(f"hog: burst {bursts} of {(time.monotonic() - start) * 1000:.0f} ms", flush=True)
        next_burst += a.every_s
    print(f"hog: done, {bursts} bursts", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
