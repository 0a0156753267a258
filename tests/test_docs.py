"""Docs that must stay true to the code."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text("utf-8")
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    command = ci.strip().splitlines()[-1]
    assert "pytest" in command
    assert f"\n{command}\n" in readme, f"README lacks the CI test command: {command}"


def test_every_setting_in_the_readme_exists():
    readme = (ROOT / "README.md").read_text("utf-8")
    from server.config import SECTIONS, Settings, env_name, section_of

    known = {
        env_name(s, k) for s in SECTIONS for k in section_of(Settings(), s).__dataclass_fields__
    } | {"HUDONG_CONFIG", "HUDONG_TEST_UNIT", "HUDONG_FUZZ_SCALE", "HUDONG_FUZZ_RANDOM"}
    for name in set(re.findall(r"HUDONG_[A-Z_]+[A-Z]", readme)):
        assert name in known, name
