"""The cross-node scenario: one room served by N hudong nodes that share it through Redis.

What a viewer on another node than the sender waits for, and what Redis does per
danmaku (server/hub/relay.py, server/backends/redis.py). Phases, every one bounded:

1. start a private ``redis-server`` on a free loopback port (no persistence), and
   ``--nodes`` hudong nodes on it (``python -m server serve --redis ...``) with one
   generated admin token and secret, node ids ``lt0``, ``lt1``, … and a unique key
   prefix; wait for every ``/readyz``;
2. create the room on node 0 and mint a host token for the publisher;
3. connect the viewers node by node: ``--viewers`` in all, spread evenly over the
   nodes (or ``--sender-viewers`` on node 0 and the rest over the others); on each
   node ``--probes`` of them are latency probes in this process, the rest drain
   viewers in ``--workers-per-node`` loadtest.drain processes; then the publisher
   joins node 0; wait ``--settle`` seconds, reading Redis' idle command rate;
4. publish ``--rate`` danmaku/s on node 0 for ``--warmup`` + ``--duration`` seconds.
   The measured window is the last ``--duration`` seconds: CPU of every node and of
   redis-server (``/proc``), danmaku delivered per node, probe latency per node
   (receipt − send time, for danmaku sent inside the window), Redis commands from
   ``INFO commandstats`` and ``INFO stats`` (the tool's own ``INFO`` calls taken
   out), and each node's ``/metrics`` counters (relay messages in and out);
5. cooldown until every viewer has every danmaku (or ``--cooldown`` / ``--stall``);
6. close every connection, stop the nodes (SIGTERM, then SIGKILL) and redis-server,
   also on failure; the children also get SIGTERM if this process dies
   (``PR_SET_PDEATHSIG``).

A progress line per second goes to stderr, a summary to stdout, the result to
``--json-out``. Exit status: 0, 1 if an SLO given on the command line was missed, 2 if
the run could not be done.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import redis.asyncio as redis_async

from loadtest import harness, stats
from loadtest.harness import Run
from loadtest.rest import metrics_delta
from loadtest.results import Fatal, Rows
from loadtest.servers import RedisServer, redis_delta
from loadtest.viewers import TEXT_PREFIX, Member, Publisher, wait_delivered

NAME = "crossnode"
HELP = "one room on N nodes sharing Redis: cross-node latency, Redis commands per danmaku"
CONFIG = (
    "nodes",
    "viewers",
    "sender_viewers",
    "probes",
    "workers_per_node",
    "rate",
    "arrivals",
    "seed",
    "duration",
    "warmup",
    "settle",
    "cooldown",
    "node_cpus",
    "redis_cpus",
    "gen_cpus",
    "drain_interval_ms",
    "server_env",
    "tap",
    "profile_sender",
)
DEGRADE = False
CLUSTER = True  # N nodes on a private redis-server (servers.add_cluster_arguments)
START_TIMEOUT = 30
LOAD = {
    "viewers": 1500,
    "workers": 1,
    "workers_flag": "--workers-per-node",
    "workers_help": "drain processes per node",
    "gen_cpu": False,  # --gen-cpus, beside the nodes' and Redis' pinning
}
SLOS = {
    "--slo-p50-ms": "cross-node p50",
    "--slo-p99-ms": "cross-node p99",
    "--slo-undelivered-pct": "",
    "--slo-disconnects": "",
    "--slo-redis-ops-per-published": "",
}

RELAY = "hudong_relay_messages_total"


# --- Redis ----------------------------------------------------------------------------------


class Tap:
    """``--tap``: one more subscriber on the room's Redis channel, in this process. It
    timestamps every relay message as Redis hands it out, so publish -> channel (the
    sender node's part of the hop) is measured apart from the remote node's tick. It
    is a fourth subscriber: Redis' output bytes and CPU grow with it."""

    def __init__(self, port: int, channel: str) -> None:
        self.client = redis_async.Redis(host="127.0.0.1", port=port)
        self.channel = channel
        self.sent_ns = array.array("q")
        self.recv_ns = array.array("q")
        self.messages = 0
        self.events = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(self.channel)
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            msg = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            now = time.time_ns()
            if msg is None or msg.get("type") != "message":
                continue
            self.messages += 1
            body = msgpack.unpackb(msg["data"], raw=False)
            for ev in body.get("e") or ():
                self.events += 1
                text = ev.get("text", "")
                if text.startswith(TEXT_PREFIX):
                    self.sent_ns.append(int(text.split(" ", 2)[1]))
                    self.recv_ns.append(now)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()


# --- viewers per node ---------------------------------------------------------------------


def plan_viewers(viewers: int, nodes: int, sender_viewers: int | None) -> list[int]:
    if sender_viewers is None:
        return [viewers * (i + 1) // nodes - viewers * i // nodes for i in range(nodes)]
    rest, others = viewers - sender_viewers, nodes - 1
    return [sender_viewers] + [rest * (j + 1) // others - rest * j // others for j in range(others)]


class Nodes:
    """Every node's audience, and what the run reads of all of them at once."""

    def __init__(self, run: Run, rds: RedisServer) -> None:
        self.run = run
        self.redis = rds
        a = run.args
        plan = plan_viewers(a.viewers, len(run.deployment.nodes), a.sender_viewers)
        self.audiences = [run.audience(node) for node in run.deployment.nodes]
        self.planned = plan
        self.connected = [0] * len(plan)

    @property
    def names(self) -> list[str]:
        return [aud.server.name for aud in self.audiences]

    async def counts(self) -> list[dict[str, int]]:
        """Per node: frames, danmaku, ready, failed, connecting, disconnects."""
        return list(await asyncio.gather(*(aud.counts() for aud in self.audiences)))

    async def mark(self, pub: Publisher) -> dict[str, Any]:
        snap = {
            **self.run.mark(),
            "published": pub.sent,
            "cpu": [aud.server.cpu() for aud in self.audiences],
            "redis_cpu": self.redis.cpu(),
        }
        snap["counts"] = await self.counts()
        snap["info"] = await asyncio.to_thread(self.redis.info)
        return snap

    def progress(self, pub: Publisher) -> Callable[[], Awaitable[str]]:
        """Per node: viewers ready, danmaku/s, CPU %; Redis' CPU and commands/s."""
        rate = stats.Rate()

        async def status() -> str:
            s = await self.mark(pub)
            c = s["counts"]
            ready = " ".join(f"{n} {x['ready']}" for n, x in zip(self.names, c, strict=True))
            line = (
                f"viewers {ready} (+{total(c, 'connecting')} joining,"
                f" {total(c, 'failed')} failed) published {s['published']}"
            )
            counters = {f"m{i}": x["messages"] for i, x in enumerate(c)}
            counters |= {f"c{i}": sum(x) for i, x in enumerate(s["cpu"])}
            counters["redis_cpu"] = sum(s["redis_cpu"])
            counters["redis_cmds"] = redis_delta({}, s["info"])["commands"]
            r = rate(**counters)
            if r is not None:
                msgs = " ".join(f"{r[f'm{i}']:,.0f}" for i in range(len(c)))
                cpus = " ".join(f"{100 * r[f'c{i}']:.0f}" for i in range(len(c)))
                line += (
                    f" | msg/s {msgs} | CPU % nodes {cpus} redis {100 * r['redis_cpu']:.0f}"
                    f" | redis {r['redis_cmds']:,.0f} cmd/s"
                )
            return line + f" | disconnects {total(c, 'disconnects')}"

        return status


def total(counts: list[dict[str, int]], key: str, skip_sender: bool = False) -> int:
    return sum(c[key] for i, c in enumerate(counts) if not (skip_sender and i == 0))


def relay_messages(window: dict[str, float], direction: str) -> float:
    return sum(
        v for k, v in window.items() if k.startswith(RELAY) and f'direction="{direction}"' in k
    )


async def body(run: Run) -> None:
    a, res, dep = run.args, run.res, run.deployment
    assert dep.redis is not None
    rds = dep.redis
    nodes = Nodes(run, rds)
    sender = dep.server
    rss_base = [n.memory_kb()[0] for n in dep.nodes]
    host_token = await asyncio.to_thread(sender.api.prepare_room, run.room)
    tap = None
    if a.tap:
        tap = Tap(rds.port, f"{dep.key_prefix}{{{run.room}}}:ch")
        await tap.start()
        run.closers.append(tap.close)
    pub = Publisher([])
    run.status = nodes.progress(pub)
    loop = asyncio.get_running_loop()

    run.phase = "connect"
    ic0 = await asyncio.to_thread(rds.info)
    res["connect"] = {}
    for i, aud in enumerate(nodes.audiences):
        if nodes.planned[i]:
            got = await aud.connect(nodes.planned[i], a.probes, a.workers_per_node)
            res["connect"][aud.server.name] = {"planned": nodes.planned[i], **got}
            nodes.connected[i] = got["connected"]
    rc = redis_delta(ic0, await asyncio.to_thread(rds.info))
    n_joined = sum(nodes.connected)
    res["redis_connect_phase"] = {
        "viewers": n_joined,
        "commands": rc["commands"],
        "per_viewer": round(rc["commands"] / n_joined, 3) if n_joined else None,
        "by_command": {k: v["calls"] for k, v in rc["by_command"].items()},
    }
    connected = nodes.connected
    if not sum(connected[1:]):
        raise Fatal("no viewer connected to a node other than the sender's")
    hosts, errors = await run.connect(
        Member, 1, {"op": "join", "room": run.room, "token": host_token}, server=sender
    )
    if not hosts:
        raise Fatal(f"the publisher could not join lt0: {errors[:1]}")
    pub.senders = hosts

    run.phase = "settle"
    i0 = await asyncio.to_thread(rds.info)
    t_idle = time.monotonic()
    await asyncio.sleep(a.settle)
    i1 = await asyncio.to_thread(rds.info)
    idle_s = time.monotonic() - t_idle
    rss_idle = [n.memory_kb()[0] for n in dep.nodes]
    disc_before = total(await nodes.counts(), "disconnects")

    run.phase = "warmup"
    seed = a.seed if a.arrivals == "poisson" else None
    pub_task = loop.create_task(pub.run(a.rate, a.warmup + a.duration, seed))
    await asyncio.sleep(a.warmup)
    m0 = await asyncio.gather(*(asyncio.to_thread(n.api.metrics) for n in dep.nodes))
    w0 = await nodes.mark(pub)
    run.phase = "measure"
    await asyncio.sleep(max(0.0, w0["t"] + a.duration - time.monotonic()))
    w1 = await nodes.mark(pub)
    m1 = await asyncio.gather(*(asyncio.to_thread(n.api.metrics) for n in dep.nodes))
    run.phase = "cooldown"
    published = await pub_task
    total_connected = sum(connected)
    expected_total = published * total_connected

    async def delivered_now() -> int:
        return total(await nodes.counts(), "messages")

    cooldown_s = await wait_delivered(delivered_now, expected_total, a.cooldown, a.stall)
    end = await nodes.counts()
    rss_end = [n.memory_kb() for n in dep.nodes]
    info_end = await asyncio.to_thread(rds.info)

    dur = w1["t"] - w0["t"]
    pub_window = w1["published"] - w0["published"]
    per_node = []
    cross_lats: list[float] = []
    for i, aud in enumerate(nodes.audiences):
        lats = stats.latencies_ms(aud.probes, w0["t_ns"], w1["t_ns"])
        if i:
            cross_lats += lats
        cpu = stats.cpu_window(w0["cpu"][i], w1["cpu"][i], dur)
        msgs = w1["counts"][i]["messages"] - w0["counts"][i]["messages"]
        frames = w1["counts"][i]["frames"] - w0["counts"][i]["frames"]
        expected_probe = pub_window * len(aud.probes)
        per_node.append(
            {
                "node": aud.server.name,
                "role": "sender" if i == 0 else "remote",
                "port": aud.server.port,
                "viewers": connected[i],
                "probes": len(aud.probes),
                "messages_window": msgs,
                "messages_per_s": round(msgs / dur),
                "frames_per_s": round(frames / dur),
                "cpu_pct": cpu["cpu_pct"],
                "user_pct": cpu["user_pct"],
                "sys_pct": cpu["sys_pct"],
                "us_per_message": stats.per(1e6 * cpu["cpu_s"], msgs, 4),
                "latency_ms": stats.quantiles(lats),
                "probe_received_pct": stats.per(100 * len(lats), expected_probe, 2),
                "delivered_total": end[i]["messages"],
                "expected_total": published * connected[i],
                "disconnects": end[i]["disconnects"],
                "rss_kb": {
                    "base": rss_base[i],
                    "idle": rss_idle[i],
                    "end": rss_end[i][0],
                    "hwm": rss_end[i][1],
                },
                "metrics_window": metrics_delta(m0[i], m1[i]),
            }
        )
    delivered = total(w1["counts"], "messages") - total(w0["counts"], "messages")
    delivered_cross = total(w1["counts"], "messages", True) - total(w0["counts"], "messages", True)
    node_cpu = stats.cpu_window(stats.summed(w0["cpu"]), stats.summed(w1["cpu"]), dur)
    redis_cpu = stats.cpu_window(w0["redis_cpu"], w1["redis_cpu"], dur)
    rd = redis_delta(w0["info"], w1["info"])
    idle = redis_delta(i0, i1)
    cmds = rd["commands"]
    for c in rd["by_command"].values():
        c["per_s"] = round(c["calls"] / dur, 1)
        c["per_published"] = stats.per(c["calls"], pub_window)
        c["per_1000_delivered"] = stats.per(1000 * c["calls"], delivered)
        c["usec_per_call"] = stats.per(c["usec"], c["calls"], 2)
    idle_cmds = {k: round(v["calls"] / idle_s, 2) for k, v in idle["by_command"].items()}
    relay_out = relay_messages(per_node[0]["metrics_window"], "out")
    relay_in = {n["node"]: relay_messages(n["metrics_window"], "in") for n in per_node[1:]}
    all_end = total(end, "messages")
    if tap is not None:
        res["tap"] = {
            "latency_ms": stats.quantiles(stats.latencies_ms([tap], w0["t_ns"], w1["t_ns"])),
            "relay_messages_total": tap.messages,
            "danmaku_total": tap.events,
        }
    res.update(
        {
            "window_s": round(dur, 3),
            "published_total": published,
            "published_window": pub_window,
            "publish_errors": pub.errors,
            "publisher_disconnected": hosts[0].closed,
            "viewers_connected": total_connected,
            "delivered_window": delivered,
            "delivered_cross_node_window": delivered_cross,
            "messages_per_s": round(delivered / dur),
            "expected_messages_per_s": round(total_connected * a.rate),
            "latency_ms": {
                "cross_node": stats.quantiles(cross_lats),
                "same_node": per_node[0]["latency_ms"],
            },
            "nodes": per_node,
            "nodes_cpu_pct": node_cpu["cpu_pct"],
            "nodes_user_pct": node_cpu["user_pct"],
            "nodes_sys_pct": node_cpu["sys_pct"],
            "redis_cpu_pct": redis_cpu["cpu_pct"],
            "redis_user_pct": redis_cpu["user_pct"],
            "redis_sys_pct": redis_cpu["sys_pct"],
            "redis": {
                **rd,
                "commands_per_s": round(cmds / dur, 1),
                "ops_per_published_danmaku": stats.per(cmds, pub_window),
                "ops_per_delivered_danmaku": stats.per(cmds, delivered, 6),
                "ops_per_cross_node_delivered_danmaku": stats.per(cmds, delivered_cross, 6),
                "net_in_bytes_per_published": stats.per(rd["net_input_bytes"], pub_window, 1),
                "net_out_bytes_per_published": stats.per(rd["net_output_bytes"], pub_window, 1),
                "idle": {
                    "window_s": round(idle_s, 2),
                    "commands_per_s": round(idle["commands"] / idle_s, 2),
                    "by_command_per_s": idle_cmds,
                },
                "used_memory": info_end.get("used_memory"),
                "connected_clients": info_end.get("connected_clients"),
                "version": info_end.get("redis_version"),
            },
            "relay": {
                "sender_messages_out_window": relay_out,
                "danmaku_per_relay_message": stats.per(pub_window, relay_out, 2),
                "remote_messages_in_window": relay_in,
            },
            "delivered_total": all_end,
            "expected_total": expected_total,
            "undelivered_pct": stats.rnd(
                100 * (1 - all_end / expected_total) if expected_total else None, 3
            ),
            "cooldown_s": cooldown_s,
            "connect_failed": sum(c.get("failed", 0) for c in res["connect"].values()),
            "disconnects": total(end, "disconnects"),
            "disconnects_before_publish": disc_before,
            "disconnect_codes": run.close_codes(),
            **stats.generator_window(w0, w1, dur),
        }
    )
    cross = res["latency_ms"]["cross_node"]
    run.slo("cross_p50_ms", a.slo_p50_ms, cross["p50"])
    run.slo("cross_p99_ms", a.slo_p99_ms, cross["p99"])
    run.slo("undelivered_pct", a.slo_undelivered_pct, res["undelivered_pct"])
    run.slo("disconnects", a.slo_disconnects, res["disconnects"])
    run.slo(
        "redis_ops_per_published",
        a.slo_redis_ops_per_published,
        res["redis"]["ops_per_published_danmaku"],
    )


# --- report -------------------------------------------------------------------------------


def rows(res: dict[str, Any]) -> Rows:
    cfg, rd, lat = res["config"], res["redis"], res["latency_ms"]

    def fmt_lat(x: dict[str, Any]) -> str:
        return f"{stats.latency_text(x)}  ({x['samples']})"

    out = [
        (
            "setup",
            f"{cfg['nodes']} nodes + redis-server {rd['version']} on 127.0.0.1, "
            f"publisher on lt0, room {res['room']}",
        ),
        (
            "viewers",
            ", ".join(f"{n['node']} {n['viewers']} ({n['probes']} probes)" for n in res["nodes"])
            + f"; {res['connect_failed']} failed",
        ),
        (
            "publish",
            f"{cfg['rate']:g} danmaku/s ({cfg['arrivals']}) "
            f"for {cfg['warmup']:g}+{cfg['duration']:g} s: "
            f"{res['published_total']} sent ({res['published_window']} in the "
            f"{res['window_s']} s window), errors {res['publish_errors'] or 'none'}",
        ),
        (
            "delivered",
            f"{res['messages_per_s']:,} msg/s of {res['expected_messages_per_s']:,} offered; "
            + ", ".join(f"{n['node']} {n['messages_per_s']:,}" for n in res["nodes"]),
        ),
        ("latency cross-node", fmt_lat(lat["cross_node"])),
        ("latency same node", fmt_lat(lat["same_node"])),
    ]
    out += [(f"latency {n['node']}", fmt_lat(n["latency_ms"])) for n in res["nodes"][1:]]
    if "tap" in res:
        out.append(("send -> channel", fmt_lat(res["tap"]["latency_ms"])))
    out += [
        (
            "CPU %",
            ", ".join(
                f"{n['node']} {n['cpu_pct']} ({n['user_pct']}/{n['sys_pct']})" for n in res["nodes"]
            )
            + f"; nodes {res['nodes_cpu_pct']}; redis {res['redis_cpu_pct']} "
            f"({res['redis_user_pct']}/{res['redis_sys_pct']})",
        ),
        (
            "redis commands",
            f"{rd['commands']} in window ({rd['commands_per_s']}/s; "
            f"idle {rd['idle']['commands_per_s']}/s)"
            f": {rd['ops_per_published_danmaku']} per published danmaku, "
            f"{rd['ops_per_delivered_danmaku']} per delivered, "
            f"{rd['ops_per_cross_node_delivered_danmaku']} per cross-node delivered",
        ),
        (
            "by command",
            ", ".join(
                f"{k} {v['calls']} ({v['per_published']}/pub)"
                for k, v in list(rd["by_command"].items())[:8]
            ),
        ),
        (
            "redis traffic",
            f"in {rd['net_in_bytes_per_published']} B, out {rd['net_out_bytes_per_published']} B "
            "per published danmaku",
        ),
        (
            "relay",
            f"{res['relay']['sender_messages_out_window']:g} messages out of lt0 "
            f"({res['relay']['danmaku_per_relay_message']} danmaku each), in: "
            + ", ".join(f"{k} {v:g}" for k, v in res["relay"]["remote_messages_in_window"].items()),
        ),
        *harness.delivery_rows(res),
    ]
    return out


# --- entry point --------------------------------------------------------------------------


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument(
        "--sender-viewers",
        type=int,
        help="viewers on lt0, the publisher's node (default: an even share); "
        "the rest are spread over the other nodes",
    )
    harness.add_publish_arguments(load, rate=200, duration=15, probes=20, settle=3, cooldown=True)
    load.add_argument(
        "--arrivals",
        choices=("poisson", "even"),
        default="poisson",
        help="danmaku send times: Poisson (exponential gaps) or evenly spaced",
    )
    load.add_argument("--seed", type=int, default=1, help="seed of the Poisson schedule")
    load.add_argument(
        "--tap",
        action="store_true",
        help="also subscribe to the room's channel here: send -> Redis delivery latency "
        "(one more subscriber for Redis)",
    )


def check_args(args: argparse.Namespace) -> None:
    if args.nodes < 2:
        raise Fatal("--nodes must be at least 2")
    harness.check_publishing(args)
    if args.sender_viewers is not None and not 0 <= args.sender_viewers < args.viewers:
        raise Fatal("--sender-viewers must be at least 0 and below --viewers")
    if args.deadline is None:
        args.deadline = (
            args.nodes * args.connect_timeout
            + args.settle
            + args.warmup
            + args.duration
            + args.cooldown
            + 60
        )
