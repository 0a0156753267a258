"""Runs the JS client's own suite (`node --test`, clients/js/test) from pytest, so the
README's one test command covers both languages. It starts its own hudong node with
this interpreter (HUDONG_PYTHON)."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import UNIT, require_tool

JS = Path(__file__).resolve().parent.parent / "clients" / "js"


def _require(tool: str) -> str:
    return require_tool(tool, "the JS client tests")


def test_js_client_suite():
    npm = _require("npm")
    _require("node")
    if not (JS / "node_modules").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300 * UNIT
        )
    result = subprocess.run(
        [npm, "test"],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=300 * UNIT,
        env={**os.environ, "HUDONG_PYTHON": sys.executable},
    )
    summary = "\n".join(line for line in result.stdout.splitlines() if line.startswith("# "))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "# fail 0" in summary and "# pass 0" not in summary, summary
