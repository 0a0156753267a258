"""Connect burst: N viewers connect and join one room within S seconds, stay a while,
then all leave at once; how long joining took, and what the burst did to the node.

    python -m loadtest connect --spawn --viewers 5000 --over 2

Viewers come from ``--workers`` processes (the cheap raw clients of ``viewers.py``,
hudong.v1.json, anonymous joins), each taking every ``workers``-th slot of one even
schedule: viewer i starts its TCP connect at ``i * over / N`` seconds after the common
start, so the node sees one steady wave of N connects in S seconds whatever a client
process does. A viewer has joined when its ``joined`` arrives. After ``--hold``
seconds every viewer sends a close frame (1001) and closes its socket at one common
moment: the leave burst.

Reported: the time from the start until the last viewer joined, join latency (TCP
connect to ``joined``) percentiles, how late the clients started against their
schedule (a late client means the generator, not the node, was the bottleneck), the
degrade levels the node went through (``GET /api/v1/degrade`` every 0.5 s, and the
levels entered from ``hudong_degrade_changes``), and the node's event-loop stalls
(``hudong_event_loop_stall_seconds``, a 50 ms probe: the longest seen, read from
``hudong_event_loop_stall_max_seconds`` every second, and how many probes were late by
more than 250 ms), for the join and the leave phase each; and how long until the node
counted no connection after the leave. Exit 1 when a viewer did not join or an SLO
given (``--slo-joined-s``, ``--slo-stall-ms``, ``--slo-level``) was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from loadtest import wire
from loadtest.harness import Run, collect_workers, run_loop, worker_stopper
from loadtest.rest import HTTP_TIMEOUT_S
from loadtest.results import Fatal, Rows
from loadtest.stats import latency_text, quantiles, rnd

NAME = "connect"
HELP = "N viewers connect and join within S seconds, then all leave at once"
CONFIG = ("viewers", "workers", "over", "hold", "server_env")
START_TIMEOUT = 30
LOAD = {
    "viewers": 5000,
    "workers": 4,
    "workers_help": "client processes",
    "deadline": 120,
    "drains": False,
}
SLOS = {
    "--slo-joined-s": "fail when the last viewer joined later than this after the start",
    "--slo-stall-ms": "fail when the node's longest event-loop stall is above",
    "--slo-level": "fail when the node went above this degrade level",
}
POLL = "burger"
STALL_MARK_S = 0.25  # a bucket of hudong_event_loop_stall_seconds
# (schedule offset, start delay against it, join latency or None, error or "")
Entry = tuple[float, float, float | None, str]


# --- one client process -------------------------------------------------------------------


@dataclass
class Share:
    """One client process's part of the schedule: slots ``index, index + step, ...`` of
    ``viewers``; the start and leave times come from the parent through shared memory."""

    host: str
    port: int
    room: str
    index: int
    step: int
    viewers: int
    over: float
    timeout: float
    start_at: Any  # multiprocessing.Value("d"): the common start (time.time()), 0 until set
    leave_at: Any  # multiprocessing.Value("d"): when every viewer closes, 0 until set
    joined: Any  # multiprocessing.Value("i"): viewers joined, all processes
    left: Any  # multiprocessing.Value("i"): processes whose viewers closed
    out: Any  # multiprocessing.Queue: ("done", [Entry, ...]) or ("error", text)


async def _wait_for(value: Any) -> float:
    while value.value == 0:  # noqa: ASYNC110 - set by the parent process
        await asyncio.sleep(0.005)
    return float(value.value)


async def _clients(share: Share) -> None:
    from loadtest.viewers import Client, ClientStats

    loop = asyncio.get_running_loop()
    stats = ClientStats()
    join = {"op": "join", "id": 1, "room": share.room}
    clients: list[Client] = []
    entries: list[Entry] = []

    async def one(offset: float, due: float) -> None:
        started = time.time()
        try:
            _, client = await asyncio.wait_for(
                loop.create_connection(
                    lambda: Client(share.host, share.port, join, stats), share.host, share.port
                ),
                share.timeout,
            )
            clients.append(client)
            await asyncio.wait_for(client.ready, share.timeout)
        except Exception as exc:
            entries.append((offset, started - due, None, repr(exc)[:200]))
            return
        entries.append((offset, started - due, time.time() - started, ""))
        with share.joined.get_lock():
            share.joined.value += 1

    start = await _wait_for(share.start_at)
    tasks = []
    for slot in range(share.index, share.viewers, share.step):
        offset = slot * share.over / share.viewers
        delay = start + offset - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(offset, start + offset)))
    await asyncio.gather(*tasks)

    leave = await _wait_for(share.leave_at)
    await asyncio.sleep(max(0.0, leave - time.time()))
    stats.closing = True
    bye = wire.client_frame(wire.OP_CLOSE, (1001).to_bytes(2, "big"))
    for client in clients:
        if client.transport is not None and not client.transport.is_closing():
            client.transport.write(bye)
            client.transport.close()
    with share.left.get_lock():
        share.left.value += 1
    share.out.put(("done", entries))
    await asyncio.sleep(0.5)  # let the FINs go out before the process exits


def _worker(share: Share) -> None:
    """One client process; its errors are reported, not hidden."""
    try:
        run_loop(_clients(share))
    except Exception as exc:
        share.out.put(("error", repr(exc)))


# --- the node's side ---------------------------------------------------------------------------

NODE_METRICS = (
    "hudong_connections{",
    "hudong_event_loop_stall_max_seconds ",
    f'hudong_event_loop_stall_seconds_bucket{{le="{STALL_MARK_S}"}}',
    "hudong_event_loop_stall_seconds_count",
    "hudong_degrade_changes_total{",
)


def node_metrics(base: str) -> dict[str, float]:
    """What this scenario reads from ``/metrics`` (connections summed over codecs)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=HTTP_TIMEOUT_S) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(NODE_METRICS):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("hudong_connections{"):
            name = "connections"
        out[name] = out.get(name, 0.0) + float(value)
    return out


class NodeWatch:
    """``/metrics`` once a second: the node's connections and its worst recent stall."""

    def __init__(self, base: str, t0: float) -> None:
        self.base = base
        self.t0 = t0
        self.samples: list[dict[str, float]] = []

    async def run(self) -> None:
        while True:
            try:
                m = await asyncio.to_thread(node_metrics, self.base)
            except OSError:
                m = None
            if m is not None:
                self.samples.append({"t": round(time.monotonic() - self.t0, 2), **m})
            await asyncio.sleep(1.0)

    def last(self) -> dict[str, float]:
        return self.samples[-1] if self.samples else {}

    def worst_stall(self, since: float, until: float) -> float | None:
        """The longest stall the node reported in a window. Its gauge holds a stall for
        5-10 s, so the phases are apart by ``--hold`` (10 s by default)."""
        seen = [
            s["hudong_event_loop_stall_max_seconds"]
            for s in self.samples
            if since <= s["t"] <= until and "hudong_event_loop_stall_max_seconds" in s
        ]
        return max(seen, default=None)


def late_probes(before: dict[str, float], after: dict[str, float]) -> int:
    """Stall probes later than STALL_MARK_S between two readings."""
    bucket = f'hudong_event_loop_stall_seconds_bucket{{le="{STALL_MARK_S}"}}'
    count = "hudong_event_loop_stall_seconds_count"
    total = after.get(count, 0) - before.get(count, 0)
    within = after.get(bucket, 0) - before.get(bucket, 0)
    return round(total - within)


def levels_entered(before: dict[str, float], after: dict[str, float]) -> list[int]:
    out = []
    for key, value in after.items():
        if key.startswith("hudong_degrade_changes_total{") and value > before.get(key, 0):
            out.append(int(key.split('"')[1]))
    return sorted(out)


# --- the run -------------------------------------------------------------------------------


async def body(run: Run) -> None:
    a, res = run.args, run.res
    await asyncio.to_thread(run.api.prepare_room, run.room)
    await asyncio.to_thread(run.api.open_poll, run.room, POLL, "Which part matters most?")
    res.update({"backend": run.deployment.backend, "viewers": a.viewers, "over_s": a.over})
    watch = NodeWatch(run.server.base, run.t0)
    run.tasks.append(asyncio.get_running_loop().create_task(watch.run()))

    ctx = multiprocessing.get_context("spawn")
    start_at, leave_at = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
    joined, left = ctx.Value("i", 0), ctx.Value("i", 0)
    out = ctx.Queue()
    workers = max(1, min(a.workers, a.viewers))
    procs: list[multiprocessing.process.BaseProcess] = []

    stop_workers = worker_stopper(procs)

    run.closers.append(stop_workers)
    for i in range(workers):
        share = Share(
            run.server.host,
            run.server.port,
            run.room,
            i,
            workers,
            a.viewers,
            a.over,
            a.join_timeout,
            start_at,
            leave_at,
            joined,
            left,
            out,
        )
        p = ctx.Process(target=_worker, args=(share,), daemon=True)
        p.start()
        procs.append(p)
    await asyncio.sleep(2.0)  # the client processes import and start their loops
    before = await asyncio.to_thread(node_metrics, run.server.base)

    run.phase = "joining"
    run.status = lambda: (
        f"joined {joined.value}/{a.viewers}, node {int(watch.last().get('connections', 0))}"
    )
    t_join = time.monotonic() - run.t0
    start_at.value = time.time() + 0.5
    deadline = time.monotonic() + a.join_timeout + a.over + 5
    while joined.value < a.viewers and time.monotonic() < deadline:
        if not any(p.is_alive() for p in procs):
            break
        await asyncio.sleep(0.05)
    all_joined_s = time.time() - start_at.value
    await asyncio.sleep(a.hold)
    joined_metrics = await asyncio.to_thread(node_metrics, run.server.base)
    t_leave = time.monotonic() - run.t0

    run.phase = "leaving"
    leave_at.value = time.time() + 0.2
    parts, errors = await collect_workers(out, procs, workers)
    entries: list[Entry] = [entry for part in parts for entry in part]
    gone_s = None
    leave_deadline = time.monotonic() + a.join_timeout
    while time.monotonic() < leave_deadline:
        m = await asyncio.to_thread(node_metrics, run.server.base)
        if m.get("connections", 1) == 0:
            gone_s = round(time.time() - leave_at.value, 2)
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(a.hold)
    after = await asyncio.to_thread(node_metrics, run.server.base)
    t_end = time.monotonic() - run.t0
    await stop_workers()

    ok = [e for e in entries if e[2] is not None]
    failed = [e[3] for e in entries if e[2] is None]
    worst_join = watch.worst_stall(t_join, t_leave)
    worst_leave = watch.worst_stall(t_leave, t_end)
    res.update(
        {
            "joined": len(ok),
            "failed": len(failed),
            "failures": sorted(set(failed))[:5],
            "errors": errors,
            "all_joined_s": round(all_joined_s, 2) if len(ok) == a.viewers else None,
            "join_ms": quantiles((e[2] * 1000 for e in ok if e[2] is not None), nd=1),
            "start_late_ms": quantiles((e[1] * 1000 for e in entries), nd=1),
            "joining": {
                "stall_max_ms": rnd(worst_join * 1000 if worst_join is not None else None, 1),
                "stalls_over_250ms": late_probes(before, joined_metrics),
                "levels_entered": levels_entered(before, joined_metrics),
                "degrade": run.degrade(since=t_join) if run.poller else {},
            },
            "leaving": {
                "stall_max_ms": rnd(worst_leave * 1000 if worst_leave is not None else None, 1),
                "stalls_over_250ms": late_probes(joined_metrics, after),
                "levels_entered": levels_entered(joined_metrics, after),
                "node_empty_after_s": gone_s,
            },
            "degrade": run.degrade(since=t_join) if run.poller else {},
        }
    )
    stall_ms = max(
        (v for v in (res["joining"]["stall_max_ms"], res["leaving"]["stall_max_ms"]) if v),
        default=None,
    )
    run.check("all_joined", len(ok) == a.viewers, f"{len(ok)}/{a.viewers} joined")
    run.check("no_errors", not errors, f"client processes: {errors[:3]}")
    run.check("node_emptied", gone_s is not None, "the node still counted connections")
    run.slo("joined_s", a.slo_joined_s, res["all_joined_s"])
    run.slo("stall_ms", a.slo_stall_ms, stall_ms)
    run.slo("level", a.slo_level, res["degrade"].get("max"))


def rows(res: dict[str, Any]) -> Rows:
    j, lv = res.get("joining", {}), res.get("leaving", {})
    d = res.get("degrade", {})
    return [
        (
            "joined",
            f"{res.get('joined')}/{res.get('viewers')} in {res.get('over_s')} s offered "
            f"({res.get('backend')}), last at {res.get('all_joined_s')} s, "
            f"{res.get('failed')} failed {res.get('failures') or ''}".strip(),
        ),
        ("join ms", latency_text(res.get("join_ms") or {})),
        ("client late ms", latency_text(res.get("start_late_ms") or {})),
        (
            "joining",
            f"longest stall {j.get('stall_max_ms')} ms, {j.get('stalls_over_250ms')} probes "
            f"over 250 ms, levels entered {j.get('levels_entered')}",
        ),
        (
            "leaving",
            f"longest stall {lv.get('stall_max_ms')} ms, {lv.get('stalls_over_250ms')} probes "
            f"over 250 ms, levels entered {lv.get('levels_entered')}, "
            f"node empty after {lv.get('node_empty_after_s')} s",
        ),
        (
            "degrade levels",
            f"{' → '.join(str(x) for x in d.get('path', [])) or '?'} (max {d.get('max')})",
        ),
    ]


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--over", type=float, default=2.0, help="seconds the connects spread over")
    load.add_argument(
        "--hold",
        type=float,
        default=10.0,
        help="seconds joined before leaving, and watched after (the node's worst-stall "
        "gauge holds 5-10 s: shorter mixes the phases' stalls)",
    )
    load.add_argument("--join-timeout", type=float, default=30.0, help="per viewer")


def check_args(args: argparse.Namespace) -> None:
    if args.over < 0 or args.hold < 0 or args.join_timeout <= 0:
        raise Fatal("--over and --hold must be >= 0, --join-timeout positive")
