"""One harness for every scenario: what is around a scenario's own load.

A scenario module declares what it provides (``NAME``, ``HELP``, ``CONFIG``, ``LOAD``,
``SLOS``, its own ``add_arguments``, its ``body`` and the ``rows`` of its summary; see
``Scenario.of``); ``__main__.MODULES`` lists the modules. Scenario modules import the
harness, never one another. ``run`` does the same for each:

1. checks the arguments; raises the open-files limit to viewers + 1024 (the spawned
   servers and the drain workers inherit it);
2. starts the servers (``servers.deploy``: one node on the embedded default or on a
   Redis, N nodes on a private Redis, or attaches to ``--url``) and pins the generator;
3. runs the body under the hard ``--deadline`` in uvloop, with a ``Run``: the room,
   the phase, the progress line on stderr once a second, the node's degrade level
   polled every 0.5 s, and the viewers to close at the end;
4. stops the servers (also on failure, ^C or SIGTERM), writes the JSON result, prints
   the summary table; exit status 0, 1 (a check failed or an SLO missed), 2 (FATAL).
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import resource
import secrets
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from loadtest import procstat, results
from loadtest.rest import AdminApi, DegradePoller
from loadtest.results import Fatal, Rows
from loadtest.servers import (
    Deployment,
    Server,
    add_cluster_arguments,
    add_server_arguments,
    check_server_arguments,
    deploy,
    pin_generator,
)
from loadtest.stats import cores_text, generator_cpu
from loadtest.viewers import Audience, Client, ClientStats, close_code_names, connect_many

C = TypeVar("C", bound=Client)


@dataclass(frozen=True)
class Scenario:
    """What a scenario module provides to the harness (``Scenario.of``)."""

    name: str
    help: str
    add_arguments: Callable[[argparse._ArgumentGroup], None]  # its own, in "load"
    body: Callable[[Run], Awaitable[None]]
    rows: Callable[[dict[str, Any]], Rows]
    config: tuple[str, ...]  # the arguments that go into the result's ``config``
    load: dict[str, Any]  # the defaults of ``add_load_arguments``
    slos: dict[str, str]  # --slo-* flags and their help
    cluster: bool = False  # N nodes on a private Redis, else one node (or --url)
    start_timeout: float = 20
    check_args: Callable[[argparse.Namespace], None] = lambda args: None
    degrade: bool = True  # poll the node's degrade level during the run
    grace_s: float = 0.0  # the hard deadline is --deadline plus this

    @classmethod
    def of(cls, module: ModuleType) -> Scenario:
        """A scenario module declares ``NAME``, ``HELP``, ``CONFIG``, ``LOAD``, ``SLOS``
        and the functions ``add_arguments``, ``body``, ``rows``; optionally
        ``check_args``, ``CLUSTER``, ``START_TIMEOUT``, ``DEGRADE`` and ``GRACE_S``."""
        return cls(
            module.NAME,
            module.HELP,
            module.add_arguments,
            module.body,
            module.rows,
            module.CONFIG,
            module.LOAD,
            module.SLOS,
            getattr(module, "CLUSTER", False),
            getattr(module, "START_TIMEOUT", 20),
            getattr(module, "check_args", lambda args: None),
            getattr(module, "DEGRADE", True),
            getattr(module, "GRACE_S", 0.0),
        )

    def arguments(self, ap: argparse.ArgumentParser) -> None:
        """Its command line: the servers, the load, its own options, the output."""
        servers = add_cluster_arguments if self.cluster else add_server_arguments
        servers(ap, self.start_timeout)
        self.add_arguments(add_load_arguments(ap, **self.load))
        add_output_arguments(ap, self.name, self.slos)


class Run:
    """One run of a scenario: what its body works with."""

    def __init__(
        self, args: argparse.Namespace, dep: Deployment, scenario: Scenario, res: dict[str, Any]
    ) -> None:
        self.args = args
        self.deployment = dep
        self.server: Server = dep.server
        self.api: AdminApi = dep.server.api
        self.res = res  # the result: the body adds its figures, checks and SLOs
        self.room: str = args.room or f"{scenario.name}-{secrets.token_hex(3)}"
        self.t0 = time.monotonic()
        self.phase = "start"
        # the body's part of the progress line: a function, or a coroutine function
        self.status: Callable[[], str | Awaitable[str]] = lambda: ""
        self.poller = DegradePoller(self.api, self.t0) if scenario.degrade else None
        self.stats = ClientStats()  # the clients of ``connect``
        self.clients: list[Client] = []
        self.audiences: list[Audience] = []
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._prev_cpu: tuple[float, float] | None = None

    # --- what a body uses ---------------------------------------------------------------

    def audience(self, server: Server | None = None) -> Audience:
        """The viewers of the room on ``server`` (default: node 0), closed at the end."""
        aud = Audience(server or self.server, self.room, self.args)
        self.audiences.append(aud)
        return aud

    async def connect(
        self,
        cls: type[C],
        n: int,
        join: dict[str, Any] | None = None,
        *,
        concurrency: int = 100,
        rcvbuf: int | None = None,
        server: Server | None = None,
    ) -> tuple[list[C], list[str]]:
        """``n`` asyncio clients in the room (anonymous unless ``join`` says otherwise),
        closed at the end; the clients joined and the errors."""
        ok, errors = await connect_many(
            cls,
            server or self.server,
            n,
            join or {"op": "join", "room": self.room},
            self.stats,
            self.args.handshake_timeout,
            concurrency,
            rcvbuf,
        )
        self.clients.extend(ok)
        return ok, errors

    def cpu(self) -> float:
        """CPU seconds of node 0 and its children so far (0 when its pid is unknown)."""
        return sum(self.server.cpu())

    def mark(self) -> dict[str, Any]:
        """The times and CPU counters a measured window starts or ends with."""
        pids = [pid for a in self.audiences for pid in a.pids()]
        return {
            "t": time.monotonic(),
            "t_ns": time.time_ns(),
            "cores": procstat.core_times(),
            "gen": generator_cpu(pids),
        }

    def close_codes(self) -> dict[str, int]:
        return close_code_names(c for a in self.audiences for c in a.close_codes())

    def cpu_since(self, cpu0: float, t0: float) -> dict[str, float]:
        """Node 0's CPU from ``cpu0`` (a ``cpu()`` reading) at ``t0`` (monotonic) to now."""
        dt = max(1e-6, time.monotonic() - t0)
        used = self.cpu() - cpu0
        return {
            "seconds": round(dt, 2),
            "cpu_s": round(used, 2),
            "cpu_pct": round(100 * used / dt, 1),
        }

    def check(self, name: str, ok: bool, detail: str) -> None:
        results.check(self.res, name, ok, detail)

    def slo(self, name: str, limit: float | None, value: Any) -> None:
        results.slo(self.res, name, limit, value)

    def degrade(self, since: float = 0.0) -> dict[str, Any]:
        assert self.poller is not None
        return self.poller.summary(since)

    # --- around the body ------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.poller is not None:
            self.tasks.append(loop.create_task(self.poller.run()))
        if not self.args.quiet:
            self.tasks.append(loop.create_task(self._progress()))

    async def _progress(self) -> None:
        """One line per second on stderr: time, phase, the body's status, node 0's CPU
        over the last second, its degrade level."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            line = f"[{now - self.t0:6.1f}s] {self.phase:<9}"
            try:
                status = self.status()
                line += " " + (await status if not isinstance(status, str) else status)
            except Exception as exc:  # a progress line never stops a run
                line += f" ({type(exc).__name__})"
            if self.server.pid and len(self.deployment.nodes) == 1:
                cpu = self.cpu()
                if self._prev_cpu is not None:
                    t, c = self._prev_cpu
                    line += f" | server CPU {100 * (cpu - c) / max(1e-6, now - t):.0f}%"
                self._prev_cpu = (now, cpu)
            if self.poller is not None:
                line += f" | level {self.poller.level}"
            print(line, file=sys.stderr, flush=True)

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.stats.closing = True
        for c in self.clients:
            c.abort()
        for closer in [*(a.close for a in self.audiences), *self.closers]:
            try:
                await closer()
            except Exception:  # closing the rest matters more
                traceback.print_exc()
        if self.poller is not None:
            self.res["degrade_samples"] = self.poller.samples


def delivery_rows(res: dict[str, Any]) -> Rows:
    """The summary's rows on what never arrived, who was disconnected, and the load of
    the generator and of every core (where another process on the machine shows)."""
    return [
        ("undelivered", f"{res['undelivered_pct']}% after {res['cooldown_s']} s cooldown"),
        ("disconnects", f"{res['disconnects']} {res['disconnect_codes'] or ''}".strip()),
        (
            "generator",
            f"{res['gen_cpu_pct']}% CPU (main {res['gen_main_cpu_pct']}%, "
            f"drain workers {res['gen_workers_cpu_pct']}%)",
        ),
        ("cores", cores_text(res["cores"])),
    ]


def levels_row(res: dict[str, Any]) -> tuple[str, str]:
    """The summary's row of the degrade levels a run went through."""
    d = res.get("degrade", {})
    path = " → ".join(str(x) for x in d.get("path", [])) or "?"
    return ("degrade levels", f"{path} (max {d.get('max')})")


def raise_fd_limit(need: int) -> int:
    """Open files up to ``need`` (as far as the hard limit allows); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def worker_stopper(procs: list[Any]) -> Callable[[], Awaitable[None]]:
    """What stops a scenario's client processes: each is given 5 s to end, then killed
    (a closer of :class:`Run`, and the scenario's own last step)."""

    async def stop_workers() -> None:
        for p in procs:
            await asyncio.to_thread(p.join, 5)
            if p.is_alive():
                p.kill()

    return stop_workers


async def collect_workers(
    out: Any, procs: list[Any], count: int, deadline: float = float("inf")
) -> tuple[list[Any], list[str]]:
    """The client processes' reports from the queue ``out``: ``("done", payload)`` or
    ``("error", text)``, until ``count`` came, every process died with nothing left in
    the queue, or ``deadline`` (monotonic) passed. Returns (payloads, errors)."""
    done: list[Any] = []
    errors: list[str] = []
    while len(done) + len(errors) < count and time.monotonic() < deadline:
        try:
            kind, payload = await asyncio.to_thread(out.get, True, 0.5)
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and out.empty():
                break
            continue
        (done if kind == "done" else errors).append(payload)
    return done, errors


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(main)
    else:
        uvloop.run(main)


def run(args: argparse.Namespace, sc: Scenario) -> int:
    """Run scenario ``sc``; the exit status. ``Fatal`` before the servers run goes to
    the caller (``__main__`` prints it and exits 2); after, it is in the result."""
    sc.check_args(args)
    if args.viewers <= 0:
        raise Fatal("--viewers must be positive")
    check_server_arguments(args)
    files = raise_fd_limit(args.viewers + 1024)
    json_out = results.result_path(args, sc.name)
    res = results.new_result(sc.name, args, sc.config)
    # SIGTERM (e.g. from `timeout`) unwinds like ^C, so the servers are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        dep = deploy(args)
    except KeyboardInterrupt:
        raise Fatal("interrupted") from None
    try:
        if files < args.viewers + 1024:
            print(f"warning: open files limited to {files}", file=sys.stderr)
        res.update(dep.describe())
        pin_generator(args.gen_cpus if hasattr(args, "gen_cpus") else args.gen_cpu)
        if not dep.server.pid:
            print(
                "warning: no --server-pid: server CPU and memory are not measured", file=sys.stderr
            )
        run_loop(_main(args, dep, sc, res))
    except KeyboardInterrupt:
        res["fatal"] = "interrupted"
    except Fatal as exc:
        res["fatal"] = str(exc)
    finally:
        dep.stop(res)
    return results.report(res, json_out, sc.rows)


async def _main(
    args: argparse.Namespace, dep: Deployment, sc: Scenario, res: dict[str, Any]
) -> None:
    run = Run(args, dep, sc, res)
    res["room"] = run.room
    limit = args.deadline + sc.grace_s
    try:
        await run.start()
        await asyncio.wait_for(sc.body(run), limit)
    except TimeoutError as exc:
        if time.monotonic() - run.t0 >= limit:
            res["fatal"] = f"deadline of {limit:g} s reached in phase {run.phase}"
        else:
            traceback.print_exc()
            res["fatal"] = f"TimeoutError in phase {run.phase}: {exc}"
    except Fatal as exc:
        res["fatal"] = str(exc)
    except OSError as exc:  # the node went away, or cannot be reached: no traceback
        res["fatal"] = f"{type(exc).__name__} in phase {run.phase}: {exc}"
    except Exception as exc:  # reported in the result; the servers are still stopped
        traceback.print_exc()
        res["fatal"] = f"{type(exc).__name__}: {exc}"
    finally:
        await run.close()


# --- command line ---------------------------------------------------------------------------


def add_load_arguments(
    ap: argparse.ArgumentParser,
    *,
    viewers: int,
    workers: int = 2,
    workers_flag: str = "--workers",
    workers_help: str = "drain worker processes",
    deadline: float | None = None,
    gen_cpu: bool = True,
    drains: bool = True,
) -> argparse._ArgumentGroup:
    """The load's common options; returns the group for the scenario's own."""
    load = ap.add_argument_group("load")
    load.add_argument("--viewers", type=int, default=viewers, help="viewer connections")
    load.add_argument(workers_flag, type=int, default=workers, help=workers_help)
    load.add_argument("--room", help="room id (default: <scenario>-<random>)")
    if gen_cpu:
        load.add_argument("--gen-cpu", type=int, help="pin the generator (and workers) to this CPU")
    load.add_argument(
        "--deadline",
        type=float,
        default=deadline,
        help="hard limit for the whole run, seconds"
        + ("" if deadline else " (default: the sum of its phases + 60)"),
    )
    if drains:
        load.add_argument("--drain-interval-ms", type=float, default=100)
        load.add_argument("--connect-concurrency", type=int, default=100, help="per worker")
        load.add_argument(
            "--connect-timeout", type=float, default=60, help="deadline for one node's connects"
        )
        load.add_argument("--handshake-timeout", type=float, default=10)
    return load


def add_publish_arguments(
    load: argparse._ArgumentGroup,
    *,
    rate: float,
    duration: float,
    warmup: float | None = 3,
    probes: int | None = None,
    settle: float | None = None,
    cooldown: bool = False,
) -> None:
    """A publisher's schedule and, optionally, the window's ends."""
    load.add_argument("--rate", type=float, default=rate, help="danmaku per second")
    load.add_argument("--duration", type=float, default=duration, help="measured window (s)")
    if warmup is not None:
        load.add_argument("--warmup", type=float, default=warmup, help="publishing before it")
    if probes is not None:
        load.add_argument("--probes", type=int, default=probes, help="latency probes")
    if settle is not None:
        load.add_argument("--settle", type=float, default=settle, help="idle wait after joining")
    if cooldown:
        load.add_argument("--cooldown", type=float, default=5, help="longest wait for stragglers")
        load.add_argument(
            "--stall", type=float, default=1.5, help="end cooldown after no progress this long"
        )


def add_output_arguments(ap: argparse.ArgumentParser, scenario: str, slos: dict[str, str]) -> None:
    """``--json-out``, ``--quiet`` and the scenario's ``--slo-*`` flags (flag: help)."""
    out = ap.add_argument_group("output and SLOs (exit 1 when one is missed)")
    out.add_argument("--json-out", help=f"default: loadtest/results/{scenario}-<timestamp>.json")
    out.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    for flag, text in slos.items():
        whole = flag.endswith(("disconnects", "failed", "level"))  # counts, not measures
        out.add_argument(flag, type=int if whole else float, help=text or None)


def check_publishing(args: argparse.Namespace) -> None:
    if args.rate <= 0 or args.duration <= 0:
        raise Fatal("--rate and --duration must be positive")
