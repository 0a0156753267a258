"""The idle scenario: N viewers connected to one room, sending and receiving nothing.

What a node spends on viewers who only stay connected: its periodic work per
connection (heartbeats, reaping, the degrade signals) and the pongs it reads.

1. server: as every scenario (``--spawn``, ``--server-cpu``, ``--server-src`` ...);
2. connect N viewers (cheap drain viewers in ``--workers`` processes; they answer the
   server's WebSocket pings and send nothing else);
3. wait ``--settle`` seconds (the connect wave's own work ends);
4. measure the server's CPU (utime + stime of the process and its children) over
   ``--duration`` seconds; at least two heartbeat periods (15 s each by default) give
   a fair share of heartbeat rounds;
5. close everything; stop the spawned server.

The node's degrade level is not polled (a REST request every 0.5 s would be most of
what is measured); the level is read once at the end. Exit status: 0, 1 if an SLO
given on the command line was missed, 2 if the run could not be done.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import urllib.request
from typing import Any

from loadtest import stats
from loadtest.harness import Run
from loadtest.results import Fatal, Rows

NAME = "idle"
HELP = "N idle viewers in one room: server CPU per connected viewer"
CONFIG = ("viewers", "workers", "settle", "duration", "server_cpu", "gen_cpu", "server_env")
LOAD = {"viewers": 3000}
SLOS = {
    "--slo-cpu-pct": "the server's CPU over the window, %% of one core",
    "--slo-disconnects": "",
    "--slo-connect-failed": "",
}
DEGRADE = False
LAG = "hudong_event_loop_lag_probe_seconds_bucket"
LAG_MARKS = ("0.05", "0.1", "0.25")  # probes later than these (buckets of server/metrics.py)


def lag_buckets(base: str) -> dict[str, float]:
    """The node's loop-lag probe histogram (cumulative counts by ``le``); empty if unread."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for m in re.finditer(LAG + r'\{le="([^"]+)"\} ([0-9.e+]+)', text):
        out[m.group(1)] = float(m.group(2))
    return out


def late_probes(before: dict[str, float], after: dict[str, float]) -> dict[str, float] | None:
    """Loop-lag probes in the window, and how many were later than each mark."""
    if not before or not after:
        return None
    total = after["+Inf"] - before["+Inf"]
    late = {f"over_{float(m) * 1000:g}ms": total - (after[m] - before[m]) for m in LAG_MARKS}
    return {"probes": total, **late}


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--settle", type=float, default=5, help="wait after joining (s)")
    load.add_argument("--duration", type=float, default=31, help="measured window (s)")


def check_args(args: argparse.Namespace) -> None:
    if args.duration <= 0:
        raise Fatal("--duration must be positive")
    if args.deadline is None:
        args.deadline = args.connect_timeout + args.settle + args.duration + 60


async def body(run: Run) -> None:
    a, res, server = run.args, run.res, run.server
    await asyncio.to_thread(run.api.prepare_room, run.room)
    aud = run.audience()

    async def status() -> str:
        c = await aud.counts()
        return (
            f"viewers {c['ready']} (+{c['connecting']} joining, {c['failed']} failed)"
            f" | disconnects {c['disconnects']}"
        )

    run.status = status
    run.phase = "connect"
    res["connect"] = await aud.connect(a.viewers, 0, a.workers)
    connected = res["connect"]["connected"]
    if not connected:
        raise Fatal("no viewer connected")
    run.phase = "settle"
    await asyncio.sleep(a.settle)
    before = await aud.counts()
    lag0 = await asyncio.to_thread(lag_buckets, run.api.base)
    w0 = {**run.mark(), "cpu": server.cpu()}
    run.phase = "measure"
    await asyncio.sleep(a.duration)
    w1 = {**run.mark(), "cpu": server.cpu()}
    lag1 = await asyncio.to_thread(lag_buckets, run.api.base)
    after = await aud.counts()
    dur = w1["t"] - w0["t"]
    cpu = stats.cpu_window(w0["cpu"], w1["cpu"], dur)
    status_code, degrade = await asyncio.to_thread(run.api.call, "GET", "/api/v1/degrade")
    level = degrade if status_code == 200 and isinstance(degrade, dict) else {}
    res.update(
        {
            "window_s": round(dur, 3),
            "connected": connected,
            **{f"server_{k}": v for k, v in cpu.items()},
            "server_us_per_viewer_s": stats.per(1e6 * cpu["cpu_s"], connected * dur, 3),
            "frames_window": after["frames"] - before["frames"],
            "connect_failed": res["connect"]["failed"],
            "disconnects": after["disconnects"],
            "disconnect_codes": run.close_codes(),
            "level_at_end": level.get("level"),
            "loop_lag_probes": late_probes(lag0, lag1),
            "server_rss_kb": server.memory_kb()[0],
            **stats.generator_window(w0, w1, dur),
        }
    )
    run.slo("cpu_pct", a.slo_cpu_pct, res["server_cpu_pct"])
    run.slo("disconnects", a.slo_disconnects, res["disconnects"])
    run.slo("connect_failed", a.slo_connect_failed, res["connect_failed"])


def rows(res: dict[str, Any]) -> Rows:
    con = res["connect"]
    return [
        (
            "viewers",
            f"{con['connected']} connected, {con['failed']} failed, in {con['time_s']} s",
        ),
        ("window", f"{res['window_s']} s, {res['frames_window']} frames received by viewers"),
        (
            "server CPU",
            f"{res['server_cpu_pct']}% of a core "
            f"(user {res['server_user_pct']}%, sys {res['server_sys_pct']}%), "
            f"{res['server_us_per_viewer_s']} µs per viewer per second",
        ),
        ("server RSS", f"{res['server_rss_kb'] / 1024:.1f} MiB"),
        ("disconnects", f"{res['disconnects']} {res['disconnect_codes'] or ''}".strip()),
        (
            "generator",
            f"{res['gen_cpu_pct']}% CPU (drain workers {res['gen_workers_cpu_pct']}%)",
        ),
        ("cores", stats.cores_text(res["cores"])),
        ("loop lag", _lag_text(res["loop_lag_probes"])),
        ("degrade level", f"{res['level_at_end']} at the end"),
    ]


def _lag_text(lag: dict[str, float] | None) -> str:
    if lag is None:
        return "(not read)"
    late = ", ".join(f"{v:g} {k.replace('_', ' ')}" for k, v in lag.items() if k != "probes")
    return f"{lag['probes']:g} probes in the window: {late}"
