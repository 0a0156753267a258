"""The competing process of issue 14's target 8 (loadtest/hog.py): bursts of the asked
length on the asked CPU, then it stops by itself; nonsense is refused."""

import subprocess
import sys

from tests.conftest import UNIT


def hog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.hog", *args],
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
    )


def test_it_bursts_as_asked_and_stops_by_itself():
    run = hog("--cpu", "0", "--busy-ms", "30", "--every-s", "0.4", "--duration", "1.3")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("hog: CPU 0, 30 ms every 0.4 s, as ")
    bursts = [line for line in lines if line.startswith("hog: burst ")]
    assert len(bursts) == 3, run.stdout
    assert all(int(b.split(" of ")[1].split()[0]) >= 30 for b in bursts), bursts
    assert lines[-1] == "hog: done, 3 bursts"


def test_nonsense_is_refused():
    run = hog("--busy-ms", "6000", "--every-s", "5")
    assert run.returncode == 2 and "--busy-ms must be over 0 and under --every-s" in run.stderr
    run = hog("--duration", "0")
    assert run.returncode == 2 and "--duration must be over 0" in run.stderr
