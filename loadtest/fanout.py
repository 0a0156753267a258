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
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loadtest import harness, stats
from loadtest.harness import Run
from loadtest.rest import metrics_delta
from loadtest.results import Fatal, Rows
from loadtest.viewers import Audience, Member, Publisher, wait_delivered

NAME = "fanout"
HELP = "N viewers in one room, one publisher: server CPU per frame and message, latency"
CONFIG = (
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
LOAD = {"viewers": 2000}
SLOS = dict.fromkeys(
    (
        "--slo-p50-ms",
        "--slo-p99-ms",
        "--slo-cpu-pct",
        "--slo-us-per-message",
        "--slo-us-per-frame",
        "--slo-undelivered-pct",
        "--slo-disconnects",
        "--slo-connect-failed",
    ),
    "",
)


def add_arguments(load: argparse._ArgumentGroup) -> None:
    harness.add_publish_arguments(load, rate=200, duration=15, probes=50, settle=2, cooldown=True)
    load.add_argument(
        "--no-metrics",
        dest="metrics",
        action="store_false",
        help="do not scrape /metrics at the window's ends",
    )


def check_args(args: argparse.Namespace) -> None:
    harness.check_publishing(args)
    if args.deadline is None:
        args.deadline = (
            args.connect_timeout + args.settle + args.warmup + args.duration + args.cooldown + 60
        )


def progress(aud: Audience, pub: Publisher) -> Callable[[], Awaitable[str]]:
    rate = stats.Rate()

    async def status() -> str:
        c = await aud.counts()
        line = (
            f"viewers {c['ready']} (+{c['connecting']} joining, {c['failed']} failed)"
            f" published {pub.sent}"
        )
        r = rate(frames=c["frames"], messages=c["messages"])
        if r is not None:
            line += f" | {r['frames']:,.0f} frames/s {r['messages']:,.0f} msg/s"
        return line + f" | disconnects {c['disconnects']}"

    return status


async def body(run: Run) -> None:
    a, res, server = run.args, run.res, run.server
    rss_base, _ = server.memory_kb()
    host_token = await asyncio.to_thread(run.api.prepare_room, run.room)
    aud = run.audience()
    pub = Publisher([])
    run.status = progress(aud, pub)
    rss_peak = [0]

    async def sample_rss() -> None:
        while True:
            rss_peak[0] = max(rss_peak[0], server.memory_kb()[0])
            await asyncio.sleep(0.5)

    async def mark() -> dict[str, Any]:
        return {**run.mark(), "cpu": server.cpu(), **(await aud.counts())}

    loop = asyncio.get_running_loop()
    sampler: asyncio.Task[None] | None = None
    window_start: float | None = None
    try:
        run.phase = "connect"
        res["connect"] = await aud.connect(a.viewers, a.probes, a.workers)
        hosts, errors = await run.connect(
            Member, 1, {"op": "join", "room": run.room, "token": host_token}
        )
        if not hosts:
            raise Fatal(f"the publisher could not join: {errors[:1]}")
        pub.senders = hosts
        connected = res["connect"]["connected"]
        if not connected:
            raise Fatal("no viewer connected")
        run.phase = "settle"
        await asyncio.sleep(a.settle)
        rss_idle, _ = server.memory_kb()
        rss_peak[0] = rss_idle
        sampler = loop.create_task(sample_rss())
        disc_before = (await aud.counts())["disconnects"]

        run.phase = "warmup"
        pub_task = loop.create_task(pub.run(a.rate, a.warmup + a.duration))
        await asyncio.sleep(a.warmup)
        m0 = await asyncio.to_thread(run.api.metrics) if a.metrics else {}
        w0 = await mark()
        window_start = w0["t"] - run.t0
        run.phase = "measure"
        await asyncio.sleep(max(0.0, w0["t"] + a.duration - time.monotonic()))
        w1 = await mark()
        m1 = await asyncio.to_thread(run.api.metrics) if a.metrics else {}
        run.phase = "cooldown"
        published = await pub_task
        expected_total = published * connected

        async def delivered() -> int:
            return (await aud.counts())["messages"]

        cooldown_s = await wait_delivered(delivered, expected_total, a.cooldown, a.stall)
        end = await aud.counts()
        _, hwm = server.memory_kb()
    finally:
        if sampler is not None:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        res["degrade"] = run.degrade()
        if window_start is not None:
            res["degrade_window"] = run.degrade(window_start)

    dur = w1["t"] - w0["t"]
    frames = w1["frames"] - w0["frames"]
    messages = w1["messages"] - w0["messages"]
    cpu = stats.cpu_window(w0["cpu"], w1["cpu"], dur)
    lats = stats.latencies_ms(aud.probes, w0["t_ns"], w1["t_ns"])
    expected_probe = round((w1["t_ns"] - w0["t_ns"]) / 1e9 * a.rate) * len(aud.probes)
    res.update(
        {
            "window_s": round(dur, 3),
            "published_total": published,
            "publish_errors": pub.errors,
            "publisher_disconnected": hosts[0].closed,
            "frames_window": frames,
            "messages_window": messages,
            "frames_per_s": round(frames / dur),
            "messages_per_s": round(messages / dur),
            "expected_messages_per_s": round(connected * a.rate),
            "messages_per_frame": stats.per(messages, frames, 2),
            **{f"server_{k}": v for k, v in cpu.items()},
            "server_us_per_frame": stats.per(1e6 * cpu["cpu_s"], frames, 3),
            "server_us_per_message": stats.per(1e6 * cpu["cpu_s"], messages, 4),
            "latency_ms": stats.quantiles(lats),
            "probe_received_pct": stats.per(100 * len(lats), expected_probe, 2),
            "server_rss_kb": {"base": rss_base, "idle": rss_idle, "peak": rss_peak[0], "hwm": hwm},
            "idle_kb_per_conn": round((rss_idle - rss_base) / connected, 2),
            "delivered_total": end["messages"],
            "expected_total": expected_total,
            "undelivered_pct": stats.rnd(
                100 * (1 - end["messages"] / expected_total) if expected_total else None, 3
            ),
            "cooldown_s": cooldown_s,
            "connect_failed": res["connect"]["failed"],
            "disconnects": end["disconnects"],
            "disconnects_before_publish": disc_before,
            "disconnect_codes": run.close_codes(),
            **stats.generator_window(w0, w1, dur),
            "server_metrics_window": metrics_delta(m0, m1) if a.metrics else None,
        }
    )
    lat = res["latency_ms"]
    run.slo("p50_ms", a.slo_p50_ms, lat["p50"])
    run.slo("p99_ms", a.slo_p99_ms, lat["p99"])
    run.slo("cpu_pct", a.slo_cpu_pct, res["server_cpu_pct"])
    run.slo("us_per_message", a.slo_us_per_message, res["server_us_per_message"])
    run.slo("us_per_frame", a.slo_us_per_frame, res["server_us_per_frame"])
    run.slo("undelivered_pct", a.slo_undelivered_pct, res["undelivered_pct"])
    run.slo("disconnects", a.slo_disconnects, res["disconnects"])
    run.slo("connect_failed", a.slo_connect_failed, res["connect_failed"])


def rows(res: dict[str, Any]) -> Rows:
    lat, rss, con, cfg = res["latency_ms"], res["server_rss_kb"], res["connect"], res["config"]
    mib = {k: f"{v / 1024:.1f}" for k, v in rss.items()}
    return [
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
            f"{stats.latency_text(lat)}  ({lat['samples']} samples, "
            f"{res['probe_received_pct']}% of expected)",
        ),
        (
            "server RSS",
            f"base {mib['base']} MiB, idle {mib['idle']} MiB, peak {mib['peak']} MiB, "
            f"{res['idle_kb_per_conn']} KB per idle connection",
        ),
        *harness.delivery_rows(res),
        (
            "degrade levels",
            " → ".join(str(x) for x in res["degrade"]["path"])
            + " (window: "
            + " → ".join(str(x) for x in res.get("degrade_window", {}).get("path", []))
            + ")",
        ),
    ]
