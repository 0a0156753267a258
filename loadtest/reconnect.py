"""Reconnect storm: N viewers join, all are dropped at once (a client-side abort) and
rejoin with full-jitter exponential backoff (0..``--backoff-base`` s, the cap doubling
up to ``--backoff-max``), as the JS client does (clients/js, "reconnect").

    python -m loadtest reconnect --spawn --viewers 5000 --slo-rejoin-s 30

Reports the time until every viewer is back, rejoin percentiles from the drop, the
attempts it took, the server's CPU over the storm and the degrade levels it went
through. Checks that every viewer rejoined.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from typing import Any

from loadtest import harness
from loadtest.harness import Run
from loadtest.rest import metrics_delta
from loadtest.results import Fatal, Rows
from loadtest.stats import quantiles, rnd
from loadtest.viewers import ClientStats, Member, connect

NAME = "reconnect"
HELP = "reconnect storm: N viewers dropped at once rejoin with jittered backoff"
CONFIG = ("viewers", "backoff_base", "backoff_max", "gen_cpu")
LOAD = {"viewers": 5000, "deadline": 300}
SLOS = {
    "--slo-rejoin-s": "time until every viewer rejoined",
    "--slo-cpu-s": "server CPU seconds for the whole storm",
}


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--backoff-base", type=float, default=0.5, help="first backoff cap (s)")
    load.add_argument("--backoff-max", type=float, default=10.0, help="largest backoff cap (s)")
    load.add_argument("--concurrency", type=int, default=200, help="initial connects in flight")
    load.add_argument("--rejoin-timeout", type=float, default=120, help="give up rejoining after")


async def body(run: Run) -> None:
    a, res, server = run.args, run.res, run.server
    await asyncio.to_thread(run.api.prepare_room, run.room)
    run.phase = "connect"
    first: list[Member] = []
    run.status = lambda: f"viewers {len(first) or len(run.clients)}/{a.viewers}"
    t = time.monotonic()
    first, errors = await run.connect(Member, a.viewers, concurrency=a.concurrency)
    res["connect"] = {
        "connected": len(first),
        "failed": len(errors),
        "time_s": round(time.monotonic() - t, 2),
        "errors_sample": sorted(set(errors))[:5],
    }
    if not first:
        raise Fatal("no viewer connected")
    await asyncio.sleep(2)
    rss0, _ = server.memory_kb()
    m0 = await asyncio.to_thread(run.api.metrics)

    run.phase = "storm"
    rejoined: list[float] = []
    attempts: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    given_up = 0
    run.status = lambda: f"rejoined {len(rejoined)}/{len(first)} failures {sum(failures.values())}"
    cpu0, t_drop = run.cpu(), time.monotonic()
    since = t_drop - run.t0
    run.stats.closing = True  # the drop is ours: not counted as disconnects
    for m in first:
        m.abort()
    run.clients = []
    fresh = ClientStats()
    join = {"op": "join", "room": run.room}

    async def rejoin() -> None:
        nonlocal given_up
        attempt = 0
        while time.monotonic() - t_drop < a.rejoin_timeout:
            cap = min(a.backoff_max, a.backoff_base * 2**attempt)
            await asyncio.sleep(random.uniform(0, cap))  # full jitter
            attempt += 1
            try:
                m = await connect(Member, server, join, fresh, a.handshake_timeout)
            except Exception as exc:
                text = str(exc) or type(exc).__name__
                failures[text[:60]] += 1
                continue
            run.clients.append(m)
            rejoined.append(time.monotonic() - t_drop)
            attempts[attempt] += 1
            return
        given_up += 1

    await asyncio.gather(*(rejoin() for _ in first))
    storm = run.cpu_since(cpu0, t_drop)
    m1 = await asyncio.to_thread(run.api.metrics)
    rss1, _ = server.memory_kb()
    run.phase = "settle"
    back = await run.poller.wait_level(0, 60) if run.poller else None
    rejoined.sort()
    res.update(
        {
            "viewers": len(first),
            "rejoined": len(rejoined),
            "given_up": given_up,
            "time_to_all_s": rnd(rejoined[-1] if rejoined else None),
            "rejoin_s": quantiles(rejoined),
            "attempts": {str(k): v for k, v in sorted(attempts.items())},
            "failures": dict(failures.most_common(8)),
            "server_cpu_storm": storm,
            "server_rss_kb": {"before": rss0, "after": rss1},
            "server_metrics": metrics_delta(m0, m1),
            "degrade": run.degrade(since),
            "level0_after_storm_s": back,
        }
    )
    run.check("all_rejoined", len(rejoined) == len(first), f"{len(rejoined)}/{len(first)} rejoined")
    run.slo("rejoin_s", a.slo_rejoin_s, res["time_to_all_s"])
    run.slo("cpu_s", a.slo_cpu_s, storm["cpu_s"])


def rows(res: dict[str, Any]) -> Rows:
    r, cpu = res["rejoin_s"], res["server_cpu_storm"]
    return [
        ("viewers", f"{res['viewers']} connected in {res['connect']['time_s']} s, then dropped"),
        (
            "rejoined",
            f"{res['rejoined']} in {res['time_to_all_s']} s (p50 {r['p50']}  p90 {r['p90']}  "
            f"p99 {r['p99']} s), gave up {res['given_up']}",
        ),
        ("attempts", f"{res['attempts']}; failures {res['failures'] or 'none'}"),
        ("server CPU", f"{cpu['cpu_s']} s over {cpu['seconds']} s ({cpu['cpu_pct']}%)"),
        harness.levels_row(res),
        ("back at level 0", f"{res['level0_after_storm_s']} s after the last rejoin"),
    ]
