"""Real Redis for tests: a `redis-server` (or a 3-master cluster) started on free ports.

Tests that need Redis skip with a loud reason when `redis-server` is missing, but
fail in CI (CI=true), where .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis


def require_redis() -> str:
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not installed: Redis tests cannot run"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"!!! {message} (apt-get install redis-server; they run in CI)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait_for(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
            s.sendall(b"PING\r\n")
            if s.recv(64).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} did not answer PING")


@dataclass
class RedisServer:
    """One redis-server process that a test can stop and start again on the same port."""

    port: int
    directory: str
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                require_redis(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                "--maxmemory-policy",
                "noeviction",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    require_redis()
    with tempfile.TemporaryDirectory(prefix="hudong-redis-") as directory:
        server = RedisServer(_free_port(), directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def redis_cluster(masters: int = 3) -> Iterator[str]:
    """A real Redis Cluster of ``masters`` nodes; yields a redis+cluster:// URL."""
    require_redis()
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.fail("redis-cli is missing (it comes with redis-server)")
    with tempfile.TemporaryDirectory(prefix="hudong-cluster-") as directory:
        nodes = []
        try:
            for _ in range(masters):
                port = _free_cluster_port()
                node_dir = os.path.join(directory, str(port))
                os.mkdir(node_dir)
                node = RedisServer(
                    port,
                    node_dir,
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ],
                )
                node.start()
                nodes.append(node)
            subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{n.port}" for n in nodes),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                info = subprocess.run(
                    [cli, "-p", str(nodes[0].port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout
                if "cluster_state:ok" in info:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            yield f"redis+cluster://127.0.0.1:{nodes[0].port}"
        finally:
            for node in nodes:
                node.stop()


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[str]:
    with redis_cluster() as url:
        yield url


@contextlib.asynccontextmanager
async def room_commands(redis_url: str, prefix: str) -> AsyncIterator[Counter[tuple[str, ...]]]:
    """While open, count every command on a room's key under ``prefix`` (``MONITOR``
    shows the commands scripts run too) by (command, room, key name): ``("HSET", "r1",
    "presence")``, ``("HGETALL", "r1", "i:~bridges:rec")``."""
    counts: Counter[tuple[str, ...]] = Counter()
    client = aioredis.Redis.from_url(redis_url)

    async def watch() -> None:
        async with client.monitor() as monitor:
            async for seen in monitor.listen():
                command, _, rest = seen["command"].partition(f" {prefix}{{")
                if rest:
                    room, _, key = rest.partition("}")
                    counts[command, room, key.split(" ", 1)[0].lstrip(":")] += 1

    watching = asyncio.get_running_loop().create_task(watch())
    try:
        await asyncio.sleep(0.2)  # MONITOR is on
        yield counts
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        await client.aclose()
