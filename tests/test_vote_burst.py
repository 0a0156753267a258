"""5,000 viewers vote in a burst over real sockets (issue 4, acceptance 2), on the
embedded default (the durable store) and on Redis: every vote acknowledged, tallies
exact. The load tool (`python -m loadtest votes`) does the voting; this test holds it
to its result."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import UNIT
from tests.redis_fixtures import require_redis

pytestmark = pytest.mark.slow


def votes(tmp_path: Path, *args: str, timeout: float = 120) -> tuple[Any, dict[str, Any]]:
    """``python -m loadtest votes --spawn ARGS --quiet``: the process, and its result
    (empty when it wrote none)."""
    out = tmp_path / "votes.json"
    run = subprocess.run(
        [sys.executable, "-m", "loadtest", "votes", "--spawn", *args, "--quiet",
         "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout * UNIT,
    )  # fmt: skip
    return run, json.loads(out.read_text()) if out.exists() else {}


@pytest.mark.parametrize("backend", ["embedded", "redis"])
def test_5000_viewers_vote_at_once(tmp_path, backend):
    extra = []
    if backend == "redis":
        require_redis()
        extra = ["--redis-spawn"]
    run, result = votes(tmp_path, *extra, "--viewers", "5000", "--workers", "4", timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert result["connected"] == 5000
    assert result["acked"] == 5000 and result["refused"] == 0 and not result["errors"]
    assert result["exact"]
    assert sum(result["tallies"].values()) == 5000
    assert result["tallies"] == result["expected"]
    cpu = result["server_cpu_burst"]  # the node's core over the burst, read from /proc
    assert cpu["cpu_s"] > 0 and cpu["us_per_vote"] > 0, cpu
    assert 0 < cpu["system_pct"] < cpu["cpu_pct"], cpu
    assert result["clients_cpu_burst"]["cpu_pct"] > 0, result["clients_cpu_burst"]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://192.0.2.1:8000", "loadtest targets loopback only"),
        ("http://127.0.0.1:1", "Connection refused"),
    ],
)
def test_the_vote_burst_refuses_what_it_cannot_run_with_exit_2(url, says):
    run = subprocess.run(
        [sys.executable, "-m", "loadtest", "votes", "--url", url, "--admin-token", "x"],
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("FATAL: ") and says in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_a_burst_that_cannot_join_all_its_viewers_says_so_and_does_not_vote(tmp_path):
    run, result = votes(
        tmp_path,
        "--memory",
        "--server-env",
        "HUDONG_LIMITS_CONNECTIONS_PER_ADDRESS=10",  # the 11th from 127.0.0.1 is refused
        "--viewers",
        "20",
        "--workers",
        "2",
        "--deadline",
        "4",  # 10 join in a moment; the other 10 never will
    )
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    said = run.stdout + run.stderr + json.dumps(result)
    assert "of 20 viewers joined before --deadline" in said, said[-3000:]


def test_rounds_make_a_sustained_run_whose_tallies_are_each_viewers_last_vote(tmp_path):
    run, result = votes(tmp_path, "--memory", "--viewers", "203", "--workers", "2", "--rounds", "3")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert result["acked"] == 3 * 203 and result["ack_ms"]["samples"] == 3 * 203
    # viewer i's last vote is option (i + 2) % 4: 203 viewers give 51, 51, 51, 50
    assert sorted(result["tallies"].values()) == [50, 51, 51, 51] and result["exact"]
