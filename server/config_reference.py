"""The configuration reference, generated from server/config.py (issue 17):
``config/hudong.toml`` (every key with its default, ready to copy) and
``docs/configuration.md`` (every setting with its default, environment variable, flag,
allowed range and what it does). tests/test_config_reference.py fails when either file
is stale; ``python -m server.config_reference --write`` brings both up to date.

The comments above each field in config.py are its documentation. A field with no
comment of its own directly under another shares that one's comment (``viewer_command_burst``
under ``viewer_commands_per_s``); a field with neither has none, which the test refuses.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server import config
from server.config import SECTIONS, Settings, env_name, section_of, setting_fields
from server.config_checks import LOG_LEVELS, bounds
from server.startup import MIN_ADMIN_TOKEN_CHARS

ROOT = Path(__file__).resolve().parent.parent
TOML_PATH = ROOT / "config" / "hudong.toml"
MARKDOWN_PATH = ROOT / "docs" / "configuration.md"
COMMAND = "python -m server.config_reference --write"
# The settings `hudong serve` also takes as a flag (server/cli.py; a test keeps the two
# equal).
FLAGS = {
    "host": "--host",
    "port": "--port",
    "public_url": "--public-url",
    "data_dir": "--data-dir",
    "redis_url": "--redis",
    "memory": "--memory",
    "insecure_dev": "--insecure-dev",
}
# What a text setting may be, where not anything.
TEXT_RANGES = {
    ("server", "secret"): "empty, or at least 32 bytes",
    ("server", "admin_token"): f"empty, or at least {MIN_ADMIN_TOKEN_CHARS} characters "
    "(shorter only with insecure_dev)",
    ("server", "log_level"): ", ".join(LOG_LEVELS),
    ("server", "public_url"): "empty, or an http:// or https:// URL",
}


@dataclass(frozen=True, slots=True)
class Group:
    """Settings of one section that share one comment in config.py."""

    section: str
    doc: list[str]
    keys: list[str]


def groups(source: str | None = None) -> list[Group]:
    """The settings of every section in config.py's order, with their comments."""
    source = Path(config.__file__).read_text("utf-8") if source is None else source
    lines = source.splitlines()
    classes = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}
    defaults = Settings()
    out: list[Group] = []
    for section in SECTIONS:
        values = section_of(defaults, section)
        node = classes[type(values).__name__]
        keys = {f.name for f in setting_fields(values)}  # not the sections inside it
        previous_end = 0
        for statement in node.body:
            if not isinstance(statement, ast.AnnAssign) or (
                isinstance(statement.target, ast.Name) and statement.target.id not in keys
            ):
                previous_end = statement.end_lineno or statement.lineno
                continue
            assert isinstance(statement.target, ast.Name)
            key = statement.target.id
            doc: list[str] = []
            row = statement.lineno - 2  # the line above, 0-based
            while row >= 0 and lines[row].strip().startswith("#"):
                doc.insert(0, lines[row].strip().lstrip("#").strip())
                row -= 1
            shares = not doc and previous_end == statement.lineno - 1 and out
            if shares and out[-1].section == section:
                out[-1].keys.append(key)
            else:
                out.append(Group(section, doc, [key]))
            previous_end = statement.end_lineno or statement.lineno
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    return repr(value)


def _flag(key: str, section: str) -> str | None:
    return FLAGS.get(key) if section == "server" else None


def _docstring_line(section: str) -> str:
    doc = type(section_of(Settings(), section)).__doc__ or ""
    return doc.strip().replace("``", "`")


def toml_text() -> str:
    """config/hudong.toml: every key with its default, under its comment."""
    defaults = Settings()
    out = [
        "# hudong settings: every key with its default value (the built-in defaults).",
        f"# Generated from server/config.py by `{COMMAND}`; do not edit.",
        "# To change settings, copy this file, keep what you change, and pass it with",
        "# --config or HUDONG_CONFIG. docs/configuration.md adds each key's allowed range.",
        "#",
        "# Precedence, lowest first: the defaults, the file, environment variables",
        "# (HUDONG_<KEY> for [server], HUDONG_<SECTION>_<KEY> for the others; each key",
        "# below names its own), then command-line flags.",
    ]
    current = ""
    for group in groups():
        if group.section != current:
            current = group.section
            out += ["", f"[{current}]", f"# {_docstring_line(current)}"]
        out.append("")
        out += [f"# {line}".rstrip() for line in group.doc]
        for key in group.keys:
            value = getattr(section_of(defaults, group.section), key)
            names = [env_name(group.section, key)]
            flag = _flag(key, group.section)
            if flag:
                names.append(flag)
            out.append(f"{key} = {_toml_value(value)}  # {', '.join(names)}")
    return "\n".join(out) + "\n"


def _allowed(section: str, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true, false"
    if isinstance(value, (int, float)):
        return bounds(section, key)
    return TEXT_RANGES.get((section, key), "")


def _cell(text: str) -> str:
    """Plain text as a Markdown table cell: no tags, emphasis or column breaks."""
    for plain, escaped in (("``", "`"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("*", "\\*")):
        text = text.replace(plain, escaped)
    return text


def _prose(doc: list[str]) -> str:
    parts = []
    for line in doc:
        if line.startswith("---") and line.endswith("---"):
            line = line.strip("- ") + ":"
        parts.append(line)
    return " ".join(parts)


def markdown_text() -> str:
    """docs/configuration.md: a table per section of every setting."""
    defaults = Settings()
    out = [
        "# Configuration reference",
        "",
        f"Generated from `server/config.py` by `{COMMAND}`; do not edit (a test fails",
        "when this file is stale). `config/hudong.toml` lists the same keys with their",
        "defaults, ready to copy.",
        "",
        "Precedence, lowest first: the built-in defaults below, a TOML file given with",
        "`--config FILE` or `HUDONG_CONFIG`, environment variables, command-line flags.",
        "A wrong name or type, or a value out of its range, stops `hudong serve` with a",
        "message naming the setting and why (exit status 2).",
    ]
    current = ""
    for group in groups():
        if group.section != current:
            current = group.section
            out += [
                "",
                f"## [{current}]",
                "",
                _cell(_docstring_line(current)),
                "",
                "| Setting | Environment | Flag | Default | Allowed | What it does |",
                "|---|---|---|---|---|---|",
            ]
        first = group.keys[0]
        for key in group.keys:
            value = getattr(section_of(defaults, group.section), key)
            flag = _flag(key, group.section)
            doc = _prose(group.doc) if key == first else f"With `{first}` above."
            out.append(
                f"| `{key}` | `{env_name(group.section, key)}` | "
                f"{f'`{flag}`' if flag else ''} | `{_toml_value(value)}` | "
                f"{_cell(_allowed(group.section, key, value))} | {_cell(doc)} |"
            )
    return "\n".join(out) + "\n"


def stale() -> list[Path]:
    """The generated files that differ from what config.py makes now."""
    wanted = {TOML_PATH: toml_text(), MARKDOWN_PATH: markdown_text()}
    return [p for p, text in wanted.items() if not p.exists() or p.read_text("utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.config_reference",
        description="Print or write the configuration reference generated from server/config.py.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--toml", action="store_true", help="print config/hudong.toml")
    which.add_argument("--markdown", action="store_true", help="print docs/configuration.md")
    which.add_argument("--write", action="store_true", help="write both files")
    which.add_argument("--check", action="store_true", help="exit 1 if either is stale")
    args = parser.parse_args(argv)
    if args.toml:
        sys.stdout.write(toml_text())
    elif args.markdown:
        sys.stdout.write(markdown_text())
    elif args.write:
        for path, text in ((TOML_PATH, toml_text()), (MARKDOWN_PATH, markdown_text())):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
    else:
        old = stale()
        for path in old:
            print(f"{path.relative_to(ROOT)} is stale: run {COMMAND}", file=sys.stderr)
        return 1 if old else 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
