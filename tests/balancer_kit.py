"""Debian's HAProxy for tests: found (or a loud skip, a failure in CI) and run on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import free_port


def require_haproxy() -> str:
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if path is None:
        message = "haproxy is not installed: the load-balancer test cannot run"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"!!! {message} (apt-get install haproxy; it runs in CI)")
    return path


HAPROXY_CFG = """\
global
    maxconn 4000

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    # WebSockets: once upgraded, a connection is a tunnel
    timeout tunnel 1h
    timeout client-fin 1s
    timeout server-fin 1s
    # A busy machine (the whole suite on two workers) can take a node's /readyz past the
    # 200 ms check interval; a slow answer is not a down node.
    timeout check 1s
    # a refused connection (a draining node) goes to another server
    retries 3
    option redispatch

frontend hudong
    bind 127.0.0.1:{port}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 2 rise 2
{servers}
"""


class Balancer:
    """A running HAProxy: the port it listens on and what it has logged."""

    def __init__(self, port: int, log: Any) -> None:
        self.port = port
        self.log = log

    def output(self) -> str:
        self.log.seek(0)
        return str(self.log.read().decode(errors="replace"))


@contextlib.contextmanager
def haproxy(ports: list[int]) -> Iterator[Balancer]:
    """HAProxy on a free loopback port in front of ``ports``."""
    binary = require_haproxy()
    port = free_port()
    servers = "\n".join(f"    server n{i} 127.0.0.1:{p} check" for i, p in enumerate(ports))
    with tempfile.TemporaryDirectory(prefix="hudong-haproxy-") as directory:
        config = os.path.join(directory, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(HAPROXY_CFG.format(port=port, servers=servers))
        check = subprocess.run([binary, "-c", "-f", config], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        log = tempfile.TemporaryFile()
        process = subprocess.Popen([binary, "-db", "-f", config], stdout=log, stderr=log)
        try:
            yield Balancer(port, log)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
