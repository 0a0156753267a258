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
import ctypes
import json
import os
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import redis
import redis.asyncio as redis_async

from loadtest import procstat
from loadtest.fanout import (
    CLOSE_NAMES,
    PROJECT_ROOT,
    RESULTS_DIR,
    TEXT_PREFIX,
    ClientStats,
    Probe,
    Publisher,
    Server,
    Worker,
    connect_client,
    danmaku_frame,
    free_port,
    http,
    pct,
    prepare_room,
    rnd,
    server_log_problems,
    stop_server,
)
from loadtest.fanout import (
    server_source as fanout_server_source,
)

NODE_METRICS = (
    "hudong_frames_out_total",
    "hudong_messages_delivered_total",
    "hudong_events_out_total",
    "hudong_drops_total",
    "hudong_disconnects_total",
    "hudong_commands_total",
    "hudong_relay_messages_total",
    "hudong_store_errors_total",
)
PR_SET_PDEATHSIG = 1


# --- processes ----------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when this process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _pinned(cmd: list[str], cpus: str | None) -> list[str]:
    if cpus is None:
        return cmd
    if not shutil.which("taskset"):
        raise SystemExit("CPU pinning needs taskset (util-linux)")
    return ["taskset", "-c", cpus, *cmd]


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    log_path: str
    client: redis.Redis = field(init=False)

    def __post_init__(self) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.client.info("all")
        return info

    def stop(self) -> int | None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def spawn_redis(args: argparse.Namespace) -> RedisServer:
    exe = shutil.which(args.redis_server)
    if not exe:
        raise SystemExit(f"{args.redis_server!r} not found (install redis-server)")
    port = free_port()
    fd, log_path = tempfile.mkstemp(prefix="hudong-crossnode-", suffix=".redis.log")
    cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        _pinned(cmd, args.redis_cpus),
        stdout=fd,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        start_new_session=True,  # stopped in order by this tool, not by a terminal's ^C
    )
    os.close(fd)
    server = RedisServer(port, proc, log_path)
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"redis-server exited with {proc.returncode}; log: {log_path}")
        with contextlib.suppress(redis.RedisError, OSError):
            if server.client.ping():
                return server
        time.sleep(0.1)
    server.stop()
    raise SystemExit(f"redis-server did not answer within {args.start_timeout:g} s")


def spawn_node(
    args: argparse.Namespace, index: int, redis_url: str, admin: str, secret: str, prefix: str
) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if index == 0 and args.profile_sender:  # cProfile writes the file when the node exits
        cmd[1:1] = ["-m", "cProfile", "-o", str(Path(args.profile_sender).resolve())]
    cmd += ["--redis", redis_url]
    cpus = args.node_cpus[index % len(args.node_cpus)] if args.node_cpus else None
    env = {
        **os.environ,
        "HUDONG_ADMIN_TOKEN": admin,
        "HUDONG_SECRET": secret,
        "HUDONG_NODE_ID": f"lt{index}",
        "HUDONG_REDIS_PREFIX": prefix,
    }
    src = Path(args.server_src).resolve() if args.server_src else PROJECT_ROOT
    if args.server_src:  # `python -m server` imports from its working directory first
        env["PYTHONPATH"] = str(src)
    for item in args.server_env:
        key, _, value = item.partition("=")
        env[key] = value
    fd, log_path = tempfile.mkstemp(prefix=f"hudong-crossnode-lt{index}-", suffix=".server.log")
    proc = subprocess.Popen(
        _pinned(cmd, cpus),
        env=env,
        stdout=fd,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=src,
        preexec_fn=_die_with_parent,
        start_new_session=True,  # stopped in order by this tool, not by a terminal's ^C
    )
    os.close(fd)
    return Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, admin, proc.pid, proc, log_path)


def wait_ready(nodes: list[Server], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(nodes)
    while waiting and time.monotonic() < deadline:
        for node in list(waiting):
            assert node.proc is not None
            if node.proc.poll() is not None:
                raise SystemExit(
                    f"node on port {node.port} exited with {node.proc.returncode}; "
                    f"log: {node.log_path}"
                )
            try:
                status, _ = http("GET", f"{node.base}/readyz")
            except OSError:
                status = 0
            if status == 200:
                waiting.remove(node)
        time.sleep(0.1)
    if waiting:
        raise SystemExit(
            f"nodes not ready within {timeout:g} s: "
            + ", ".join(f"{n.port} (log {n.log_path})" for n in waiting)
        )


def scrape_node(base: str) -> dict[str, float]:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(NODE_METRICS):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round(v - a.get(k, 0.0), 3) for k, v in sorted(b.items()) if v - a.get(k, 0.0)}


def redis_delta(i0: dict[str, Any], i1: dict[str, Any]) -> dict[str, Any]:
    """Commands between two ``INFO all`` replies, by command, without this tool's INFO."""
    cmds: dict[str, dict[str, int]] = {}
    for key, value in i1.items():
        if not key.startswith("cmdstat_") or not isinstance(value, dict):
            continue
        before = i0.get(key, {})
        calls = int(value.get("calls", 0)) - int(before.get("calls", 0))
        if calls:
            usec = int(value.get("usec", 0)) - int(before.get("usec", 0))
            failed = int(value.get("failed_calls", 0)) - int(before.get("failed_calls", 0))
            cmds[key.removeprefix("cmdstat_")] = {"calls": calls, "usec": usec, "failed": failed}
    own = cmds.pop("info", {"calls": 0})["calls"]

    def d(name: str) -> int:
        return int(i1.get(name, 0)) - int(i0.get(name, 0))

    return {
        "commands": sum(c["calls"] for c in cmds.values()),
        "total_commands_processed": d("total_commands_processed") - own,
        "own_info_calls": own,
        "by_command": dict(sorted(cmds.items(), key=lambda kv: -kv[1]["calls"])),
        "net_input_bytes": d("total_net_input_bytes"),
        "net_output_bytes": d("total_net_output_bytes"),
        "connections_received": d("total_connections_received"),
        "error_replies": d("total_error_replies"),
        "cpu_s": round(
            float(i1.get("used_cpu_user", 0))
            + float(i1.get("used_cpu_sys", 0))
            - float(i0.get("used_cpu_user", 0))
            - float(i0.get("used_cpu_sys", 0)),
            3,
        ),
    }


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
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):
            await self.client.aclose()


# --- viewers per node ---------------------------------------------------------------------


def plan_viewers(viewers: int, nodes: int, sender_viewers: int | None) -> list[int]:
    if sender_viewers is None:
        return [viewers * (i + 1) // nodes - viewers * i // nodes for i in range(nodes)]
    rest, others = viewers - sender_viewers, nodes - 1
    return [sender_viewers] + [rest * (j + 1) // others - rest * j // others for j in range(others)]


@dataclass
class Group:
    """The viewers of one node."""

    index: int
    server: Server
    planned: int
    workers: list[Worker] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    stats: ClientStats = field(default_factory=ClientStats)
    connect: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"lt{self.index}"


def lat_stats(lats: list[float]) -> dict[str, Any]:
    lats = sorted(lats)
    return {
        "p50": rnd(pct(lats, 0.5)),
        "p90": rnd(pct(lats, 0.9)),
        "p99": rnd(pct(lats, 0.99)),
        "max": rnd(lats[-1] if lats else None),
        "samples": len(lats),
    }


class CrossRun:
    def __init__(self, args: argparse.Namespace, nodes: list[Server], rds: RedisServer) -> None:
        self.args = args
        self.nodes = nodes
        self.redis = rds
        self.room = args.room or f"crossnode-{secrets.token_hex(3)}"
        plan = plan_viewers(args.viewers, len(nodes), args.sender_viewers)
        self.groups = [Group(i, n, plan[i]) for i, n in enumerate(nodes)]
        self.pub_stats = ClientStats()
        self.publisher: Publisher | None = None
        self.res: dict[str, Any] = {}
        self.phase = "start"
        self.t0 = time.monotonic()
        self.published = 0
        self.prev: dict[str, Any] | None = None
        self.tap: Tap | None = None

    @property
    def workers(self) -> list[Worker]:
        return [w for g in self.groups for w in g.workers]

    # counters ---------------------------------------------------------------------------

    async def counts(self) -> list[dict[str, int]]:
        """Per node: frames, danmaku, ready, failed, connecting, disconnects."""
        await asyncio.gather(*(w.snap() for w in self.workers))
        out = []
        for g in self.groups:
            snaps = [w.last for w in g.workers]
            out.append(
                {
                    "frames": sum(s["frames"] for s in snaps) + sum(p.frames for p in g.probes),
                    "messages": sum(s["messages"] for s in snaps)
                    + sum(p.messages for p in g.probes),
                    "ready": sum(s["ready"] for s in snaps) + len(g.probes),
                    "failed": sum(s["failed"] for s in snaps),
                    "connecting": sum(s["connecting"] for s in snaps),
                    "disconnects": sum(s["disconnects"] for s in snaps) + g.stats.disconnects,
                }
            )
        return out

    @staticmethod
    def total(counts: list[dict[str, int]], key: str, skip_sender: bool = False) -> int:
        return sum(c[key] for i, c in enumerate(counts) if not (skip_sender and i == 0))

    def node_cpu(self) -> list[tuple[float, float]]:
        return [procstat.cpu_user_sys(n.pids()) for n in self.nodes]

    def redis_cpu(self) -> tuple[float, float]:
        return procstat.cpu_user_sys([self.redis.proc.pid])

    def gen_cpu(self) -> tuple[float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        workers = sum(procstat.cpu_user_sys([w.proc.pid for w in self.workers]))
        return own.ru_utime + own.ru_stime, workers

    async def snapshot(self) -> dict[str, Any]:
        t, t_ns = time.monotonic(), time.time_ns()
        published = self.published
        snap = {
            "t": t,
            "t_ns": t_ns,
            "published": published,
            "cpu": self.node_cpu(),
            "redis_cpu": self.redis_cpu(),
            "cores": procstat.core_times(),
            "gen": self.gen_cpu(),
        }
        snap["counts"] = await self.counts()
        snap["info"] = await asyncio.to_thread(self.redis.info)
        return snap

    async def progress(self) -> None:
        """One line per second on stderr, until cancelled."""
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                s = await self.snapshot()
                c = s["counts"]
                ready = " ".join(f"{g.name} {c[g.index]['ready']}" for g in self.groups)
                line = (
                    f"[{s['t'] - self.t0:6.1f}s] {self.phase:<8} viewers {ready}"
                    f" (+{self.total(c, 'connecting')} joining, {self.total(c, 'failed')} failed)"
                    f" published {s['published']}"
                )
                p = self.prev
                if p is not None:
                    dt = max(1e-6, s["t"] - p["t"])
                    msgs = " ".join(
                        f"{(c[i]['messages'] - p['counts'][i]['messages']) / dt:,.0f}"
                        for i in range(len(c))
                    )
                    cpus = " ".join(
                        f"{100 * (sum(s['cpu'][i]) - sum(p['cpu'][i])) / dt:.0f}"
                        for i in range(len(c))
                    )
                    rd = redis_delta(p["info"], s["info"])
                    rcpu = 100 * (sum(s["redis_cpu"]) - sum(p["redis_cpu"])) / dt
                    line += (
                        f" | msg/s {msgs}"
                        f" | CPU % nodes {cpus} redis {rcpu:.0f}"
                        f" | redis {rd['commands'] / dt:,.0f} cmd/s"
                    )
                line += f" | disconnects {self.total(c, 'disconnects')}"
                self.prev = s
                print(line, file=sys.stderr, flush=True)

    # phases -----------------------------------------------------------------------------

    async def connect_group(self, g: Group) -> None:
        a = self.args
        n_probes = min(a.probes, g.planned)
        n_drains = g.planned - n_probes
        lifetime = a.deadline + 30
        g.workers = [
            await Worker.start(g.server, self.room, a, lifetime)
            for _ in range(max(1, a.workers_per_node) if n_drains else 0)
        ]
        deadline = time.monotonic() + a.connect_timeout
        errors: list[str] = []
        probe_failed = 0
        slices = max(1, min(10, n_probes))
        started = time.monotonic()
        for i in range(slices):
            lo, hi = n_drains * i // slices, n_drains * (i + 1) // slices
            if hi > lo and g.workers:
                k = len(g.workers)
                for j, w in enumerate(g.workers):
                    share = (hi - lo) * (j + 1) // k - (hi - lo) * j // k
                    if share:
                        await w.command(f"connect {share}")
                while time.monotonic() < deadline:
                    c = (await self.counts())[g.index]
                    if c["connecting"] == 0 and c["ready"] - len(g.probes) + c["failed"] >= hi:
                        break
                    await asyncio.sleep(0.05)
            plo, phi = n_probes * i // slices, n_probes * (i + 1) // slices
            results = await asyncio.gather(
                *(
                    connect_client(
                        Probe,
                        g.server,
                        {"op": "join", "room": self.room},
                        g.stats,
                        a.handshake_timeout,
                    )
                    for _ in range(phi - plo)
                ),
                return_exceptions=True,
            )
            for r in results:
                if isinstance(r, Probe):
                    g.probes.append(r)
                else:
                    probe_failed += 1
                    errors.append(f"probe: {r!r}")
            if time.monotonic() > deadline:
                errors.append("connect deadline reached")
                break
        c = (await self.counts())[g.index]
        for w in g.workers:
            errors.extend(w.last.get("errors", []))
        g.connect = {
            "planned": g.planned,
            "connected": c["ready"],
            "failed": c["failed"] + probe_failed,
            "still_connecting": c["connecting"],
            "probes": len(g.probes),
            "time_s": round(time.monotonic() - started, 2),
            "errors_sample": sorted(set(errors))[:5],
        }

    async def publish(self) -> None:
        """``--rate`` danmaku/s on an absolute schedule: evenly spaced, or Poisson arrivals
        (exponential gaps), so that send times do not keep one phase against the nodes'
        100 ms ticks (at 20/s, even spacing gives only two phases and two latencies)."""
        a = self.args
        loop = asyncio.get_running_loop()
        assert self.publisher is not None
        pub = self.publisher
        rng = random.Random(a.seed)
        t_start = loop.time()
        t_end = t_start + a.warmup + a.duration
        due = t_start
        seq = 0
        while not pub.closed and due < t_end:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            while due <= now and due < t_end:  # a late wake-up catches up at once
                pub.send(danmaku_frame(seq))
                seq += 1
                due += rng.expovariate(a.rate) if a.arrivals == "poisson" else 1.0 / a.rate
            self.published = seq

    async def run(self) -> dict[str, Any]:
        a, res = self.args, self.res
        loop = asyncio.get_running_loop()
        res["room"] = self.room
        sender = self.nodes[0]
        rss_base = [procstat.memory_kb(n.pids())[0] for n in self.nodes]
        host_token = await asyncio.to_thread(prepare_room, sender, self.room)
        if a.tap:
            self.tap = Tap(self.redis.port, f"{a.key_prefix}{{{self.room}}}:ch")
            await self.tap.start()
        progress = loop.create_task(self.progress())
        try:
            self.phase = "connect"
            ic0 = await asyncio.to_thread(self.redis.info)
            for g in self.groups:
                if g.planned:
                    await self.connect_group(g)
            res["connect"] = {g.name: g.connect for g in self.groups if g.planned}
            joins = await asyncio.to_thread(self.redis.info)
            rc = redis_delta(ic0, joins)
            n_joined = sum(g.connect.get("connected", 0) for g in self.groups)
            res["redis_connect_phase"] = {
                "viewers": n_joined,
                "commands": rc["commands"],
                "per_viewer": round(rc["commands"] / n_joined, 3) if n_joined else None,
                "by_command": {k: v["calls"] for k, v in rc["by_command"].items()},
            }
            connected = [g.connect.get("connected", 0) for g in self.groups]
            if not sum(connected[1:]):
                res["fatal"] = "no viewer connected to a node other than the sender's"
                return res
            pub = await connect_client(
                Publisher,
                sender,
                {"op": "join", "room": self.room, "token": host_token},
                self.pub_stats,
                a.handshake_timeout,
            )
            assert isinstance(pub, Publisher)
            self.publisher = pub

            self.phase = "settle"
            i0 = await asyncio.to_thread(self.redis.info)
            t_idle = time.monotonic()
            await asyncio.sleep(a.settle)
            i1 = await asyncio.to_thread(self.redis.info)
            idle_s = time.monotonic() - t_idle
            rss_idle = [procstat.memory_kb(n.pids())[0] for n in self.nodes]
            disc_before = self.total(await self.counts(), "disconnects")

            self.phase = "warmup"
            pub_task = loop.create_task(self.publish())
            await asyncio.sleep(a.warmup)
            m0 = await asyncio.gather(*(asyncio.to_thread(scrape_node, n.base) for n in self.nodes))
            w0 = await self.snapshot()
            self.phase = "measure"
            await asyncio.sleep(max(0.0, w0["t"] + a.duration - time.monotonic()))
            w1 = await self.snapshot()
            m1 = await asyncio.gather(*(asyncio.to_thread(scrape_node, n.base) for n in self.nodes))
            self.phase = "cooldown"
            await pub_task
            published = self.published
            total_connected = sum(connected)
            expected_total = published * total_connected
            t_cd = time.monotonic()
            last, last_change = -1, t_cd
            while time.monotonic() - t_cd < a.cooldown:
                v = self.total(await self.counts(), "messages")
                if v >= expected_total:
                    break
                if v != last:
                    last, last_change = v, time.monotonic()
                elif time.monotonic() - last_change > a.stall:
                    break
                await asyncio.sleep(0.1)
            end = await self.counts()
            rss_end = [procstat.memory_kb(n.pids()) for n in self.nodes]
            info_end = await asyncio.to_thread(self.redis.info)
        finally:
            progress.cancel()
            await asyncio.gather(progress, return_exceptions=True)

        dur = w1["t"] - w0["t"]
        pub_window = w1["published"] - w0["published"]
        per_node = []
        cross_lats: list[float] = []
        for g in self.groups:
            i = g.index
            lats = [
                (got - sent) / 1e6
                for p in g.probes
                for sent, got in zip(p.sent_ns, p.recv_ns, strict=True)
                if w0["t_ns"] <= sent < w1["t_ns"]
            ]
            if i:
                cross_lats += lats
            user = w1["cpu"][i][0] - w0["cpu"][i][0]
            system = w1["cpu"][i][1] - w0["cpu"][i][1]
            msgs = w1["counts"][i]["messages"] - w0["counts"][i]["messages"]
            frames = w1["counts"][i]["frames"] - w0["counts"][i]["frames"]
            expected_probe = pub_window * len(g.probes)
            per_node.append(
                {
                    "node": g.name,
                    "role": "sender" if i == 0 else "remote",
                    "port": g.server.port,
                    "viewers": connected[i],
                    "probes": len(g.probes),
                    "messages_window": msgs,
                    "messages_per_s": round(msgs / dur),
                    "frames_per_s": round(frames / dur),
                    "cpu_pct": round(100 * (user + system) / dur, 1),
                    "user_pct": round(100 * user / dur, 1),
                    "sys_pct": round(100 * system / dur, 1),
                    "us_per_message": rnd(1e6 * (user + system) / msgs if msgs else None, 4),
                    "latency_ms": lat_stats(lats),
                    "probe_received_pct": rnd(
                        100 * len(lats) / expected_probe if expected_probe else None
                    ),
                    "delivered_total": end[i]["messages"],
                    "expected_total": published * connected[i],
                    "disconnects": end[i]["disconnects"],
                    "rss_kb": {
                        "base": rss_base[i],
                        "idle": rss_idle[i],
                        "end": rss_end[i][0],
                        "hwm": rss_end[i][1],
                    },
                    "metrics_window": delta(m0[i], m1[i]),
                }
            )
        delivered = self.total(w1["counts"], "messages") - self.total(w0["counts"], "messages")
        delivered_cross = self.total(w1["counts"], "messages", True) - self.total(
            w0["counts"], "messages", True
        )
        node_user = sum(w1["cpu"][i][0] - w0["cpu"][i][0] for i in range(len(self.nodes)))
        node_sys = sum(w1["cpu"][i][1] - w0["cpu"][i][1] for i in range(len(self.nodes)))
        r_user = w1["redis_cpu"][0] - w0["redis_cpu"][0]
        r_sys = w1["redis_cpu"][1] - w0["redis_cpu"][1]
        rd = redis_delta(w0["info"], w1["info"])
        idle = redis_delta(i0, i1)
        cmds = rd["commands"]

        def per(n: float, d: float, nd: int = 4) -> float | None:
            return round(n / d, nd) if d else None

        for c in rd["by_command"].values():
            c["per_s"] = round(c["calls"] / dur, 1)
            c["per_published"] = per(c["calls"], pub_window)
            c["per_1000_delivered"] = per(1000 * c["calls"], delivered)
            c["usec_per_call"] = per(c["usec"], c["calls"], 2)
        idle_cmds = {k: round(v["calls"] / idle_s, 2) for k, v in idle["by_command"].items()}
        relay_out = sum(
            v
            for k, v in per_node[0]["metrics_window"].items()
            if k.startswith("hudong_relay_messages_total") and 'direction="out"' in k
        )
        relay_in = {
            n["node"]: sum(
                v
                for k, v in n["metrics_window"].items()
                if k.startswith("hudong_relay_messages_total") and 'direction="in"' in k
            )
            for n in per_node[1:]
        }
        all_end = self.total(end, "messages")
        if self.tap is not None:
            tap = self.tap
            hop = [
                (got - sent) / 1e6
                for sent, got in zip(tap.sent_ns, tap.recv_ns, strict=True)
                if w0["t_ns"] <= sent < w1["t_ns"]
            ]
            res["tap"] = {
                "latency_ms": lat_stats(hop),
                "relay_messages_total": tap.messages,
                "danmaku_total": tap.events,
            }
        res.update(
            {
                "window_s": round(dur, 3),
                "published_total": published,
                "published_window": pub_window,
                "publish_errors": self.publisher.errors if self.publisher else {},
                "publisher_disconnected": bool(self.publisher and self.publisher.closed)
                and not self.pub_stats.closing,
                "viewers_connected": total_connected,
                "delivered_window": delivered,
                "delivered_cross_node_window": delivered_cross,
                "messages_per_s": round(delivered / dur),
                "expected_messages_per_s": round(total_connected * a.rate),
                "latency_ms": {
                    "cross_node": lat_stats(cross_lats),
                    "same_node": per_node[0]["latency_ms"],
                },
                "nodes": per_node,
                "nodes_cpu_pct": round(100 * (node_user + node_sys) / dur, 1),
                "nodes_user_pct": round(100 * node_user / dur, 1),
                "nodes_sys_pct": round(100 * node_sys / dur, 1),
                "redis_cpu_pct": round(100 * (r_user + r_sys) / dur, 1),
                "redis_user_pct": round(100 * r_user / dur, 1),
                "redis_sys_pct": round(100 * r_sys / dur, 1),
                "redis": {
                    **rd,
                    "commands_per_s": round(cmds / dur, 1),
                    "ops_per_published_danmaku": per(cmds, pub_window),
                    "ops_per_delivered_danmaku": per(cmds, delivered, 6),
                    "ops_per_cross_node_delivered_danmaku": per(cmds, delivered_cross, 6),
                    "net_in_bytes_per_published": per(rd["net_input_bytes"], pub_window, 1),
                    "net_out_bytes_per_published": per(rd["net_output_bytes"], pub_window, 1),
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
                    "danmaku_per_relay_message": per(pub_window, relay_out, 2),
                    "remote_messages_in_window": relay_in,
                },
                "delivered_total": all_end,
                "expected_total": expected_total,
                "undelivered_pct": rnd(
                    100 * (1 - all_end / expected_total) if expected_total else None, 3
                ),
                "cooldown_s": round(time.monotonic() - t_cd, 2),
                "connect_failed": sum(g.connect.get("failed", 0) for g in self.groups),
                "disconnects": self.total(end, "disconnects"),
                "disconnects_before_publish": disc_before,
                "disconnect_codes": self.close_codes(),
                "gen_cpu_pct": round(100 * (sum(w1["gen"]) - sum(w0["gen"])) / dur, 1),
                "gen_main_cpu_pct": round(100 * (w1["gen"][0] - w0["gen"][0]) / dur, 1),
                "gen_workers_cpu_pct": round(100 * (w1["gen"][1] - w0["gen"][1]) / dur, 1),
                "cores": procstat.core_busy(w0["cores"], w1["cores"]),
            }
        )
        return res

    def close_codes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        sources = [w.last.get("close_codes", {}) for w in self.workers]
        sources += [g.stats.close_codes for g in self.groups]
        for codes in sources:
            for code, n in codes.items():
                name = f"{code} {CLOSE_NAMES[code]}" if code in CLOSE_NAMES else code
                out[name] = out.get(name, 0) + n
        return out

    async def close(self) -> None:
        self.pub_stats.closing = True
        for g in self.groups:
            g.stats.closing = True
            for p in g.probes:
                if p.transport is not None:
                    p.transport.abort()
        if self.publisher is not None and self.publisher.transport is not None:
            self.publisher.transport.abort()
        await asyncio.gather(*(w.close() for w in self.workers), return_exceptions=True)
        if self.tap is not None:
            await self.tap.close()


# --- report -------------------------------------------------------------------------------


def check_slos(args: argparse.Namespace, res: dict[str, Any]) -> dict[str, Any]:
    lat = res.get("latency_ms", {}).get("cross_node", {})
    checks = [
        ("cross_p50_ms", args.slo_p50_ms, lat.get("p50")),
        ("cross_p99_ms", args.slo_p99_ms, lat.get("p99")),
        ("undelivered_pct", args.slo_undelivered_pct, res.get("undelivered_pct")),
        ("disconnects", args.slo_disconnects, res.get("disconnects")),
        (
            "redis_ops_per_published",
            args.slo_redis_ops_per_published,
            res.get("redis", {}).get("ops_per_published_danmaku"),
        ),
    ]
    return {
        name: {"limit": limit, "value": value, "ok": value is not None and value <= limit}
        for name, limit, value in checks
        if limit is not None
    }


def summary(res: dict[str, Any], path: Path) -> str:
    if "fatal" in res:
        return f"FATAL: {res['fatal']}\n  result: {path}"
    cfg, rd, lat = res["config"], res["redis"], res["latency_ms"]

    def fmt_lat(x: dict[str, Any]) -> str:
        return f"p50 {x['p50']}  p90 {x['p90']}  p99 {x['p99']}  max {x['max']}  ({x['samples']})"

    rows = [
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
    for n in res["nodes"][1:]:
        rows.append((f"latency {n['node']}", fmt_lat(n["latency_ms"])))
    if "tap" in res:
        rows.append(("send -> channel", fmt_lat(res["tap"]["latency_ms"])))
    rows += [
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
        ("undelivered", f"{res['undelivered_pct']}% after {res['cooldown_s']} s cooldown"),
        ("disconnects", f"{res['disconnects']} {res['disconnect_codes'] or ''}".strip()),
        (
            "generator",
            f"{res['gen_cpu_pct']}% CPU (main {res['gen_main_cpu_pct']}%, "
            f"drain workers {res['gen_workers_cpu_pct']}%)",
        ),
        (
            "cores",
            ", ".join(
                f"{k} {v['busy_pct']}% ({v['softirq_pct']}% softirq)"
                for k, v in res["cores"].items()
            ),
        ),
    ]
    problems = sum(n.get("log_problems", 0) for n in res.get("node_logs", []))
    if problems:
        rows.append(("server logs", f"{problems} warning/error lines"))
    for name, s in res.get("slo", {}).items():
        rows.append(
            (f"SLO {name}", f"{'ok' if s['ok'] else 'MISSED'}: {s['value']} (limit {s['limit']})")
        )
    rows.append(("result", str(path)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


# --- entry point --------------------------------------------------------------------------


def add_arguments(ap: argparse.ArgumentParser) -> None:
    tgt = ap.add_argument_group("nodes and redis (all started by this tool, on 127.0.0.1)")
    tgt.add_argument("--nodes", type=int, default=3, help="hudong nodes; the publisher is on lt0")
    tgt.add_argument("--redis-server", default="redis-server", help="redis-server executable")
    tgt.add_argument(
        "--server-src",
        metavar="DIR",
        help="run the nodes from this source tree (e.g. a `git archive` snapshot)",
    )
    tgt.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every node, e.g. HUDONG_HUB_TICK_MS=50 (repeatable)",
    )
    tgt.add_argument(
        "--node-cpus",
        type=lambda s: s.split("/"),
        metavar="LIST",
        help="pin node i to the i-th taskset list, round robin, '/'-separated: 0/0/1",
    )
    tgt.add_argument("--redis-cpus", metavar="LIST", help="pin redis-server (taskset list)")
    tgt.add_argument("--gen-cpus", metavar="LIST", help="pin the generator (taskset list)")
    tgt.add_argument(
        "--profile-sender",
        metavar="FILE",
        help="run lt0 under cProfile and write its stats to FILE (slows lt0 down: "
        "for where its time goes, not for its figures)",
    )
    tgt.add_argument("--start-timeout", type=float, default=30)
    load = ap.add_argument_group("load")
    load.add_argument("--viewers", type=int, default=1500, help="viewers on all nodes together")
    load.add_argument(
        "--sender-viewers",
        type=int,
        help="viewers on lt0, the publisher's node (default: an even share); "
        "the rest are spread over the other nodes",
    )
    load.add_argument("--probes", type=int, default=20, help="latency probes per node")
    load.add_argument("--workers-per-node", type=int, default=1, help="drain processes per node")
    load.add_argument("--rate", type=float, default=200, help="danmaku per second")
    load.add_argument(
        "--arrivals",
        choices=("poisson", "even"),
        default="poisson",
        help="danmaku send times: Poisson (exponential gaps) or evenly spaced",
    )
    load.add_argument("--seed", type=int, default=1, help="seed of the Poisson schedule")
    load.add_argument("--duration", type=float, default=15, help="measured window, seconds")
    load.add_argument("--warmup", type=float, default=3, help="publishing before the window")
    load.add_argument(
        "--settle", type=float, default=3, help="idle wait after connecting (Redis idle rate)"
    )
    load.add_argument("--cooldown", type=float, default=5, help="longest wait for stragglers")
    load.add_argument(
        "--stall", type=float, default=1.5, help="end cooldown after no progress this long"
    )
    load.add_argument("--room", help="room id (default: crossnode-<random>)")
    load.add_argument(
        "--tap",
        action="store_true",
        help="also subscribe to the room's channel here: send -> Redis delivery latency "
        "(one more subscriber for Redis)",
    )
    load.add_argument("--drain-interval-ms", type=float, default=100)
    load.add_argument("--connect-concurrency", type=int, default=100, help="per worker")
    load.add_argument(
        "--connect-timeout", type=float, default=60, help="deadline for one node's connects"
    )
    load.add_argument("--handshake-timeout", type=float, default=10)
    load.add_argument("--deadline", type=float, help="hard limit for the run, seconds")
    out = ap.add_argument_group("output and SLOs (exit 1 when one is missed)")
    out.add_argument("--json-out", help="default: loadtest/results/crossnode-<timestamp>.json")
    out.add_argument("--slo-p50-ms", type=float, help="cross-node p50")
    out.add_argument("--slo-p99-ms", type=float, help="cross-node p99")
    out.add_argument("--slo-undelivered-pct", type=float)
    out.add_argument("--slo-disconnects", type=int)
    out.add_argument("--slo-redis-ops-per-published", type=float)


def run_crossnode(args: argparse.Namespace) -> int:
    if args.nodes < 2:
        raise SystemExit("--nodes must be at least 2")
    if args.rate <= 0 or args.duration <= 0 or args.viewers <= 0:
        raise SystemExit("--rate, --duration and --viewers must be positive")
    if args.sender_viewers is not None and not 0 <= args.sender_viewers < args.viewers:
        raise SystemExit("--sender-viewers must be at least 0 and below --viewers")
    if args.deadline is None:
        args.deadline = (
            args.nodes * args.connect_timeout
            + args.settle
            + args.warmup
            + args.duration
            + args.cooldown
            + 60
        )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.viewers + 1024  # nodes and workers inherit it
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            print(f"warning: open files limited to {new}", file=sys.stderr)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    json_out = Path(args.json_out) if args.json_out else RESULTS_DIR / f"crossnode-{stamp}.json"
    res: dict[str, Any] = {
        "scenario": "crossnode",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "machine": procstat.machine(),
        "config": {
            k: getattr(args, k)
            for k in (
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
        },
        "source": fanout_server_source(args),
    }
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the cleanup below runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rds: RedisServer | None = None
    nodes: list[Server] = []
    try:
        rds = spawn_redis(args)
        admin, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(33)
        prefix = args.key_prefix = f"lt-{secrets.token_hex(4)}:"
        for i in range(args.nodes):  # one by one: those started are stopped if one fails
            nodes.append(spawn_node(args, i, rds.url, admin, secret, prefix))
        wait_ready(nodes, args.start_timeout)
        res["redis_server"] = {"port": rds.port, "pid": rds.proc.pid, "log": rds.log_path}
        res["key_prefix"] = prefix
        if args.gen_cpus is not None:  # after spawning: the children must not inherit it
            os.sched_setaffinity(0, {int(c) for c in args.gen_cpus.split(",")})

        async def main() -> None:
            assert rds is not None
            run = CrossRun(args, nodes, rds)
            try:
                res.update(await asyncio.wait_for(run.run(), args.deadline))
            except TimeoutError:
                res["fatal"] = f"deadline of {args.deadline:g} s reached"
            except Exception as exc:  # reported in the result; everything is still stopped
                traceback.print_exc()
                res["fatal"] = f"{type(exc).__name__}: {exc}"
            finally:
                await run.close()

        try:
            import uvloop

            uvloop.run(main())
        except ImportError:
            asyncio.run(main())
    except KeyboardInterrupt:
        res["fatal"] = "interrupted"
    except SystemExit as exc:
        res["fatal"] = str(exc.code)
    finally:
        logs = []
        for i, node in enumerate(nodes):
            rc = stop_server(node)
            n, lines = server_log_problems(node.log_path)
            logs.append(
                {
                    "node": f"lt{i}",
                    "exit_code": rc,
                    "log": node.log_path,
                    "log_problems": n,
                    "log_sample": lines,
                }
            )
        res["node_logs"] = logs
        if rds is not None:
            res.setdefault("redis_server", {})["exit_code"] = rds.stop()
    if "fatal" not in res:
        res["slo"] = check_slos(args, res)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(res, indent=1) + "\n")
    print(summary(res, json_out))
    if "fatal" in res:
        return 2
    return 0 if all(s["ok"] for s in res["slo"].values()) else 1
