"""The configuration reference (config/hudong.toml, docs/configuration.md) is generated
from server/config.py and kept fresh, and names every setting, its variable and flag."""

from __future__ import annotations

import functools
import operator
import os
import subprocess
import sys
import tomllib

from server import config_reference
from server.cli import build_parser
from server.config import (
    SECTIONS,
    Settings,
    env_name,
    load_settings,
    section_of,
    setting_fields,
)
from server.config_reference import FLAGS, MARKDOWN_PATH, ROOT, TOML_PATH, groups


def test_the_generated_files_are_fresh():
    stale = [str(p.relative_to(ROOT)) for p in config_reference.stale()]
    assert not stale, f"stale: {stale}; run {config_reference.COMMAND}"


def test_an_edited_file_is_found_stale(tmp_path, monkeypatch):
    copy = tmp_path / "hudong.toml"
    copy.write_text(TOML_PATH.read_text("utf-8").replace("port = 8000", "port = 8001"))
    monkeypatch.setattr(config_reference, "TOML_PATH", copy)
    assert config_reference.stale() == [copy]


def test_the_generator_command_prints_both_files_and_checks_them():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for option, path in (("--toml", TOML_PATH), ("--markdown", MARKDOWN_PATH)):
        out = subprocess.run(
            [sys.executable, "-m", "server.config_reference", option],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )
        assert out.stdout == path.read_text("utf-8")
    check = subprocess.run(
        [sys.executable, "-m", "server.config_reference", "--check"], env=env, timeout=60
    )
    assert check.returncode == 0


def test_every_setting_is_documented_once_with_its_default():
    found = [(g.section, key) for g in groups() for key in g.keys]
    expected = [(s, f.name) for s in SECTIONS for f in setting_fields(section_of(Settings(), s))]
    assert found == expected
    undocumented = [g.keys for g in groups() if not "".join(g.doc).strip()]
    assert not undocumented, f"settings with no comment above them in config.py: {undocumented}"
    assert load_settings(TOML_PATH, environ={}) == Settings()
    data = tomllib.loads(TOML_PATH.read_text("utf-8"))
    tables = {s: functools.reduce(operator.getitem, s.split("."), data) for s in SECTIONS}
    own = {s: {k for k, v in tables[s].items() if not isinstance(v, dict)} for s in SECTIONS}
    assert own == {s: {key for sec, key in expected if sec == s} for s in SECTIONS}


def test_the_markdown_names_each_setting_s_variable_flag_and_default():
    text = MARKDOWN_PATH.read_text("utf-8")
    # by environment variable: two sections may have a key of the same name (heartbeat_s)
    rows = {line.split("|")[2].strip(" `"): line for line in text.splitlines() if "| `" in line}
    defaults = Settings()
    for section in SECTIONS:
        for key in (f.name for f in setting_fields(section_of(defaults, section))):
            row = rows[env_name(section, key)]
            assert row.split("|")[1].strip(" `") == key
            value = getattr(section_of(defaults, section), key)
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            assert shown in row.split("|")[4], (key, row)
            if section == "server" and key in FLAGS:
                assert f"`{FLAGS[key]}`" in row
    assert "| `tick_ms` | `HUDONG_HUB_TICK_MS` |  | `100` | more than 0 |" in text


def test_the_flags_in_the_reference_are_the_serve_command_s():
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    options = {
        option
        for action in serve._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    assert options - {"--help", "--config", "--demo"} == set(FLAGS.values())
    for key, flag in FLAGS.items():
        value = {"port": "9001"}.get(key, "x")
        args = serve.parse_args([flag] if key in ("memory", "insecure_dev") else [flag, value])
        assert any(getattr(args, a) not in (None, False) for a in vars(args)), flag
