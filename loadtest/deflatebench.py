"""Micro-benchmark of permessage-deflate on batches: ``python -m loadtest.deflatebench``.

Builds batches of realistic Chinese danmaku (:mod:`loadtest.chinese`) exactly as a
node encodes them (the ``batch`` message of protocol/messages.py, JSON and msgpack),
and for each batch size, zlib level, memLevel and window compresses them the way the
node does (websockets' ``PerMessageDeflate`` without context takeover, one fresh
compressor per message). Prints, per setting, wire bytes per danmaku (frame header
included) and CPU µs per batch (median of ``--repeat`` passes over ``--batches``
batches, ``time.process_time``), plain beside compressed. BENCHMARKS.md, "Wire
bytes", says how the node's level and threshold were chosen from it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from typing import Any

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from loadtest.chinese import nicknames, storm
from protocol.codec import JSON, MSGPACK, Codec
from protocol.messages import DEFAULT_COLOR, batch


def danmaku_events(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """``count`` danmaku events as a node's stream makes them (server/hub/stream.py)."""
    names = nicknames(seed)
    users = [
        {"id": f"guest-{(0x9E3779B97F * (i + 1)) % 16**10:010x}", "name": n, "role": "viewer"}
        for i, n in enumerate(names)
    ]
    ts = 1_764_800_000_000
    events = []
    for n, (sender, text) in enumerate(itertools.islice(storm(seed), count)):
        ts += 2 + n % 3  # ~400 danmaku/s
        events.append(
            {
                "type": "danmaku",
                "id": f"node-a1b2c3-48213.{100_000 + n}",
                "user": users[sender],
                "text": text,
                "color": DEFAULT_COLOR,
                "mode": "scroll",
                "ts": ts,
            }
        )
    return events


def batches(size: int, count: int, seed: int = 1) -> list[list[dict[str, Any]]]:
    events = danmaku_events(size * count, seed)
    return [events[i * size : (i + 1) * size] for i in range(count)]


def measure(
    codec: Codec, groups: list[list[dict[str, Any]]], ext: PerMessageDeflate | None, repeat: int
) -> tuple[float, float]:
    """(wire bytes per danmaku, median CPU µs per batch) for encoding + framing."""
    payloads = [codec.encode(batch("room", k, g)) for k, g in enumerate(groups)]
    opcode = Opcode.BINARY if codec.binary else Opcode.TEXT
    exts = [ext] if ext is not None else None
    total = sum(len(Frame(opcode, p).serialize(mask=False, extensions=exts)) for p in payloads)
    danmaku = sum(len(g) for g in groups)
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        for p in payloads:
            Frame(opcode, p).serialize(mask=False, extensions=exts)
        times.append((time.process_time() - t0) / len(payloads) * 1e6)
    return total / danmaku, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest.deflatebench", description=__doc__)
    ap.add_argument("--sizes", default="1,2,3,5,10,20,50,100", help="danmaku per batch")
    ap.add_argument("--levels", default="1,3,6,9")
    ap.add_argument("--mem-levels", default="8")
    ap.add_argument("--windows", default="15")
    ap.add_argument("--batches", type=int, default=200, help="batches per setting")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json-out", help="also write the rows as JSON here")
    a = ap.parse_args(argv)
    sizes = [int(x) for x in a.sizes.split(",")]
    rows = []
    print("codec    n  setting          B/danmaku  µs/batch  ratio")
    for codec in (JSON, MSGPACK):
        for size in sizes:
            groups = batches(size, a.batches)
            plain_b, plain_us = measure(codec, groups, None, a.repeat)
            rows.append([codec.name, size, "plain", round(plain_b, 1), round(plain_us, 2), 1.0])
            print(f"{codec.name:7} {size:3}  {'plain':15} {plain_b:9.1f} {plain_us:9.2f}")
            for level, mem, window in itertools.product(
                [int(x) for x in a.levels.split(",")],
                [int(x) for x in a.mem_levels.split(",")],
                [int(x) for x in a.windows.split(",")],
            ):
                ext = PerMessageDeflate(True, True, 15, window, {"level": level, "memLevel": mem})
                b, us = measure(codec, groups, ext, a.repeat)
                setting = f"l{level} m{mem} w{window}"
                ratio = plain_b / b
                rows.append([codec.name, size, setting, round(b, 1), round(us, 2), round(ratio, 2)])
                print(f"{codec.name:7} {size:3}  {setting:15} {b:9.1f} {us:9.2f}  {ratio:5.2f}")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"argv": sys.argv, "rows": rows}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
