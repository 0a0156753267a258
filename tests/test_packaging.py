"""pyproject.toml lists every Python package of the project (setuptools finds none by
itself here), so `pip install .` and the Docker image carry all of server/, protocol/
and loadtest/, and nothing listed is missing from the tree."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPED = {"server.clients", "server.defaults"}  # folders mapped in (package-dir), not code


def test_every_package_is_listed_and_every_listed_package_exists():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("server", "protocol", "loadtest")
        for init in (ROOT / top).rglob("__init__.py")
        if "node_modules" not in init.parts
    }
    assert found - listed == set(), "packages missing from pyproject.toml"
    assert listed - MAPPED - found == set(), "listed packages with no __init__.py"
    for name in MAPPED:
        assert (ROOT / config["package-dir"][name]).is_dir()
