"""The load tool's shape (loadtest/README.md): one harness under every scenario, no
import circle, no import of the server; and what every scenario does when it cannot
run (exit 2, a FATAL line, no traceback). The scenarios themselves run against real
servers in test_vote_burst.py, here (smoke runs of ``cockpit``, its pages kept in step
with cockpit.js, and of ``chatvotes``) and by hand (loadtest/README.md)."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtest import cockpit, stats
from loadtest.__main__ import MODULES, SCENARIOS
from tests.conftest import UNIT
from tests.redis_fixtures import require_redis

ROOT = Path(__file__).resolve().parent.parent
LOADTEST = ROOT / "loadtest"


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, also inside functions, as dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            # `from loadtest import harness` imports the module loadtest.harness
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def loadtest_graph() -> dict[str, set[str]]:
    modules = {f"loadtest.{p.stem}": p for p in LOADTEST.glob("*.py")}
    modules["loadtest"] = modules.pop("loadtest.__init__")
    return {name: imports_of(path) & set(modules) - {name} for name, path in modules.items()}


def test_no_import_circle_in_loadtest():
    graph = loadtest_graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail("import circle: " + " -> ".join(cycle))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_scenarios_import_the_harness_never_each_other():
    graph = loadtest_graph()
    scenarios = {m.__name__ for m in MODULES}
    assert {sc.name for sc in SCENARIOS} == {
        "fanout",
        "crossnode",
        "votes",
        "chatvotes",
        "connect",
        "reconnect",
        "slow",
        "draw",
        "mixed",
        "idle",
        "rooms",
        "many",
        "cockpit",
    }
    for name in scenarios:
        assert not graph[name] & scenarios, f"{name} imports {graph[name] & scenarios}"
        assert "loadtest.harness" in graph[name], name


def test_the_load_tool_never_imports_the_server():
    for path in LOADTEST.glob("*.py"):
        server = {m for m in imports_of(path) if m == "server" or m.startswith("server.")}
        assert not server, f"{path.name} imports {server}"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        *(
            ([name, "--url", "http://192.0.2.1:8000", "--admin-token", "x"], "loopback only")
            for name in ("fanout", "votes", "chatvotes", "reconnect", "slow", "draw", "mixed")
        ),
        (["fanout", "--url", "http://127.0.0.1:1", "--admin-token", "x"], "Connection refused"),
        (["slow", "--spawn", "--url", "http://127.0.0.1:1"], "either --spawn or --url"),
        (["crossnode", "--nodes", "1"], "--nodes must be at least 2"),
        (["draw", "--spawn", "--server-src", "/nonexistent"], "no server/ package there"),
        (["mixed", "--spawn", "--redis", "redis://192.0.2.1:6379/0"], "loopback only"),
        (["mixed", "--spawn", "--also-url", "http://127.0.0.1:1"], "--also-url goes with --url"),
        (
            ["mixed", "--url", "http://127.0.0.1:1", "--also-url", "http://192.0.2.1:8000"],
            "loopback only",
        ),
        (["many", "--spawn", "--interactions", "5", "--open", "6"], "--open must be 1"),
        (["rooms", "--rooms", "5", "--viewers", "2"], "--viewers must be at least --rooms"),
        (["rooms", "--embedded"], "--embedded runs one node"),
    ],
)
def test_a_scenario_that_cannot_run_exits_2_with_a_fatal_line(argv, says):
    run = subprocess.run(
        [sys.executable, "-m", "loadtest", *argv],
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        cwd=ROOT,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("FATAL: ") and says in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_one_percentile_for_every_scenario():
    q = stats.quantiles(float(x) for x in range(1, 101))
    assert q == {"p50": 51.0, "p90": 90.0, "p99": 99.0, "max": 100.0, "samples": 100}
    assert stats.quantiles([])["p99"] is None
    assert stats.per(1, 0) is None and stats.per(1, 3, 2) == 0.33


def cockpit_js_loops() -> list[tuple[float, tuple[str, ...]]]:
    """What clients/web/cockpit.js polls: each ``poll(async () => {…}, NAME_MS)`` loop's
    interval and the room paths it calls, in order."""
    source = (ROOT / "clients" / "web" / "cockpit.js").read_text("utf-8")
    consts = dict(re.findall(r"^const (\w+) = (\d+);", source, re.M))
    loops = []
    for block, interval in re.findall(r"poll\(async \(\) => \{(.*?)\}, (\w+)\);", source, re.S):
        paths = re.findall(r"call\([`\"]([^`\"]+)[`\"]", block)
        paths = [re.sub(r"\$\{(\w+)\}", lambda m: consts[m.group(1)], p) for p in paths]
        loops.append((int(consts[interval]) / 1000, tuple(paths)))
    return loops


def test_the_cockpit_scenario_asks_what_cockpit_js_asks():
    """loadtest/cockpit.py's pages mirror cockpit.js: the same requests in the same
    loops at the same intervals (change one, change the other)."""
    loops = cockpit_js_loops()
    assert loops, "no poll loop found in cockpit.js"
    assert sorted(loops) == sorted(cockpit.PAGE_LOOPS)
    source = (ROOT / "clients" / "web" / "cockpit.js").read_text("utf-8")
    assert source.count("connectClient()") == 1, "one WebSocket per page"


def small_run(tmp_path: Path, scenario: str, *argv: str, timeout_s: float = 180) -> Any:
    """``python -m loadtest SCENARIO ARGV --quiet --json-out ...``: its result, once it
    exited 0."""
    out = tmp_path / f"{scenario}.json"
    run = subprocess.run(
        [sys.executable, "-m", "loadtest", scenario, *argv, "--quiet", "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout_s * UNIT,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_a_small_cockpit_run(tmp_path):
    """A smoke run: a node, 50 viewers, 2 pages, one short window without and with
    them; every page request answered 200, the node's CPU read in both windows."""
    result = small_run(
        tmp_path,
        "cockpit",
        "--spawn",
        *("--viewers", "50", "--workers", "1", "--pages", "2", "--danmaku", "20"),
        *("--rounds", "1", "--duration", "3", "--settle", "1"),
        timeout_s=240,  # about 15 s; a crowded machine has taken much longer
    )
    assert result["connected"] == 50 and result["danmaku_accepted"] == 20
    assert set(result["answers"]) == {"200"} and result["requests_in_windows"] >= 2, result
    assert len(result["windows_without"]) == len(result["windows_with"]) == 1
    assert result["windows_with"][0]["cpu_s"] > 0, result


def test_a_small_danmaku_vote_run_counts_every_vote_exactly(tmp_path):
    """`chatvotes` (issue 18, acceptance 5) on a spawned node, 120 viewers in 1 s: every
    danmaku acknowledged as a vote, the tallies over REST exact, both latencies measured."""
    argv = ["--spawn", "--viewers", "120", "--workers", "2", "--over", "1"]
    result = small_run(tmp_path, "chatvotes", *argv)
    assert result["voted"] == 120 and result["refused"] == 0 and result["exact"]
    assert sum(result["tallies"].values()) == 120 and result["tallies"] == result["expected"]
    assert result["ack_ms"]["samples"] == 120 and result["counted_ms"]["samples"] == 120
    assert result["ack_counted_ms"]["samples"] == 120


def test_a_small_fanout_run_delivers_every_danmaku(tmp_path):
    """`fanout` on a spawned node: 40 viewers, 20 danmaku/s for 2 s; every danmaku reaches
    every viewer (its publisher's senders join after it was built: this once crashed)."""
    argv = ["--spawn", "--viewers", "40", "--probes", "5", "--rate", "20"]
    result = small_run(tmp_path, "fanout", *argv, "--duration", "2", "--warmup", "1")
    assert result["connect"]["connected"] == 40 and result["connect"]["failed"] == 0, result
    assert result["published_total"] >= 40 and not result["publish_errors"], result
    assert result["delivered_total"] == result["expected_total"] > 0, result
    assert result["undelivered_pct"] == 0.0 and result["disconnects"] == 0, result


def test_a_small_rooms_run_counts_the_background_redis_commands(tmp_path):
    """`rooms`: 20 quiet rooms on one node on Redis, one viewer each; the nodes' background
    loops show as Redis commands, by command, and nobody is disconnected."""
    require_redis()  # the tool starts its own redis-server
    argv = ["--nodes", "1", "--rooms", "20", "--viewers", "20", "--settle", "1"]
    result = small_run(tmp_path, "rooms", *argv, "--duration", "4")
    assert result["viewers_connected"] == 20 and result["disconnects"] == 0, result
    # every 2 s each served room reports its presence (a script) and its counts (PFCOUNT)
    by_command = result["redis_by_command_per_s"]
    assert by_command["evalsha"] > 0 and by_command["pfcount"] > 0, by_command
    assert result["redis_commands_per_room_s"] > 0 and result["nodes_cpu"]["cpu_s"] > 0


def test_a_small_rooms_run_on_the_embedded_store_measures_the_node_alone(tmp_path):
    """`rooms --embedded`: 20 quiet rooms on one node on disk, no Redis: the node's CPU
    and what it wrote to disk, and nobody is disconnected."""
    argv = ["--nodes", "1", "--embedded", "--rooms", "20", "--viewers", "20", "--settle", "1"]
    result = small_run(tmp_path, "rooms", *argv, "--duration", "4")
    assert result["store"] == "embedded" and "redis" not in result, result
    assert result["viewers_connected"] == 20 and result["disconnects"] == 0, result
    assert result["nodes_cpu"]["cpu_s"] > 0 and result["disk_written_per_s"] >= 0, result
