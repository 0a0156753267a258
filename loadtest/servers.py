"""The servers under test: hudong nodes this tool starts itself (one on the embedded
default, or N sharing a Redis that it starts too), or one node that is already running.

A spawned node is ``python -m server serve --host 127.0.0.1 --port P`` with a
generated ``HUDONG_ADMIN_TOKEN``, run from this checkout or from ``--server-src DIR``:
that tree is the node's working directory and comes first on its ``PYTHONPATH``
(``python -m`` imports from the working directory first), so a before/after comparison
of two builds uses the same tool. ``server.source`` in the result says which tree and
revision ran and where the node's ``server`` package resolved.

Every child (nodes, redis-server) runs in its own session, so a terminal's ^C reaches
only this tool, which stops them in order (SIGTERM, then SIGKILL); and it gets SIGTERM
when this process dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``). Load is only
ever aimed at this machine: targets must be loopback addresses.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from loadtest import procstat
from loadtest.rest import AdminApi
from loadtest.results import Fatal

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 15


def require_loopback(url: str) -> None:
    """Load is only ever aimed at this machine."""
    if urlsplit(url).hostname not in LOOPBACK:
        raise Fatal("loadtest targets loopback only (127.0.0.1, localhost, ::1)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when this process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    """``cmd`` under ``taskset -c cpus`` (a taskset list), or as it is."""
    if cpus is None:
        return cmd
    if not shutil.which("taskset"):
        raise Fatal("CPU pinning needs taskset (util-linux)")
    return ["taskset", "-c", cpus, *cmd]


def pin_generator(cpus: str | int | None) -> None:
    """This process (and the drain workers it starts later) on ``cpus``; called after
    the servers are spawned, so that they do not inherit it."""
    if cpus is not None:
        os.sched_setaffinity(0, {int(c) for c in str(cpus).split(",")})


def _start(
    cmd: list[str], log_prefix: str, cpus: str | None, **popen: Any
) -> tuple[subprocess.Popen[bytes], str]:
    fd, log_path = tempfile.mkstemp(prefix=log_prefix, suffix=".log")
    try:
        proc = subprocess.Popen(
            pinned(cmd, cpus),
            stdout=fd,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # stopped in order by this tool, not by a terminal's ^C
            **popen,
        )
    finally:
        os.close(fd)
    return proc, log_path


def _stop(proc: subprocess.Popen[bytes] | None) -> int | None:
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def server_tree(args: argparse.Namespace) -> Path:
    """The source tree a spawned server runs from: ``--server-src`` or this checkout."""
    return Path(args.server_src).resolve() if args.server_src else PROJECT_ROOT


def tree_env(src: Path) -> dict[str, str]:
    """This environment with ``src`` first on ``PYTHONPATH``: for ``python -m server``
    run in ``src`` (which imports from its working directory first anyway) and what it
    starts itself."""
    path = [str(src), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in path if p))}


def log_problems(path: str | None, limit: int = 8) -> tuple[int, list[str]]:
    """How many warning/error lines a log has, and the first ``limit`` of them."""
    if not path:
        return 0, []
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return 0, []
    bad = [ln for ln in lines if re.search(r"\b(ERROR|CRITICAL|Traceback|WARNING)\b", ln)]
    return len(bad), bad[:limit]


# --- one node ------------------------------------------------------------------------------


@dataclass
class Server:
    """One hudong node under test."""

    base: str  # http://127.0.0.1:port
    host: str
    port: int
    admin_token: str
    pid: int | None  # None: an attached node whose CPU and memory are not measured
    proc: subprocess.Popen[bytes] | None = None
    log_path: str | None = None
    name: str = "lt0"

    @property
    def api(self) -> AdminApi:
        return AdminApi(self.base, self.admin_token)

    def pids(self) -> list[int]:
        return procstat.process_tree(self.pid) if self.pid else []

    def cpu(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the node and its children."""
        return procstat.cpu_user_sys(self.pids())

    def memory_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the node and its children."""
        return procstat.memory_kb(self.pids())

    def stop(self) -> int | None:
        return _stop(self.proc)


def source_info(src: Path, env: dict[str, str]) -> dict[str, Any]:
    """Which code a spawned node runs: the tree, its git revision, whether the hot path
    (server/, protocol/) has uncommitted changes (others may be editing it), and where
    ``server`` resolves with the node's working directory and environment."""
    info: dict[str, Any] = {"path": str(src)}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["imports"] = subprocess.run(
            [
                sys.executable,
                "-c",
                "import importlib.util as u; print(u.find_spec('server').origin)",
            ],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    rev_file = src / ".hudong-rev"
    if rev_file.exists():
        info["rev"] = rev_file.read_text().strip()
        return info

    def git(*words: str) -> str:
        return subprocess.run(
            ["git", "-C", str(src), *words],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["rev"] = git("rev-parse", "HEAD").strip()
        changed = git("status", "--porcelain", "--", "server", "protocol").splitlines()
        info["uncommitted"] = [line[3:] for line in changed]
    return info


# --- Redis ---------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A private ``redis-server`` on a free loopback port, without persistence."""

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

    def cpu(self) -> tuple[float, float]:
        return procstat.cpu_user_sys([self.proc.pid])

    @classmethod
    def start(cls, exe_name: str, cpus: str | None, timeout: float) -> RedisServer:
        exe = shutil.which(exe_name)
        if not exe:
            raise Fatal(f"{exe_name!r} not found (install redis-server)")
        port = free_port()
        cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        proc, log_path = _start(cmd, "hudong-loadtest-redis-", cpus, cwd=tempfile.gettempdir())
        server = cls(port, proc, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise Fatal(f"redis-server exited with {proc.returncode}; log: {log_path}")
            with contextlib.suppress(redis.RedisError, OSError):
                if server.client.ping():
                    return server
            time.sleep(0.1)
        server.stop()
        raise Fatal(f"redis-server did not answer within {timeout:g} s; log: {log_path}")

    def stop(self) -> int | None:
        with contextlib.suppress(Exception):
            self.client.close()
        return _stop(self.proc)


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


# --- what a run runs against -----------------------------------------------------------------


@dataclass
class Launch:
    """How to start the nodes: how many, from which tree, with what, on which backend."""

    nodes: int = 1
    src: Path = PROJECT_ROOT
    env: list[str] = field(default_factory=list)  # KEY=VALUE, after the tool's own
    redis: str | None = None  # "spawn", a redis:// URL, or None: the embedded default
    memory: bool = False  # without Redis: the memory backend instead of the embedded store
    redis_server: str = "redis-server"
    node_cpus: list[str] | None = None  # taskset lists, node i gets [i % len]
    redis_cpus: str | None = None
    port: int | None = None  # the first node's port (default: a free one)
    profile_first: str | None = None  # run node 0 under cProfile, stats to this file
    start_timeout: float = 20


@dataclass
class Deployment:
    """The nodes (and Redis) of one run; node 0 is the one a single-node scenario
    measures and where crossnode's publisher sends."""

    nodes: list[Server]
    spawned: bool
    redis: RedisServer | None = None
    redis_url: str | None = None
    key_prefix: str | None = None
    source: dict[str, Any] | None = None
    memory: bool = False
    data_dir: str | None = None  # the embedded store's (a temporary one, removed at stop)

    @property
    def server(self) -> Server:
        return self.nodes[0]

    @property
    def backend(self) -> str:
        if not self.spawned:
            return "given"
        if self.redis_url:
            return "redis"
        return "memory" if self.memory else "embedded"

    @classmethod
    def attach(
        cls, url: str, token: str | None, pid: int | None, more: Sequence[str] = ()
    ) -> Deployment:
        """Running nodes: ``url`` (node 0, measured when ``pid`` is given) and ``more``
        nodes of the same cluster (one admin token for all)."""
        token = token or os.environ.get("HUDONG_ADMIN_TOKEN", "")
        if not token:
            raise Fatal("give the admin token with --admin-token or HUDONG_ADMIN_TOKEN")
        nodes = []
        for i, each in enumerate([url, *more]):
            require_loopback(each)
            u = urlsplit(each)
            scheme = "https" if u.scheme in ("https", "wss") else "http"
            port = u.port or (443 if scheme == "https" else 80)
            base = f"{scheme}://{u.netloc}"
            server = Server(
                base, u.hostname or "127.0.0.1", port, token, pid if i == 0 else None, name=f"lt{i}"
            )
            try:
                status, _ = server.api.call("GET", "/readyz")
            except OSError as exc:
                raise Fatal(f"{base}: {exc}") from None
            if status != 200:
                raise Fatal(f"{base}/readyz answered {status}")
            nodes.append(server)
        return cls(nodes, spawned=False)

    @classmethod
    def start(cls, launch: Launch) -> Deployment:
        """Start Redis (if asked) and the nodes, and wait for every ``/readyz``; what
        was started is stopped again if anything fails."""
        dep = cls(
            [],
            spawned=True,
            redis_url=None if launch.redis == "spawn" else launch.redis,
            memory=launch.memory,
        )
        try:
            if launch.redis == "spawn":
                dep.redis = RedisServer.start(
                    launch.redis_server, launch.redis_cpus, launch.start_timeout
                )
                dep.redis_url = dep.redis.url
            # A secret of their own: nodes that share rooms share it, and an embedded
            # node keeps nothing in the user's data directory.
            settings = {
                "HUDONG_ADMIN_TOKEN": secrets.token_urlsafe(24),
                "HUDONG_SECRET": secrets.token_urlsafe(33),
            }
            if dep.redis_url:  # and a prefix of their own
                dep.key_prefix = f"lt-{secrets.token_hex(4)}:"
                settings |= {"HUDONG_REDIS_PREFIX": dep.key_prefix}
            elif launch.memory:
                settings |= {"HUDONG_MEMORY": "true"}
            else:  # the embedded store, in a data directory of this run's own
                dep.data_dir = tempfile.mkdtemp(prefix="hudong-loadtest-data-")
                settings |= {"HUDONG_DATA_DIR": dep.data_dir}
            env = {**tree_env(launch.src), **settings}
            dep.source = source_info(launch.src, env)
            for i in range(launch.nodes):  # one by one: those started are stopped if one fails
                dep.nodes.append(dep._spawn_node(launch, i, env))
            dep._wait_ready(launch.start_timeout)
        except BaseException:
            dep.stop({})
            raise
        return dep

    def _spawn_node(self, launch: Launch, index: int, env: dict[str, str]) -> Server:
        port = (launch.port if index == 0 else None) or free_port()
        cmd = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if index == 0 and launch.profile_first:  # cProfile writes the file when the node exits
            cmd[1:1] = ["-m", "cProfile", "-o", str(Path(launch.profile_first).resolve())]
        if self.redis_url:
            cmd += ["--redis", self.redis_url]
            env = {**env, "HUDONG_NODE_ID": f"lt{index}"}
        for item in launch.env:
            key, _, value = item.partition("=")
            env = {**env, key: value}
        cpus = launch.node_cpus[index % len(launch.node_cpus)] if launch.node_cpus else None
        proc, log_path = _start(cmd, f"hudong-loadtest-lt{index}-", cpus, env=env, cwd=launch.src)
        return Server(
            f"http://127.0.0.1:{port}",
            "127.0.0.1",
            port,
            env["HUDONG_ADMIN_TOKEN"],
            proc.pid,
            proc,
            log_path,
            f"lt{index}",
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.nodes)
        while waiting and time.monotonic() < deadline:
            for node in list(waiting):
                assert node.proc is not None
                if node.proc.poll() is not None:
                    raise Fatal(
                        f"node {node.name} (python -m server serve) exited with "
                        f"{node.proc.returncode}; log: {node.log_path}"
                    )
                if node.api.ready():
                    waiting.remove(node)
            time.sleep(0.1)
        if waiting:
            raise Fatal(
                f"not ready within {timeout:g} s: "
                + ", ".join(f"{n.name} (log {n.log_path})" for n in waiting)
            )

    def describe(self) -> dict[str, Any]:
        """The result's fields on the servers, known once they run."""
        s = self.server
        out: dict[str, Any] = {"server": {"url": s.base, "pid": s.pid, "spawned": self.spawned}}
        if self.spawned:
            out["server"]["source"] = out["source"] = self.source
            out["server"]["backend"] = self.backend
        if len(self.nodes) > 1:
            out["server"]["nodes"] = [n.base for n in self.nodes]
        if self.redis is not None:
            out["redis_server"] = {
                "port": self.redis.port,
                "pid": self.redis.proc.pid,
                "log": self.redis.log_path,
            }
        if self.key_prefix:
            out["key_prefix"] = self.key_prefix
        return out

    def stop(self, res: dict[str, Any]) -> None:
        """Stop what was spawned, and put how it ended into the result ``res``."""
        server = res.setdefault("server", {})
        if not self.spawned:
            server["clean_exit"] = True
            return
        logs: list[dict[str, Any]] = []
        for node in self.nodes:
            rc = node.stop()
            n, lines = log_problems(node.log_path)
            logs.append(
                {
                    "node": node.name,
                    "exit_code": rc,
                    "log": node.log_path,
                    "log_problems": n,
                    "log_sample": lines,
                }
            )
        res["node_logs"] = logs
        if logs:
            server["exit_code"] = logs[0]["exit_code"]
            server["log"] = logs[0]["log"]
            server["clean_exit"] = logs[0]["exit_code"] in (0, None)
        res["server_log_problems"] = sum(n["log_problems"] for n in logs)
        res["server_log_sample"] = [line for n in logs for line in n["log_sample"]][:8]
        if self.redis is not None:
            res.setdefault("redis_server", {})["exit_code"] = self.redis.stop()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# --- command line ---------------------------------------------------------------------------


def _add_source_arguments(group: argparse._ArgumentGroup, start_timeout: float) -> None:
    group.add_argument(
        "--server-src",
        metavar="DIR",
        help="run the server from this source tree (e.g. a `git archive` snapshot) instead "
        "of this checkout: DIR is its working directory and first on its PYTHONPATH",
    )
    group.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server, e.g. HUDONG_HUB_TICK_MS=50 (repeatable)",
    )
    group.add_argument("--redis-server", default="redis-server", help="redis-server executable")
    group.add_argument("--start-timeout", type=float, default=start_timeout)


def add_server_arguments(ap: argparse.ArgumentParser, start_timeout: float = 20) -> None:
    """One node under test: ``--spawn`` (on the embedded default, ``--redis-spawn`` or
    ``--redis URL``) or ``--url`` of a running one."""
    tgt = ap.add_argument_group("server under test")
    tgt.add_argument(
        "--url", help="base URL of a running node (loopback), e.g. http://127.0.0.1:8000"
    )
    tgt.add_argument(
        "--also-url",
        action="append",
        default=[],
        metavar="URL",
        help="with --url: another running node of the same cluster (repeatable); mixed, "
        "votes and chatvotes spread their viewers over every node",
    )
    tgt.add_argument(
        "--server-pid", type=int, help="its PID, for CPU and memory (children included)"
    )
    tgt.add_argument("--admin-token", help="its admin token (default: env HUDONG_ADMIN_TOKEN)")
    tgt.add_argument("--spawn", action="store_true", help="start `hudong serve` on a free port")
    tgt.add_argument("--server-cpu", type=int, help="--spawn: pin the server to this CPU (taskset)")
    tgt.add_argument("--port", type=int, help="--spawn: port (default: a free one)")
    tgt.add_argument(
        "--redis-spawn",
        action="store_true",
        help="--spawn: start a redis-server and put the node on it",
    )
    tgt.add_argument(
        "--redis", metavar="URL", help="--spawn: put the node on this (loopback) Redis"
    )
    tgt.add_argument(
        "--memory",
        action="store_true",
        help="--spawn without Redis: the memory backend (hudong serve --memory) instead of "
        "the durable embedded store (in a temporary data directory)",
    )
    _add_source_arguments(tgt, start_timeout)


def add_cluster_arguments(ap: argparse.ArgumentParser, start_timeout: float = 30) -> None:
    """N nodes on a private redis-server, all started by the tool."""
    tgt = ap.add_argument_group("nodes and redis (all started by this tool, on 127.0.0.1)")
    tgt.add_argument("--nodes", type=int, default=3, help="hudong nodes; the publisher is on lt0")
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
    _add_source_arguments(tgt, start_timeout)


def check_server_arguments(args: argparse.Namespace) -> None:
    """What ``deploy`` would refuse, before anything is started."""
    if args.server_src and not (server_tree(args) / "server").is_dir():
        raise Fatal(f"--server-src {args.server_src}: no server/ package there")
    if hasattr(args, "nodes"):
        return
    if args.spawn == bool(args.url):
        raise Fatal("give either --spawn or --url (with --server-pid to measure CPU)")
    if args.also_url and not args.url:
        raise Fatal("--also-url goes with --url")
    for url in [args.url, *args.also_url] if args.url else []:
        require_loopback(url)
    if args.url:
        if args.redis_spawn or args.redis or args.memory:
            raise Fatal("--redis-spawn, --redis and --memory go with --spawn")
    if args.redis:
        require_loopback(args.redis)


def deploy(args: argparse.Namespace) -> Deployment:
    """The servers that ``add_server_arguments`` or ``add_cluster_arguments`` describe."""
    check_server_arguments(args)
    common: dict[str, Any] = {
        "src": server_tree(args),
        "env": args.server_env,
        "redis_server": args.redis_server,
        "start_timeout": args.start_timeout,
    }
    if hasattr(args, "nodes"):
        return Deployment.start(
            Launch(
                nodes=args.nodes,
                redis=None if getattr(args, "embedded", False) else "spawn",
                node_cpus=args.node_cpus,
                redis_cpus=args.redis_cpus,
                profile_first=args.profile_sender,
                **common,
            )
        )
    if args.url:
        return Deployment.attach(args.url, args.admin_token, args.server_pid, args.also_url)
    redis = "spawn" if args.redis_spawn else args.redis
    cpus = None if args.server_cpu is None else [str(args.server_cpu)]
    if redis and args.memory:
        raise Fatal("--memory is the backend without Redis: leave out --redis/--redis-spawn")
    return Deployment.start(
        Launch(redis=redis, memory=args.memory, node_cpus=cpus, port=args.port, **common)
    )
