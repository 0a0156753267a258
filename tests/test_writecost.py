"""The floor of fan-out by frame size (loadtest/writecost.py): every size's turn is
measured and delivered in full, and bad sizes are refused before anything starts."""

from __future__ import annotations

import json
import subprocess
import sys


def writecost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.writecost", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_size_takes_its_turns_and_the_reader_gets_every_byte(tmp_path):
    out = tmp_path / "writecost.json"
    run = writecost(
        "--viewers", "40", "--sizes", "300,3000", "--seconds", "0.3", "--rounds", "2",
        "--json-out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "writecost: 40 viewers connected"
    assert len([line for line in lines if line.startswith("writecost: round ")]) == 4
    result = json.loads(out.read_text())
    assert [(t["round"], t["size"]) for t in result["turns"]] == [
        (1, 300), (1, 3000), (2, 300), (2, 3000),
    ]  # fmt: skip
    assert all(t["writes"] >= 40 and t["us_per_write"] > 0 for t in result["turns"])
    assert result["bytes_received"] == result["bytes_sent"] > 0
    assert [row["size"] for row in result["summary"]] == [300, 3000]
    assert (
        lines[-1]
        == f"writecost: reader got {result['bytes_sent']:,} of {result['bytes_sent']:,} bytes"
    )


def test_sizes_a_frame_cannot_have_are_refused():
    for sizes in ("12", "70000", "big", ""):
        run = writecost("--sizes", sizes)
        assert run.returncode == 2
        assert "--sizes" in run.stderr
