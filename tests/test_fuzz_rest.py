"""Schemathesis against protocol/openapi.yaml on a running node (issue 15, acceptance 9).

A real node (``python -m server serve --memory``, its own process) answers about 1,000
generated requests in all, spread over every operation of the spec, as the admin, a
host and a viewer of the room ``fz`` (the room's tokens are sent for that room; the
admin's for any). Every answer must be no 5xx, of a status, content type, headers and
body that the spec declares for it. ``HUDONG_FUZZ_SCALE`` multiplies the number of
cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN, SECRET, TLS, UNIT, free_port
from tests.fuzzkit import RANDOM, cases

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = schemathesis.openapi.from_path(ROOT / "protocol" / "openapi.yaml")
# Its coverage phase adds some 1,300 cases of its own choosing; the fuzzing phase's count
# is the one max_examples sets, so that CI runs about 1,000 cases in all.
SCHEMA.config.phases.coverage.enabled = False
OPERATIONS = sum(1 for _ in SCHEMA.get_all_operations())
# Operations without parameters run out of new cases early: 40 each makes about 1,000.
PER_OPERATION = max(1, cases(1240) // OPERATIONS)
ROOM = "fz"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ROLES = ("admin", "host", "viewer")
SENT: Counter[str] = Counter()


class Node:
    """A hudong node in its own process, with a room, a poll in it and its tokens."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "HUDONG_ADMIN_TOKEN": ADMIN,
            "HUDONG_SECRET": SECRET,
            "HUDONG_LOG_LEVEL": "warning",
            # about 1,000 requests from one address in seconds: reports and exports are
            # rate-limited per client, which tests/test_heavy_requests.py tests
            "HUDONG_LIMITS_HEAVY_REQUESTS_PER_S": "10000",
            "HUDONG_LIMITS_HEAVY_REQUEST_BURST": "10000",
            # and so is the lockout after wrong tokens (tests/test_exposure.py), which the
            # generated ones would soon trip: every request would then be the same 429
            "HUDONG_LIMITS_FAILED_LOGINS_ALLOWED": "1000000",
            "HUDONG_LIMITS_PUBLIC_REQUESTS_PER_S": "10000",
            "HUDONG_LIMITS_PUBLIC_REQUEST_BURST": "10000",
        }
        cmd = [sys.executable, "-m", "server", "serve", "--memory", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.tokens: dict[str, str] = {"admin": ADMIN}

    def start(self) -> None:
        deadline = time.monotonic() + 30 * UNIT
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1, verify=TLS).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, "the node exited"
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.1)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=self.base, headers=admin, timeout=10 * UNIT, verify=TLS) as http:
            assert http.post("/api/v1/rooms", json={"id": ROOM}).status_code == 201
            poll = {
                "id": "p1",
                "question": "?",
                "kind": "single",
                "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
            }
            r = http.post(f"/api/v1/rooms/{ROOM}/interactions", json={"kind": "poll", "spec": poll})
            assert r.status_code == 201, r.text
            for role in ("host", "viewer"):
                r = http.post(f"/api/v1/rooms/{ROOM}/tokens", json={"role": role})
                assert r.status_code == 201, r.text
                self.tokens[role] = r.json()["token"]

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10 * UNIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode(errors="replace")


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    node = Node()
    try:
        node.start()
        yield node
    finally:
        log = node.stop()
        # No traceback in the node's log, whatever it was sent.
        assert "Traceback" not in log, log


@pytest.fixture(scope="module", autouse=True)
def _enough_cases() -> Iterator[None]:
    yield
    print(f"schemathesis: {SENT.total()} requests, {dict(SENT)}")


@SCHEMA.parametrize()
@settings(
    max_examples=PER_OPERATION,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    phases=[Phase.explicit, Phase.generate],
)
def test_every_operation_answers_as_the_spec_says(case, node):
    role = ROLES[SENT.total() % len(ROLES)]
    if role != "admin" and case.path_parameters and "room_id" in case.path_parameters:
        # a room token is for its room: most of its cases go there
        if SENT.total() % 4:
            case.path_parameters["room_id"] = ROOM
    SENT[role] += 1
    headers = {"Authorization": f"Bearer {node.tokens[role]}"}
    case.call_and_validate(base_url=node.base, headers=headers, checks=CHECKS, timeout=10 * UNIT)
