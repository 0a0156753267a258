"""hudong nodes as real processes sharing one Redis (or Redis Cluster)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import ADMIN, SECRET, TLS, UNIT, free_port


@dataclass
class Node:
    name: str
    port: int
    redis_url: str
    prefix: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: Any = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> None:
        self.log = tempfile.TemporaryFile()
        env = {
            **os.environ,
            "HUDONG_ADMIN_TOKEN": ADMIN,
            "HUDONG_SECRET": SECRET,
            "HUDONG_NODE_ID": self.name,
            "HUDONG_REDIS_PREFIX": self.prefix,
            "HUDONG_LOG_LEVEL": "warning",
            # nodes, Redis and the test's clients share two cores: measure delivery at
            # level 0 here (degrading has tests of its own)
            "HUDONG_HUB_DEGRADE_AUTO": "false",
            **self.env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "serve",
                "--port",
                str(self.port),
                "--redis",
                self.redis_url,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        async with httpx.AsyncClient(verify=TLS) as http:
            for _ in range(int(200 * UNIT)):
                if self.process.poll() is not None:
                    raise AssertionError(f"node {self.name} exited:\n{self.output()}")
                try:
                    if (await http.get(f"{self.base}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"node {self.name} did not become ready:\n{self.output()}")

    def output(self) -> str:
        if self.log is None:
            return ""
        self.log.seek(0)
        return str(self.log.read().decode(errors="replace")[-5000:])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15 * UNIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def ready_status(self) -> int:
        async with httpx.AsyncClient(timeout=2, verify=TLS) as http:
            return (await http.get(f"{self.base}/readyz")).status_code


class Cluster:
    """N hudong nodes on one backend URL, with a unique key prefix per test."""

    def __init__(self, redis_url: str, count: int = 3, **env: str) -> None:
        prefix = f"t{os.getpid()}-{free_port()}:"
        self.nodes = [
            Node(f"n{i}", free_port(), redis_url, prefix, dict(env)) for i in range(count)
        ]

    async def __aenter__(self) -> Cluster:
        started = await asyncio.gather(
            *(node.start() for node in self.nodes), return_exceptions=True
        )
        failed = [result for result in started if isinstance(result, BaseException)]
        if failed:  # the nodes that did start must not outlive the test
            await self.__aexit__()
            raise failed[0]
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Off the loop, all at once: a node stopping tells its clients to go and waits
        # (hub.shutdown_grace_s) for their close frames, which this process's clients
        # send only while its loop runs; stopped one by one from the loop, every node
        # waited out its whole grace period.
        await asyncio.gather(*(asyncio.to_thread(node.stop) for node in self.nodes))

    def http(self, node: int = 0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.nodes[node].base,
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10 * UNIT,
            verify=TLS,
        )

    async def create_room(self, room_id: str) -> None:
        async with self.http() as http:
            r = await http.post("/api/v1/rooms", json={"id": room_id})
            assert r.status_code == 201, r.text

    async def mint(self, room_id: str, role: str, user_id: str) -> str:
        async with self.http() as http:
            r = await http.post(
                f"/api/v1/rooms/{room_id}/tokens", json={"role": role, "user_id": user_id}
            )
            assert r.status_code == 201, r.text
            token: str = r.json()["token"]
            return token
