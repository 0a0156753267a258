"""Slow consumers: a share of the viewers stops reading (a 4 KiB ``SO_RCVBUF``, reading
paused) while the rest (drain workers and latency probes) are measured.

    python -m loadtest slow --spawn --viewers 5000 --slow-share 0.1 --rate 500

What the rest gets while the node's bounded per-connection buffers fill for the
stalled ones (STYLE.md, "Bounded per-connection buffers"): their latency and
undelivered share, and how the node closed the stalled viewers (``4008 too_slow``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from loadtest import harness
from loadtest.harness import Run
from loadtest.rest import metrics_delta, metrics_named
from loadtest.results import Fatal, Rows
from loadtest.stats import latencies_ms, quantiles, rnd
from loadtest.viewers import Member, Publisher

NAME = "slow"
HELP = "slow consumers: a share of viewers stops reading; the rest's latency, drops"
CONFIG = ("viewers", "slow_share", "rate", "duration", "rcvbuf", "gen_cpu")
check_args = harness.check_publishing
LOAD = {"viewers": 5000, "deadline": 300}
SLOS = {
    "--slo-p99-ms": "the rest's p99 publish → receipt",
    "--slo-undelivered-pct": "the rest's missing share",
}


def add_arguments(load: argparse._ArgumentGroup) -> None:
    harness.add_publish_arguments(load, rate=200, duration=20, probes=50)
    load.add_argument("--slow-share", type=float, default=0.1, help="share of viewers that stall")
    load.add_argument("--rcvbuf", type=int, default=4096, help="slow viewers' SO_RCVBUF (bytes)")


class Stalled(Member):
    """Joins, then never reads again."""

    def _handshake(self, payload: bytes) -> None:
        super()._handshake(payload)
        if self.ready.done() and self.transport is not None:
            self.transport.pause_reading()


async def body(run: Run) -> None:
    a, res = run.args, run.res
    host = await asyncio.to_thread(run.api.prepare_room, run.room)
    n_slow = round(a.viewers * a.slow_share)
    n_probes = min(a.probes, a.viewers - n_slow)
    run.phase = "connect"
    run.status = lambda: f"viewers {len(run.clients)} + drains"
    aud = run.audience()
    rest = await aud.connect(a.viewers - n_slow, n_probes, a.workers)
    slow, serr = await run.connect(Stalled, n_slow, rcvbuf=a.rcvbuf)
    pubs, puberr = await run.connect(Member, 1, {"op": "join", "room": run.room, "token": host})
    if not pubs:
        raise Fatal(f"publisher: {puberr}")
    res["connect"] = {
        "drains": rest["connected"] - rest["probes"],
        "probes": rest["probes"],
        "slow": len(slow),
        "failed": rest["failed"] + len(serr),
    }
    await asyncio.sleep(1)
    pub = Publisher(pubs)
    run.status = lambda: f"published {pub.sent}"
    run.phase = "warmup"
    pub_task = asyncio.get_running_loop().create_task(pub.run(a.rate, a.warmup + a.duration))
    await asyncio.sleep(a.warmup)
    run.phase = "measure"
    m0 = await asyncio.to_thread(run.api.metrics)
    c0, cpu0, t0, t0_ns = await aud.drain_counts(), run.cpu(), time.monotonic(), time.time_ns()
    since = t0 - run.t0
    published = await pub_task
    c1, cpu = await aud.drain_counts(), run.cpu_since(cpu0, t0)
    t1_ns = time.time_ns()
    run.phase = "cooldown"
    await asyncio.sleep(2)
    m1 = await asyncio.to_thread(run.api.metrics)
    end = await aud.counts()
    lats = latencies_ms(aud.probes, t0_ns, t1_ns)
    expected = published * end["ready"]
    metrics = metrics_delta(m0, m1)
    res.update(
        {
            "published": published,
            "window_s": cpu["seconds"],
            "rest_latency_ms": quantiles(lats),
            "rest_delivered_msg_per_s": round((c1["messages"] - c0["messages"]) / cpu["seconds"]),
            "rest_undelivered_pct": rnd(
                100 * (1 - end["messages"] / expected) if expected else None, 3
            ),
            "rest_disconnects": end["disconnects"],
            "slow_closed": sum(1 for s in slow if s.closed),
            "close_codes": dict(run.stats.close_codes),
            "server_cpu": cpu,
            "server_drops": metrics_named(metrics, "hudong_drops"),
            "server_disconnects": metrics_named(metrics, "hudong_disconnects"),
            "degrade": run.degrade(since),
        }
    )
    run.slo("p99_ms", a.slo_p99_ms, res["rest_latency_ms"]["p99"])
    run.slo("undelivered_pct", a.slo_undelivered_pct, res["rest_undelivered_pct"])


def rows(res: dict[str, Any]) -> Rows:
    lat, c = res["rest_latency_ms"], res["connect"]
    return [
        (
            "viewers",
            f"{c['drains'] + c['probes']} reading ({c['probes']} probes), {c['slow']} stalled, "
            f"{c['failed']} failed",
        ),
        ("published", f"{res['published']} danmaku, window {res['window_s']} s"),
        (
            "the rest",
            f"p50 {lat['p50']}  p99 {lat['p99']}  max {lat['max']} ms; "
            f"{res['rest_delivered_msg_per_s']:,} msg/s; undelivered "
            f"{res['rest_undelivered_pct']}%; disconnects {res['rest_disconnects']}",
        ),
        ("stalled", f"{res['slow_closed']} closed by the server {res['close_codes']}"),
        ("server drops", str(res["server_drops"] or "none")),
        ("server closes", str(res["server_disconnects"] or "none")),
        ("server CPU", f"{res['server_cpu']['cpu_pct']}%"),
        harness.levels_row(res),
    ]
