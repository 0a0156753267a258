"""Many quiet rooms: ``--rooms`` R rooms on ``--nodes`` N nodes sharing a private Redis,
each node serving every room (``--viewers`` idle viewers per node, spread over the rooms),
and nothing sent. What served rooms cost when nothing happens: the Redis commands of the
nodes' background loops (health, presence, resyncs, the bridge leases' rounds, the room
words' refresh), by command, and the nodes' CPU. With ``--embedded``, one node on the
durable embedded store (in a temporary data directory) instead: its CPU and the bytes it
wrote to disk.

    python -m loadtest rooms --nodes 1 --rooms 500 --viewers 500
    python -m loadtest rooms --nodes 3 --rooms 200 --viewers 200 --server-src /tmp/b-OLD
    python -m loadtest rooms --nodes 1 --embedded --rooms 500 --viewers 500

1. start redis-server and the nodes (``--nodes``; the server arguments as crossnode's);
2. create the rooms over REST on node 0;
3. connect ``--viewers`` viewers to each node, round robin over the rooms (at most
   ``--connect-concurrency`` joining at once); they answer pings and send nothing;
4. wait ``--settle`` s (the joins' own writes and reads end);
5. measure Redis (``INFO``: commands by command, its CPU), the nodes' CPU and what they
   wrote to disk (``/proc/<pid>/io``) over ``--duration`` s: keep it above
   ``bridges.scan_all_s`` (60) to count a whole-store scan in every window, or note that
   it may fall in or out;
6. close everything; stop the nodes and redis-server (and remove the data directory).

The default window (31 s) holds two resyncs (15 s) and six bridge-lease rounds (5 s).
Exit status: 0; 1 if an SLO was missed; 2 if the run could not be done.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from loadtest import procstat, stats
from loadtest.harness import Run
from loadtest.results import Fatal, Rows
from loadtest.servers import redis_delta
from loadtest.viewers import Client

NAME = "rooms"
HELP = "R quiet rooms served by N nodes on Redis (or one on disk): background work and CPU"
CONFIG = ("rooms", "viewers", "nodes", "settle", "duration")
LOAD = {"viewers": 500, "gen_cpu": False}
SLOS = {
    "--slo-redis-per-room-s": "Redis commands per second per room and node",
    "--slo-cpu-pct": "the nodes' CPU over the window, %% of one core (all nodes)",
}
CLUSTER = True
DEGRADE = False
JOINING = 50  # rooms whose viewers join at once


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--rooms", type=int, default=500, help="rooms, each served by every node")
    load.add_argument("--settle", type=float, default=10, help="wait after joining (s)")
    load.add_argument("--duration", type=float, default=31, help="measured window (s)")
    load.add_argument(
        "--embedded",
        action="store_true",
        help="one node on the durable embedded store (a temporary data directory), no Redis",
    )


def check_args(args: argparse.Namespace) -> None:
    if args.rooms < 1 or args.nodes < 1:
        raise Fatal("--rooms and --nodes must be at least 1")
    if args.embedded and args.nodes != 1:
        raise Fatal("--embedded runs one node (its store is one process's): add --nodes 1")
    if args.viewers < args.rooms:
        raise Fatal("--viewers must be at least --rooms: every node serves every room")
    if args.duration <= 0:
        raise Fatal("--duration must be positive")
    if args.deadline is None:
        args.deadline = args.connect_timeout * args.nodes + args.settle + args.duration + 120


async def body(run: Run) -> None:
    a, res, dep = run.args, run.res, run.deployment
    rds = dep.redis  # None with --embedded
    rooms = [f"{run.room}-{n}" for n in range(a.rooms)]
    run.phase = "rooms"
    run.status = lambda: f"rooms {a.rooms}, viewers {len(run.clients)}"
    for room in rooms:
        await asyncio.to_thread(
            run.api.expect, 201, "creating a room", "POST", "/api/v1/rooms", {"id": room}
        )

    run.phase = "connect"
    gate = asyncio.Semaphore(JOINING)
    errors: list[str] = []

    async def join(node: Any, room: str, count: int) -> None:
        async with gate:
            _, failed = await run.connect(Client, count, {"op": "join", "room": room}, server=node)
            errors.extend(failed)

    for node in dep.nodes:
        share = [a.viewers // a.rooms + (i < a.viewers % a.rooms) for i in range(a.rooms)]
        await asyncio.gather(*(join(node, room, n) for room, n in zip(rooms, share, strict=True)))
    if errors:
        raise Fatal(f"{len(errors)} viewers could not join; the first: {errors[0]}")

    run.phase = "settle"
    await asyncio.sleep(a.settle)
    info = (lambda: None) if rds is None else rds.info
    i0, cpu0, disk0, w0 = await asyncio.to_thread(info), nodes_cpu(run), disk(run), run.mark()
    run.phase = "measure"
    await asyncio.sleep(a.duration)
    i1, cpu1, disk1, w1 = await asyncio.to_thread(info), nodes_cpu(run), disk(run), run.mark()
    dur = w1["t"] - w0["t"]
    cpu = stats.cpu_window(cpu0, cpu1, dur)
    res.update(
        {
            "store": "redis" if rds is not None else "embedded",
            "window_s": round(dur, 3),
            "rooms": a.rooms,
            "nodes": len(dep.nodes),
            "viewers_connected": len(run.clients),
            "disconnects": run.stats.disconnects,
            "nodes_cpu_pct": cpu["cpu_pct"],
            "nodes_cpu": cpu,
            "disk_written_per_s": round((disk1 - disk0) / dur),
            **stats.generator_window(w0, w1, dur),
        }
    )
    if i0 is not None and i1 is not None:
        rd = redis_delta(i0, i1)
        served = a.rooms * len(dep.nodes)
        res.update(
            {
                "redis_commands_per_s": round(rd["commands"] / dur, 1),
                "redis_commands_per_room_s": round(rd["commands"] / dur / served, 4),
                "redis_by_command_per_s": {
                    name: round(c["calls"] / dur, 2) for name, c in rd["by_command"].items()
                },
                "redis_cpu_s": rd["cpu_s"],
                "redis": rd,
            }
        )
        run.slo("redis_per_room_s", a.slo_redis_per_room_s, res["redis_commands_per_room_s"])
    run.check("no disconnects", run.stats.disconnects == 0, f"{run.stats.disconnects}")
    run.slo("cpu_pct", a.slo_cpu_pct, res["nodes_cpu_pct"])


def nodes_cpu(run: Run) -> tuple[float, float]:
    """User and system CPU seconds of every node so far."""
    return stats.summed([node.cpu() for node in run.deployment.nodes])


def disk(run: Run) -> int:
    """Bytes every node has sent to the storage layer so far."""
    return sum(procstat.storage_written(node.pids()) for node in run.deployment.nodes)


def rows(res: dict[str, Any]) -> Rows:
    out: Rows = [
        (
            "served",
            f"{res['rooms']} rooms on {res['nodes']} node{'s' * (res['nodes'] > 1)} "
            f"({res['store']}), "
            f"{res['viewers_connected']} viewers, {res['disconnects']} disconnects",
        ),
    ]
    if "redis" in res:
        top = sorted(res["redis_by_command_per_s"].items(), key=lambda kv: -kv[1])[:8]
        out += [
            (
                "redis",
                f"{res['redis_commands_per_s']} commands/s, "
                f"{res['redis_commands_per_room_s']} per room and node, "
                f"{res['redis_cpu_s']} s of CPU in {res['window_s']} s",
            ),
            ("by command", ", ".join(f"{name} {n}/s" for name, n in top) or "none"),
        ]
    return [
        *out,
        ("nodes", f"{res['nodes_cpu_pct']}% of a core (all nodes)"),
        ("disk", f"{res['disk_written_per_s']:,} bytes/s written by the nodes"),
        ("cores", stats.cores_text(res["cores"])),
    ]
