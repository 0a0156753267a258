"""Degradation scenarios: reconnect storm, slow consumers, a draw with many entrants,
and a mixed overload (danmaku storm plus vote burst), each measured with the node's
degrade level (``GET /api/v1/degrade``, polled every 0.5 s).

    python -m loadtest reconnect --spawn --viewers 5000
    python -m loadtest slow --spawn --viewers 5000 --slow-share 0.1 --rate 200
    python -m loadtest draw --spawn --viewers 5000 --winners 10
    python -m loadtest mixed --spawn --viewers 5000 --rate 500 --vote-rate 200 \\
        --overload-factor 4

Every scenario prints a progress line each second (stderr), a human summary and the
path of its JSON result (stdout; ``--json-out``, default
``loadtest/results/<scenario>-<timestamp>.json``). Exit status: 0, 1 when a check
failed or an SLO given with ``--slo-*`` was missed, 2 when the run could not be done.

The server under test is spawned (``--spawn``, optionally from ``--server-src`` and
pinned with ``--server-cpu``) or attached (``--url`` with ``--admin-token`` and
``--server-pid``), exactly as in ``loadtest fanout``, whose clients, drain workers and
REST helpers these scenarios reuse.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import procstat
from loadtest.fanout import (
    PROJECT_ROOT,
    RESULTS_DIR,
    Client,
    ClientStats,
    Probe,
    Server,
    Worker,
    attach_server,
    danmaku_frame,
    http,
    metrics_delta,
    pct,
    prepare_room,
    rnd,
    scrape_metrics,
    server_log_problems,
    server_source,
    spawn_server,
    stop_server,
)
from loadtest.votes import OPTIONS
from loadtest.wire import BATCH_PREFIX, DANMAKU_MARK, OP_TEXT, client_frame
from protocol.codec import JSON

STATE_PREFIX = JSON.encode({"type": "state"})[:-1]  # b'{"type":"state"'
RETRYABLE = ("store_unavailable", "rate_limited", "internal_error")


# --- shared pieces ------------------------------------------------------------------------


def add_common(ap: argparse.ArgumentParser, viewers: int) -> None:
    tgt = ap.add_argument_group("server under test (as in `loadtest fanout`)")
    tgt.add_argument("--url", help="base URL of a running node (loopback)")
    tgt.add_argument("--server-pid", type=int, help="its PID, for CPU (children included)")
    tgt.add_argument("--admin-token", help="its admin token (default: env HUDONG_ADMIN_TOKEN)")
    tgt.add_argument("--spawn", action="store_true", help="start `hudong serve` on a free port")
    tgt.add_argument("--server-cpu", type=int, help="--spawn: pin the server to this CPU")
    tgt.add_argument("--port", type=int, help="--spawn: port (default: a free one)")
    tgt.add_argument("--server-src", metavar="DIR", help="--spawn: run the server from DIR")
    tgt.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--spawn: extra environment, e.g. HUDONG_LIMITS_ROOM_DANMAKU_PER_S=5000",
    )
    tgt.add_argument("--start-timeout", type=float, default=20)
    load = ap.add_argument_group("load")
    load.add_argument("--viewers", type=int, default=viewers, help="viewer connections")
    load.add_argument("--gen-cpu", type=int, help="pin the generator (and workers) to this CPU")
    load.add_argument("--workers", type=int, default=2, help="drain worker processes")
    load.add_argument("--room", help="room id (default: <scenario>-<random>)")
    load.add_argument("--drain-interval-ms", type=float, default=100)
    load.add_argument("--connect-concurrency", type=int, default=100, help="per worker")
    load.add_argument("--connect-timeout", type=float, default=60)
    load.add_argument("--handshake-timeout", type=float, default=10)
    load.add_argument("--deadline", type=float, default=300, help="hard limit for the run (s)")
    ap.add_argument("--json-out", help="default: loadtest/results/<scenario>-<timestamp>.json")


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def quantiles(values: list[float]) -> dict[str, Any]:
    v = sorted(values)
    return {
        "p50": rnd(pct(v, 0.5)),
        "p90": rnd(pct(v, 0.9)),
        "p99": rnd(pct(v, 0.99)),
        "max": rnd(v[-1] if v else None),
        "samples": len(v),
    }


class Member(Client):
    """A viewer that answers commands (by ``id``), counts batches cheaply, and tracks
    ``state`` versions: for each acknowledged state change it records the time from the
    ``ack`` to the first ``state`` message whose ``version`` includes it."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 1
        self.state_version = -1
        self.waiting: list[tuple[int, int]] = []  # (version, ack time ns)
        self.state_lat_ms: list[float] = []
        self.state_ack_ns: list[int] = []  # the ack time of each state_lat_ms sample
        self.batches = 0
        self.danmaku = 0
        self.errors: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()
        self.stop_reading = False

    def on_message(self, payload: bytes, now_ns: int) -> None:
        if payload.startswith(BATCH_PREFIX):
            self.batches += 1
            self.danmaku += payload.count(DANMAKU_MARK)
            return
        msg = JSON.decode(payload)
        kind = msg.get("type")
        if kind == "state":
            version = int(msg.get("version", -1))
            self.state_version = max(self.state_version, version)
            if self.waiting:
                left = []
                for v, t in self.waiting:
                    if v <= version:
                        self.state_lat_ms.append((now_ns - t) / 1e6)
                        self.state_ack_ns.append(t)
                    else:
                        left.append((v, t))
                self.waiting = left
            return
        fut = self.pending.pop(msg.get("id", -1), None) if "id" in msg else None
        if fut is not None:
            if not fut.done():
                fut.set_result({**msg, "_at": now_ns})
            return
        if kind == "error":
            self.errors[str(msg.get("code"))] += 1
        elif kind == "notice":
            self.notices[str(msg.get("kind"))] += 1
        else:
            self.stats.other_frames += 1

    def ack_seen(self, reply: dict[str, Any]) -> None:
        """Start the ack → state clock for a state-changing command's ack."""
        version = reply.get("version")
        if not isinstance(version, int):
            return
        if self.state_version >= version:
            self.state_lat_ms.append(0.0)  # the state arrived before the ack
            self.state_ack_ns.append(int(reply["_at"]))
        else:
            self.waiting.append((version, int(reply["_at"])))

    async def call(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        mid = self.next_id
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[mid] = fut
        self.send(client_frame(OP_TEXT, JSON.encode({**cmd, "id": mid})))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(mid, None)

    async def command(self, cmd: dict[str, Any], timeout: float, deadline: float) -> dict[str, Any]:
        """Send until answered: retry (same key) on timeout and retryable errors."""
        while True:
            try:
                reply = await self.call(cmd, timeout)
            except TimeoutError:
                if time.monotonic() > deadline or self.closed:
                    return {"type": "error", "code": "timeout"}
                continue
            if reply.get("type") == "error" and reply.get("code") in RETRYABLE:
                if time.monotonic() > deadline:
                    return reply
                await asyncio.sleep(float(reply.get("retry_after_ms", 200)) / 1000)
                continue
            return reply


async def connect_member(
    cls: type[Client],
    server: Server,
    join: dict[str, Any],
    stats: ClientStats,
    timeout: float,
    rcvbuf: int | None = None,
) -> Any:
    """fanout.connect_client, optionally with a small receive buffer (a slow consumer)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (server.host, server.port)), timeout)
        _, client = await asyncio.wait_for(
            loop.create_connection(
                lambda: cls(server.host, server.port, join, stats),
                sock=sock,
            ),
            timeout,
        )
    except BaseException:
        sock.close()
        raise
    await asyncio.wait_for(client.ready, timeout)
    return client


class DegradePoller:
    """``GET /api/v1/degrade`` every ``interval`` s: the levels the node went through."""

    def __init__(self, server: Server, t0: float, interval: float = 0.5) -> None:
        self.server = server
        self.t0 = t0
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.errors = 0

    @property
    def level(self) -> int | None:
        return self.samples[-1]["level"] if self.samples else None

    async def run(self) -> None:
        while True:
            try:
                status, body = await asyncio.to_thread(
                    http, "GET", f"{self.server.base}/api/v1/degrade", self.server.admin_token
                )
            except OSError:
                status, body = 0, None
            if status == 200 and isinstance(body, dict):
                s = body.get("signals", {})
                self.samples.append(
                    {
                        "t": round(time.monotonic() - self.t0, 2),
                        "level": body["level"],
                        "automatic": body.get("automatic"),
                        "loop_lag_s": s.get("loop_lag_s"),
                        "tick_ratio": s.get("tick_ratio"),
                        "buffered_bytes": s.get("buffered_bytes"),
                        "ingest_per_s": s.get("ingest_per_s"),
                    }
                )
            else:
                self.errors += 1
            await asyncio.sleep(self.interval)

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        samples = [s for s in self.samples if s["t"] >= since]
        path: list[int] = []
        for s in samples:
            if not path or path[-1] != s["level"]:
                path.append(s["level"])
        per_level = Counter(s["level"] for s in samples)
        return {
            "path": path,
            "max": max(path, default=None),
            "samples_per_level": {str(k): v for k, v in sorted(per_level.items())},
            "poll_errors": self.errors,
        }

    async def wait_level(self, level: int, timeout: float) -> float | None:
        """Seconds until a sample at ``level`` or below, None if not within ``timeout``."""
        start = time.monotonic()
        n = len(self.samples)
        while time.monotonic() - start < timeout:
            for s in self.samples[n:]:
                if s["level"] <= level:
                    return round(float(s["t"]) - (start - self.t0), 2)
            n = len(self.samples)
            await asyncio.sleep(0.1)
        return None


class Ctx:
    """One run: the server, the room, drain workers, the poller, the progress line."""

    def __init__(self, args: argparse.Namespace, server: Server, scenario: str) -> None:
        self.args = args
        self.server = server
        self.scenario = scenario
        self.room = args.room or f"{scenario}-{secrets.token_hex(3)}"
        self.t0 = time.monotonic()
        self.workers: list[Worker] = []
        self.members: list[Any] = []
        self.stats = ClientStats()
        self.phase = "start"
        self.poller = DegradePoller(server, self.t0)
        self.tasks: list[asyncio.Task[None]] = []
        self.status: Callable[[], str] = lambda: ""
        self._prev_cpu: tuple[float, float] | None = None

    def cpu(self) -> float:
        return sum(procstat.cpu_user_sys(self.server.pids())) if self.server.pid else 0.0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self.poller.run()), loop.create_task(self._progress())]

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now, cpu = time.monotonic(), self.cpu()
            line = f"[{now - self.t0:6.1f}s] {self.phase:<9}"
            with contextlib.suppress(Exception):
                line += " " + self.status()
            if self._prev_cpu is not None:
                t, c = self._prev_cpu
                line += f" | server CPU {100 * (cpu - c) / max(1e-6, now - t):.0f}%"
            self._prev_cpu = (now, cpu)
            line += f" | level {self.poller.level}"
            print(line, file=sys.stderr, flush=True)

    async def drains(self, n: int) -> dict[str, int]:
        """Connect ``n`` cheap viewers in drain workers; returns their counters."""
        a = self.args
        if n <= 0:
            return {"ready": 0, "failed": 0}
        k = max(1, a.workers)
        self.workers = [
            await Worker.start(self.server, self.room, a, a.deadline + 30) for _ in range(k)
        ]
        for j, w in enumerate(self.workers):
            share = n * (j + 1) // k - n * j // k
            if share:
                await w.command(f"connect {share}")
        deadline = time.monotonic() + a.connect_timeout
        while time.monotonic() < deadline:
            c = await self.drain_counts()
            if c["connecting"] == 0 and c["ready"] + c["failed"] >= n:
                break
            await asyncio.sleep(0.1)
        return await self.drain_counts()

    async def drain_counts(self) -> dict[str, int]:
        keys = ("ready", "failed", "connecting", "frames", "messages", "disconnects")
        if not self.workers:
            return dict.fromkeys(keys, 0)
        snaps = await asyncio.gather(*(w.snap() for w in self.workers))
        return {k: sum(int(s.get(k, 0)) for s in snaps) for k in keys}

    async def connect(
        self,
        cls: type[Client],
        n: int,
        join: dict[str, Any] | None = None,
        concurrency: int = 100,
        rcvbuf: int | None = None,
    ) -> tuple[list[Any], list[str]]:
        gate = asyncio.Semaphore(concurrency)
        join = join or {"op": "join", "room": self.room}

        async def one() -> Any:
            async with gate:
                return await connect_member(
                    cls, self.server, join, self.stats, self.args.handshake_timeout, rcvbuf
                )

        out = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        ok = [c for c in out if isinstance(c, Client)]
        errors = [repr(e) for e in out if not isinstance(e, Client)]
        self.members.extend(ok)
        return ok, errors

    async def close(self) -> None:
        self.stats.closing = True
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for m in self.members:
            if m.transport is not None:
                m.transport.abort()
        await asyncio.gather(*(w.close() for w in self.workers), return_exceptions=True)


def slo(out: dict[str, Any], name: str, limit: float | None, value: Any, kind: str = "max") -> None:
    if limit is None:
        return
    ok = value is not None and (value <= limit if kind == "max" else value >= limit)
    out[name] = {"limit": limit, "value": value, "ok": ok}


def run_scenario(
    args: argparse.Namespace,
    scenario: str,
    body: Callable[[Ctx, dict[str, Any]], Awaitable[None]],
    rows: Callable[[dict[str, Any]], list[tuple[str, str]]],
) -> int:
    """Set up the server, run ``body`` under the deadline, write JSON, print a summary."""
    if args.spawn == bool(args.url):
        raise SystemExit("give either --spawn or --url (with --server-pid to measure CPU)")
    if args.url and not (args.admin_token or os.environ.get("HUDONG_ADMIN_TOKEN")):
        raise SystemExit("give the admin token with --admin-token or HUDONG_ADMIN_TOKEN")
    _raise_fd_limit(args.viewers + 1024)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    json_out = Path(args.json_out) if args.json_out else RESULTS_DIR / f"{scenario}-{stamp}.json"
    server = spawn_server(args) if args.spawn else attach_server(args)
    if args.gen_cpu is not None:
        os.sched_setaffinity(0, {args.gen_cpu})
    res: dict[str, Any] = {
        "scenario": scenario,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m loadtest", *sys.argv[1:]]),
        "machine": procstat.machine(),
        "server": {"url": server.base, "pid": server.pid, "spawned": bool(args.spawn)},
        "checks": {},
        "slo": {},
    }
    if args.spawn:
        res["server"]["source"] = server_source(args)

    async def main() -> None:
        ctx = Ctx(args, server, scenario)
        res["room"] = ctx.room
        try:
            await ctx.start()
            await asyncio.wait_for(body(ctx, res), args.deadline)
        except TimeoutError:
            res["fatal"] = f"deadline of {args.deadline:g} s reached in phase {ctx.phase}"
        except SystemExit as exc:
            res["fatal"] = str(exc)
        except Exception as exc:  # reported in the result; the server is still stopped
            traceback.print_exc()
            res["fatal"] = f"{type(exc).__name__}: {exc}"
        finally:
            res["degrade_samples"] = ctx.poller.samples
            await ctx.close()

    try:
        try:
            import uvloop

            uvloop.run(main())
        except ImportError:
            asyncio.run(main())
    finally:
        if args.spawn:
            res["server"]["exit_code"] = stop_server(server)
            res["server"]["log"] = server.log_path
            n, lines = server_log_problems(server.log_path)
            res["server_log_problems"] = n
            res["server_log_sample"] = lines
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(res, indent=1) + "\n")
    if "fatal" in res:
        print(f"FATAL: {res['fatal']}\n  result: {json_out}")
        return 2
    table = rows(res)
    if res.get("server_log_problems"):
        table.append(("server log", f"{res['server_log_problems']} warning/error lines"))
    for name, c in res["checks"].items():
        table.append((f"check {name}", "ok" if c["ok"] else f"FAILED: {c['detail']}"))
    for name, s in res["slo"].items():
        verdict = "ok" if s["ok"] else "MISSED"
        table.append((f"SLO {name}", f"{verdict}: {s['value']} (limit {s['limit']})"))
    table.append(("result", str(json_out)))
    width = max(len(k) for k, _ in table)
    print(f"{scenario}:")
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in table))
    good = all(c["ok"] for c in res["checks"].values()) and all(
        s["ok"] for s in res["slo"].values()
    )
    return 0 if good else 1


def check(res: dict[str, Any], name: str, ok: bool, detail: str) -> None:
    res["checks"][name] = {"ok": ok, "detail": detail}


def window_cpu(ctx: Ctx, cpu0: float, t0: float) -> dict[str, float]:
    dt = max(1e-6, time.monotonic() - t0)
    used = ctx.cpu() - cpu0
    return {"seconds": round(dt, 2), "cpu_s": round(used, 2), "cpu_pct": round(100 * used / dt, 1)}


def levels_row(res: dict[str, Any]) -> tuple[str, str]:
    d = res.get("degrade", {})
    path = " → ".join(str(x) for x in d.get("path", [])) or "?"
    return ("degrade levels", f"{path} (max {d.get('max')})")


# --- reconnect storm ----------------------------------------------------------------------


def add_reconnect(ap: argparse.ArgumentParser) -> None:
    add_common(ap, 5000)
    ap.add_argument("--backoff-base", type=float, default=0.5, help="first backoff cap (s)")
    ap.add_argument("--backoff-max", type=float, default=10.0, help="largest backoff cap (s)")
    ap.add_argument("--concurrency", type=int, default=200, help="initial connects in flight")
    ap.add_argument("--rejoin-timeout", type=float, default=120, help="give up rejoining after")
    ap.add_argument("--slo-rejoin-s", type=float, help="time until every viewer rejoined")
    ap.add_argument("--slo-cpu-s", type=float, help="server CPU seconds for the whole storm")


async def _reconnect(ctx: Ctx, res: dict[str, Any]) -> None:
    a = ctx.args
    await asyncio.to_thread(prepare_room, ctx.server, ctx.room)
    ctx.phase = "connect"
    first: list[Any] = []
    ctx.status = lambda: f"viewers {len(first) or len(ctx.members)}/{a.viewers}"
    t = time.monotonic()
    first, errors = await ctx.connect(Member, a.viewers, concurrency=a.concurrency)
    res["connect"] = {
        "connected": len(first),
        "failed": len(errors),
        "time_s": round(time.monotonic() - t, 2),
        "errors_sample": sorted(set(errors))[:5],
    }
    if not first:
        raise SystemExit("no viewer connected")
    await asyncio.sleep(2)
    rss0, _ = procstat.memory_kb(ctx.server.pids())
    m0 = await asyncio.to_thread(scrape_metrics, ctx.server.base)

    ctx.phase = "storm"
    rejoined: list[float] = []
    attempts: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    given_up = 0
    ctx.status = lambda: f"rejoined {len(rejoined)}/{len(first)} failures {sum(failures.values())}"
    cpu0, t_drop = ctx.cpu(), time.monotonic()
    since = t_drop - ctx.t0
    ctx.stats.closing = True  # the drop is ours: not counted as disconnects
    for m in first:
        if m.transport is not None:
            m.transport.abort()
    ctx.members = []
    fresh = ClientStats()

    async def rejoin() -> None:
        nonlocal given_up
        attempt = 0
        while time.monotonic() - t_drop < a.rejoin_timeout:
            cap = min(a.backoff_max, a.backoff_base * 2**attempt)
            await asyncio.sleep(random.uniform(0, cap))  # full jitter
            attempt += 1
            try:
                m = await connect_member(
                    Member,
                    ctx.server,
                    {"op": "join", "room": ctx.room},
                    fresh,
                    a.handshake_timeout,
                )
            except Exception as exc:
                text = str(exc) or type(exc).__name__
                failures[text[:60]] += 1
                continue
            ctx.members.append(m)
            rejoined.append(time.monotonic() - t_drop)
            attempts[attempt] += 1
            return
        given_up += 1

    await asyncio.gather(*(rejoin() for _ in first))
    storm = window_cpu(ctx, cpu0, t_drop)
    m1 = await asyncio.to_thread(scrape_metrics, ctx.server.base)
    rss1, _ = procstat.memory_kb(ctx.server.pids())
    ctx.phase = "settle"
    back = await ctx.poller.wait_level(0, 60)
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
            "degrade": ctx.poller.summary(since),
            "level0_after_storm_s": back,
            "config": {
                k: getattr(a, k) for k in ("viewers", "backoff_base", "backoff_max", "gen_cpu")
            },
        }
    )
    check(
        res, "all_rejoined", len(rejoined) == len(first), f"{len(rejoined)}/{len(first)} rejoined"
    )
    slo(res["slo"], "rejoin_s", a.slo_rejoin_s, res["time_to_all_s"])
    slo(res["slo"], "cpu_s", a.slo_cpu_s, storm["cpu_s"])


def _reconnect_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
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
        levels_row(res),
        ("back at level 0", f"{res['level0_after_storm_s']} s after the last rejoin"),
    ]


def run_reconnect(args: argparse.Namespace) -> int:
    return run_scenario(args, "reconnect", _reconnect, _reconnect_rows)


# --- slow consumers -------------------------------------------------------------------------


def add_slow(ap: argparse.ArgumentParser) -> None:
    add_common(ap, 5000)
    ap.add_argument("--slow-share", type=float, default=0.1, help="share of viewers that stall")
    ap.add_argument("--probes", type=int, default=50, help="latency probes among the rest")
    ap.add_argument("--rate", type=float, default=200, help="danmaku per second")
    ap.add_argument("--duration", type=float, default=20, help="measured window (s)")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--rcvbuf", type=int, default=4096, help="slow viewers' SO_RCVBUF (bytes)")
    ap.add_argument("--slo-p99-ms", type=float, help="the rest's p99 publish → receipt")
    ap.add_argument("--slo-undelivered-pct", type=float, help="the rest's missing share")


class Stalled(Member):
    """Joins, then never reads again."""

    def _handshake(self, payload: bytes) -> None:
        super()._handshake(payload)
        if self.ready.done() and self.transport is not None:
            self.transport.pause_reading()


async def _publish(
    pub: Member, rate: float, seconds: float, counter: list[int], frame: Callable[[int], bytes]
) -> None:
    loop = asyncio.get_running_loop()
    interval, t_start = 1.0 / rate, loop.time()
    t_end = t_start + seconds
    seq = 0
    while not pub.closed:
        target = t_start + seq * interval
        if target >= t_end:
            break
        if target > loop.time():
            await asyncio.sleep(target - loop.time())
        now = loop.time()
        while t_start + seq * interval <= now and t_start + seq * interval < t_end:
            pub.send(frame(seq))
            seq += 1
        counter[0] = seq


async def _slow(ctx: Ctx, res: dict[str, Any]) -> None:
    a = ctx.args
    host = await asyncio.to_thread(prepare_room, ctx.server, ctx.room)
    n_slow = round(a.viewers * a.slow_share)
    n_probes = min(a.probes, a.viewers - n_slow)
    n_drains = a.viewers - n_slow - n_probes
    ctx.phase = "connect"
    ctx.status = lambda: f"viewers {len(ctx.members)} + drains"
    drains = await ctx.drains(n_drains)
    probes, perr = await ctx.connect(Probe, n_probes)
    slow, serr = await ctx.connect(Stalled, n_slow, rcvbuf=a.rcvbuf)
    pubs, puberr = await ctx.connect(Member, 1, {"op": "join", "room": ctx.room, "token": host})
    if not pubs:
        raise SystemExit(f"publisher: {puberr}")
    res["connect"] = {
        "drains": drains["ready"],
        "probes": len(probes),
        "slow": len(slow),
        "failed": drains["failed"] + len(perr) + len(serr),
    }
    await asyncio.sleep(1)
    published = [0]
    ctx.status = lambda: f"published {published[0]}"
    ctx.phase = "warmup"
    loop = asyncio.get_running_loop()
    pub_task = loop.create_task(
        _publish(pubs[0], a.rate, a.warmup + a.duration, published, danmaku_frame)
    )
    await asyncio.sleep(a.warmup)
    ctx.phase = "measure"
    m0 = await asyncio.to_thread(scrape_metrics, ctx.server.base)
    c0, cpu0, t0, t0_ns = await ctx.drain_counts(), ctx.cpu(), time.monotonic(), time.time_ns()
    since = t0 - ctx.t0
    await pub_task
    c1, cpu = await ctx.drain_counts(), window_cpu(ctx, cpu0, t0)
    t1_ns = time.time_ns()
    ctx.phase = "cooldown"
    await asyncio.sleep(2)
    m1 = await asyncio.to_thread(scrape_metrics, ctx.server.base)
    c2 = await ctx.drain_counts()
    lats = [
        (got - sent) / 1e6
        for p in probes
        for sent, got in zip(p.sent_ns, p.recv_ns, strict=True)
        if t0_ns <= sent < t1_ns
    ]
    rest = drains["ready"] + len(probes)
    expected = published[0] * rest
    got = c2["messages"] + sum(p.messages for p in probes)
    metrics = metrics_delta(m0, m1)
    res.update(
        {
            "published": published[0],
            "window_s": cpu["seconds"],
            "rest_latency_ms": quantiles(lats),
            "rest_delivered_msg_per_s": round((c1["messages"] - c0["messages"]) / cpu["seconds"]),
            "rest_undelivered_pct": rnd(100 * (1 - got / expected) if expected else None, 3),
            "rest_disconnects": c2["disconnects"],
            "slow_closed": sum(1 for s in slow if s.closed),
            "close_codes": dict(ctx.stats.close_codes),
            "server_cpu": cpu,
            "server_drops": {k: v for k, v in metrics.items() if k.startswith("hudong_drops")},
            "server_disconnects": {
                k: v for k, v in metrics.items() if k.startswith("hudong_disconnects")
            },
            "degrade": ctx.poller.summary(since),
            "config": {
                k: getattr(a, k)
                for k in ("viewers", "slow_share", "rate", "duration", "rcvbuf", "gen_cpu")
            },
        }
    )
    slo(res["slo"], "p99_ms", a.slo_p99_ms, res["rest_latency_ms"]["p99"])
    slo(res["slo"], "undelivered_pct", a.slo_undelivered_pct, res["rest_undelivered_pct"])


def _slow_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
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
        levels_row(res),
    ]


def run_slow(args: argparse.Namespace) -> int:
    return run_scenario(args, "slow", _slow, _slow_rows)


# --- draw with many entrants ----------------------------------------------------------------


def add_draw(ap: argparse.ArgumentParser) -> None:
    add_common(ap, 5000)
    ap.add_argument("--winners", type=int, default=10)
    ap.add_argument("--ack-timeout", type=float, default=10)
    ap.add_argument("--slo-p99-ms", type=float, help="p99 enter → ack")
    ap.add_argument("--slo-run-ms", type=float, help="the run action's REST round trip")


async def _draw(ctx: Ctx, res: dict[str, Any]) -> None:
    a, base, token = ctx.args, ctx.server.base, ctx.server.admin_token
    await asyncio.to_thread(prepare_room, ctx.server, ctx.room)
    draw_id = f"draw-{secrets.token_hex(3)}"
    spec = {"id": draw_id, "title": "loadtest draw", "winners": a.winners}
    status, body = await asyncio.to_thread(
        http,
        "POST",
        f"{base}/api/v1/rooms/{ctx.room}/interactions",
        token,
        {"kind": "draw", "spec": spec},
    )
    if status != 201:
        raise SystemExit(f"creating the draw: {status} {body}")
    ctx.phase = "connect"
    ctx.status = lambda: f"viewers {len(ctx.members)}/{a.viewers}"
    viewers, errors = await ctx.connect(Member, a.viewers)
    res["connect"] = {"connected": len(viewers), "failed": len(errors)}
    ctx.phase = "enter"
    acked: list[float] = []
    refused: Counter[str] = Counter()
    ctx.status = lambda: f"entries acked {len(acked)}/{len(viewers)}"
    cpu0, t0 = ctx.cpu(), time.monotonic()
    since = t0 - ctx.t0
    deadline = t0 + a.deadline / 2

    async def enter(m: Member) -> None:
        start = time.monotonic()
        cmd = {"op": "enter", "interaction": draw_id, "key": secrets.token_hex(8)}
        reply = await m.command(cmd, a.ack_timeout, deadline)
        if reply.get("type") == "ack":
            acked.append(1000 * (time.monotonic() - start))
        else:
            refused[str(reply.get("code"))] += 1

    await asyncio.gather(*(enter(m) for m in viewers))
    entering = window_cpu(ctx, cpu0, t0)
    ctx.phase = "run"
    t_run = time.monotonic()
    status, body = await asyncio.to_thread(
        http,
        "POST",
        f"{base}/api/v1/rooms/{ctx.room}/interactions/{draw_id}/actions",
        token,
        {"action": "run"},
    )
    run_ms = 1000 * (time.monotonic() - t_run)
    if status != 200:
        raise SystemExit(f"running the draw: {status} {body}")
    winners = body.get("winners") or body["view"]["state"].get("winners", [])
    status, audit = await asyncio.to_thread(
        http, "GET", f"{base}/api/v1/rooms/{ctx.room}/interactions/{draw_id}/audit", token
    )
    if status != 200:
        raise SystemExit(f"fetching the audit record: {status} {audit}")
    fd, audit_path = tempfile.mkstemp(prefix="hudong-draw-audit-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(audit, f)
    src = a.server_src or str(PROJECT_ROOT)  # made absolute in run_draw
    verify = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "verify-draw", audit_path],
        cwd=src,
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        timeout=60,
    )
    await asyncio.sleep(1)  # winners' notices
    status, view = await asyncio.to_thread(
        http, "GET", f"{base}/api/v1/rooms/{ctx.room}/interactions/{draw_id}", token
    )
    entrants = view.get("entrants") if status == 200 and isinstance(view, dict) else None
    notified = sum(m.notices.get("draw_won", 0) for m in viewers)
    lat = sorted(acked)
    res.update(
        {
            "draw": draw_id,
            "entered": len(acked),
            "refused": dict(refused),
            "enter_ack_ms": quantiles(lat),
            "entries_per_s": round(len(acked) / max(1e-6, lat[-1] / 1000)) if lat else None,
            "server_cpu_entering": entering,
            "run_ms": round(run_ms, 1),
            "winners": len(winners),
            "winners_notified": notified,
            "entrants_in_view": entrants,
            "audit_file": audit_path,
            "verify": {"rc": verify.returncode, "output": (verify.stdout + verify.stderr)[-600:]},
            "degrade": ctx.poller.summary(since),
            "config": {k: getattr(a, k) for k in ("viewers", "winners", "gen_cpu")},
        }
    )
    want = min(a.winners, len(acked))
    check(res, "all_entered", len(acked) == len(viewers), f"{len(acked)}/{len(viewers)} acked")
    check(res, "winners", len(winners) == want, f"{len(winners)} winners, expected {want}")
    check(res, "verify_draw", verify.returncode == 0, f"verify-draw exit {verify.returncode}")
    if isinstance(entrants, int):
        check(res, "entrants", entrants == len(acked), f"view {entrants}, acked {len(acked)}")
    slo(res["slo"], "p99_ms", a.slo_p99_ms, res["enter_ack_ms"]["p99"])
    slo(res["slo"], "run_ms", a.slo_run_ms, res["run_ms"])


def _draw_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    e = res["enter_ack_ms"]
    return [
        ("viewers", f"{res['connect']['connected']} connected, {res['connect']['failed']} failed"),
        (
            "entries",
            f"{res['entered']} acked ({res['entries_per_s']}/s), refused "
            f"{res['refused'] or 'none'}; ack p50 {e['p50']}  p99 {e['p99']}  max {e['max']} ms",
        ),
        ("server CPU", f"{res['server_cpu_entering']['cpu_pct']}% while entering"),
        (
            "run",
            f"{res['run_ms']} ms, {res['winners']} winners, {res['winners_notified']} notified, "
            f"entrants in view {res['entrants_in_view']}",
        ),
        (
            "verify-draw",
            f"exit {res['verify']['rc']}: {res['verify']['output'].strip().splitlines()[-1:]}",
        ),
        levels_row(res),
    ]


def run_draw(args: argparse.Namespace) -> int:
    if args.server_src:
        args.server_src = os.path.abspath(args.server_src)
    return run_scenario(args, "draw", _draw, _draw_rows)


# --- mixed: danmaku storm plus vote burst, overloaded ------------------------------------------


def add_mixed(ap: argparse.ArgumentParser) -> None:
    add_common(ap, 5000)
    ap.add_argument("--rate", type=float, default=500, help="danmaku/s at factor 1")
    ap.add_argument("--vote-rate", type=float, default=200, help="votes/s at factor 1")
    ap.add_argument(
        "--overload-factor", type=float, default=1.0, help="offer this many times both rates"
    )
    ap.add_argument(
        "--senders",
        type=int,
        help="viewer connections that send the danmaku (default: enough for 4/s each)",
    )
    ap.add_argument("--voters", type=int, help="viewer connections that vote (default: 4/s each)")
    ap.add_argument("--probes", type=int, default=50, help="danmaku latency probes")
    ap.add_argument("--duration", type=float, default=20, help="seconds of load")
    ap.add_argument("--ack-timeout", type=float, default=10)
    ap.add_argument("--recover-timeout", type=float, default=90, help="wait for level 0 (s)")
    ap.add_argument("--slo-state-p99-ms", type=float, help="p99 vote ack → its state message")
    ap.add_argument("--slo-recover-s", type=float, help="load end → level 0")
    ap.add_argument("--slo-max-level", type=int, help="highest degrade level allowed")


async def _mixed(ctx: Ctx, res: dict[str, Any]) -> None:
    a, base, token = ctx.args, ctx.server.base, ctx.server.admin_token
    f = a.overload_factor
    rate, vote_rate = a.rate * f, a.vote_rate * f
    n_send = a.senders or max(1, math.ceil(rate / 4))
    n_vote = a.voters or max(1, math.ceil(vote_rate / 4))
    n_probes = a.probes
    n_drains = a.viewers - n_send - n_vote - n_probes
    if n_drains < 0:
        raise SystemExit(f"--viewers {a.viewers} < senders + voters + probes")
    await asyncio.to_thread(prepare_room, ctx.server, ctx.room)
    poll = f"poll-{secrets.token_hex(3)}"
    spec = {
        "id": poll,
        "question": "mixed load",
        "kind": "single",
        "options": [{"id": o, "label": o} for o in OPTIONS],
    }
    room_api = f"{base}/api/v1/rooms/{ctx.room}/interactions"
    status, body = await asyncio.to_thread(
        http, "POST", room_api, token, {"kind": "poll", "spec": spec}
    )
    if status != 201:
        raise SystemExit(f"creating the poll: {status} {body}")
    status, body = await asyncio.to_thread(
        http, "POST", f"{room_api}/{poll}/actions", token, {"action": "open"}
    )
    if status != 200:
        raise SystemExit(f"opening the poll: {status} {body}")

    ctx.phase = "connect"
    ctx.status = lambda: f"viewers {len(ctx.members)} + drains"
    drains = await ctx.drains(n_drains)
    probes, perr = await ctx.connect(Probe, n_probes)
    senders, serr = await ctx.connect(Member, n_send)
    voters, verr = await ctx.connect(Member, n_vote)
    res["connect"] = {
        "drains": drains["ready"],
        "probes": len(probes),
        "senders": len(senders),
        "voters": len(voters),
        "failed": drains["failed"] + len(perr) + len(serr) + len(verr),
    }
    if not senders or not voters:
        raise SystemExit(f"senders or voters could not connect: {serr[:2]} {verr[:2]}")
    await asyncio.sleep(1)

    ctx.phase = "load"
    published = [0]
    last_acked: dict[int, str] = {}  # voter index -> option of its last acked vote
    acked = [0]
    refused: Counter[str] = Counter()
    busy: set[int] = set()
    skipped = [0]
    ack_ms: list[float] = []
    ctx.status = lambda: (
        f"danmaku {published[0]} votes acked {acked[0]} in flight {len(busy)} skipped {skipped[0]}"
    )
    loop = asyncio.get_running_loop()
    m0 = await asyncio.to_thread(scrape_metrics, base)
    cpu0, t0, t0_ns = ctx.cpu(), time.monotonic(), time.time_ns()
    since = t0 - ctx.t0
    deadline = t0 + a.duration + a.ack_timeout * 3

    async def storm() -> None:
        interval, start = 1.0 / rate, loop.time()
        end, seq = start + a.duration, 0
        while True:
            target = start + seq * interval
            if target >= end:
                break
            if target > loop.time():
                await asyncio.sleep(target - loop.time())
            now = loop.time()
            while start + seq * interval <= now and start + seq * interval < end:
                senders[seq % len(senders)].send(danmaku_frame(seq))
                seq += 1
            published[0] = seq

    vote_tasks: set[asyncio.Task[None]] = set()

    async def vote(i: int, m: Member) -> None:
        option = random.choice(OPTIONS)
        cmd = {"op": "vote", "interaction": poll, "key": secrets.token_hex(8), "option": option}
        started = time.monotonic()
        try:
            reply = await m.command(cmd, a.ack_timeout, deadline)
        finally:
            busy.discard(i)
        if reply.get("type") == "ack":
            acked[0] += 1
            last_acked[i] = option
            ack_ms.append(1000 * (time.monotonic() - started))
            m.ack_seen(reply)
        else:
            refused[str(reply.get("code"))] += 1

    async def ballots() -> None:
        interval, start = 1.0 / vote_rate, loop.time()
        end, seq = start + a.duration, 0
        while True:
            target = start + seq * interval
            if target >= end:
                break
            if target > loop.time():
                await asyncio.sleep(target - loop.time())
            now = loop.time()
            while start + seq * interval <= now and start + seq * interval < end:
                i = seq % len(voters)
                seq += 1
                if i in busy:
                    skipped[0] += 1  # its previous vote is not answered yet
                    continue
                busy.add(i)
                task = loop.create_task(vote(i, voters[i]))
                vote_tasks.add(task)
                task.add_done_callback(vote_tasks.discard)

    await asyncio.gather(storm(), ballots())
    load = window_cpu(ctx, cpu0, t0)
    t_end, t1_ns = time.monotonic(), time.time_ns()
    ctx.phase = "drain"
    if vote_tasks:
        await asyncio.wait(set(vote_tasks), timeout=a.ack_timeout * 3 + 5)
    m1 = await asyncio.to_thread(scrape_metrics, base)
    ctx.phase = "recover"
    level_at_end = ctx.poller.level
    back = await ctx.poller.wait_level(0, a.recover_timeout)
    recover = None if back is None else _first_level0_after(ctx.poller.samples, t_end - ctx.t0)
    await asyncio.sleep(1.5)  # last state messages
    status, view = await asyncio.to_thread(http, "GET", f"{room_api}/{poll}", token)
    tallies = {o["id"]: o["count"] for o in view["results"]["options"]} if status == 200 else {}
    voters_seen = view["results"].get("voters") if status == 200 else None
    expected = Counter(last_acked.values())
    exact = tallies == {o: expected.get(o, 0) for o in OPTIONS} and voters_seen == len(last_acked)
    state_lat = [x for m in voters for x in m.state_lat_ms]
    buckets: dict[int, list[float]] = {}
    for m in voters:
        for at, x in zip(m.state_ack_ns, m.state_lat_ms, strict=True):
            buckets.setdefault(int((at - t0_ns) // 5e9), []).append(x)
    by_5s = {
        f"{5 * k}-{5 * k + 5}s": {"p99": rnd(pct(sorted(v), 0.99)), "samples": len(v)}
        for k, v in sorted(buckets.items())
    }
    never = sum(len(m.waiting) for m in voters)
    lats = [
        (got - sent) / 1e6
        for p in probes
        for sent, got in zip(p.sent_ns, p.recv_ns, strict=True)
        if t0_ns <= sent < t1_ns
    ]
    errors: Counter[str] = Counter()
    for m in senders:
        errors.update(m.errors)
    metrics = metrics_delta(m0, m1)
    res.update(
        {
            "offered": {"danmaku_per_s": rate, "votes_per_s": vote_rate, "factor": f},
            "published": published[0],
            "danmaku_refused": dict(errors),
            "danmaku_latency_ms": quantiles(lats),
            "votes": {
                "sent": acked[0] + sum(refused.values()),
                "acked": acked[0],
                "refused": dict(refused),
                "skipped_busy": skipped[0],
                "ack_ms": quantiles(ack_ms),
                "voters_with_ack": len(last_acked),
            },
            "state_update_ms": quantiles(state_lat),
            "state_never_seen": never,
            "state_update_p99_by_5s": by_5s,
            "tallies": tallies,
            "expected_tallies": dict(expected),
            "server_cpu_load": load,
            "server_drops": {k: v for k, v in metrics.items() if k.startswith("hudong_drops")},
            "degrade": ctx.poller.summary(since),
            "level_at_load_end": level_at_end,
            "level0_after_load_s": recover,
            "config": {
                k: getattr(a, k)
                for k in ("viewers", "rate", "vote_rate", "overload_factor", "duration", "gen_cpu")
            }
            | {"senders": n_send, "voters": n_vote, "probes": n_probes},
        }
    )
    check(
        res,
        "votes_exact",
        exact,
        f"tallies {tallies} voters {voters_seen}, expected "
        f"{dict(expected)} voters {len(last_acked)}",
    )
    check(res, "state_seen", never == 0, f"{never} acked votes never seen in a state message")
    slo(res["slo"], "state_p99_ms", a.slo_state_p99_ms, res["state_update_ms"]["p99"])
    slo(res["slo"], "recover_s", a.slo_recover_s, recover)
    slo(res["slo"], "max_level", a.slo_max_level, res["degrade"]["max"])


def _first_level0_after(samples: list[dict[str, Any]], t: float) -> float | None:
    for s in samples:
        if s["t"] >= t and s["level"] == 0:
            return round(float(s["t"]) - t, 2)
    return None


def _mixed_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    o, v, c = res["offered"], res["votes"], res["connect"]
    s, d = res["state_update_ms"], res["danmaku_latency_ms"]
    return [
        (
            "viewers",
            f"{c['drains'] + c['probes']} watching ({c['probes']} probes), {c['senders']} "
            f"senders, {c['voters']} voters, {c['failed']} failed",
        ),
        (
            "offered",
            f"{o['danmaku_per_s']:g} danmaku/s + {o['votes_per_s']:g} votes/s "
            f"(×{o['factor']:g}) for {res['config']['duration']:g} s",
        ),
        (
            "danmaku",
            f"{res['published']} sent, refused {res['danmaku_refused'] or 'none'}; "
            f"latency p50 {d['p50']}  p99 {d['p99']} ms ({d['samples']} samples)",
        ),
        (
            "votes",
            f"{v['acked']} acked of {v['sent']} sent, refused {v['refused'] or 'none'}, "
            f"{v['skipped_busy']} skipped (voter busy); ack p50 {v['ack_ms']['p50']}  "
            f"p99 {v['ack_ms']['p99']} ms",
        ),
        (
            "state updates",
            f"ack → state p50 {s['p50']}  p90 {s['p90']}  p99 {s['p99']}  max {s['max']} ms "
            f"({s['samples']} samples, {res['state_never_seen']} never seen)",
        ),
        (
            "state p99 / 5 s",
            ", ".join(f"{k} {v['p99']}" for k, v in res["state_update_p99_by_5s"].items()),
        ),
        ("tallies", f"{res['tallies']} (expected {res['expected_tallies']})"),
        ("server CPU", f"{res['server_cpu_load']['cpu_pct']}% during the load"),
        ("server drops", str(res["server_drops"] or "none")),
        levels_row(res),
        (
            "back at level 0",
            f"{res['level0_after_load_s']} s after the load ended "
            f"(level at end {res['level_at_load_end']})",
        ),
    ]


def run_mixed(args: argparse.Namespace) -> int:
    return run_scenario(args, "mixed", _mixed, _mixed_rows)
