"""What the tests of clients/js/examples share: node and npm (skipped loudly without
them, failing in CI), each example's packages installed from its committed lockfile
when its node_modules is missing or its copy of the client differs from clients/js,
and a room with an open poll made over REST."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.browser_kit import Node
from tests.conftest import UNIT, require_tool

JS = Path(__file__).resolve().parent.parent / "clients" / "js"
EXAMPLES = JS / "examples"
# The examples built with esbuild (each has `npm run build` writing dist/main.js).
BUILT = ("bundler", "react", "vue")
# Where npm puts the client in an example.
CLIENT = Path("@hudong", "client")


def require(tool: str) -> str:
    return require_tool(tool, "the JS examples")


def install(folder: Path) -> None:
    """``npm ci`` in ``folder`` when its node_modules is missing, or when its copy of the
    client is not clients/js as it is now.

    The examples depend on the client as ``file:../..`` with ``install-links=true`` (their
    .npmrc): npm packs clients/js and installs the package's files and its dependencies
    (@msgpack/msgpack) into the example, as from a tarball or the registry, so nothing in
    clients/js itself is installed or shared between the tests running at once."""
    npm = require("npm")
    require("node")
    if (folder / "node_modules").is_dir() and not _stale(folder / "node_modules" / CLIENT):
        return
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300 * UNIT,
    )
    assert result.returncode == 0, f"npm ci in {folder}:\n{result.stdout}{result.stderr}"
    assert not _stale(folder / "node_modules" / CLIENT), f"{folder}: npm ci left an old client"


def _stale(copy: Path) -> bool:
    """Whether an example's installed client differs from clients/js (an edit since)."""
    if not (copy / "package.json").is_file():
        return True
    if (copy / "package.json").read_bytes() != (JS / "package.json").read_bytes():
        return True
    return any(
        not (JS / path.relative_to(copy)).is_file()
        or (JS / path.relative_to(copy)).read_bytes() != path.read_bytes()
        for path in copy.rglob("*")
        if path.is_file()
    )


def build(name: str) -> Path:
    """Installs and builds one example with esbuild; the bundle it wrote."""
    folder = EXAMPLES / name
    install(folder)
    bundle = folder / "dist" / "main.js"
    bundle.unlink(missing_ok=True)  # a stale bundle must not pass for a fresh one
    result = subprocess.run(
        [require("npm"), "run", "build"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120 * UNIT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert bundle.is_file(), f"{name}: npm run build wrote no {bundle}"
    return bundle


def open_poll(node: Node, room: str, question: str) -> dict[str, str]:
    """A new room with an open single-choice poll ``p`` (options ``a`` and ``b``), made
    over REST as an integrator's backend would; the room's host and screen tokens."""
    tokens = node.room(room)
    spec = {
        "id": "p",
        "question": question,
        "kind": "single",
        "options": [{"id": "a", "label": "Noodles"}, {"id": "b", "label": "Rice"}],
    }
    with node.http(tokens["host"]) as http:
        r = http.post(f"/api/v1/rooms/{room}/interactions", json={"kind": "poll", "spec": spec})
        assert r.status_code == 201, r.text
        r = http.post(f"/api/v1/rooms/{room}/interactions/p/actions", json={"action": "open"})
        assert r.status_code == 200, r.text
    return tokens


def mint(node: Node, room: str, user_id: str, name: str, role: str = "viewer") -> str:
    """A token for ``room``, as an integrator's backend mints one for its signed-in user."""
    with node.http() as http:
        r = http.post(
            f"/api/v1/rooms/{room}/tokens", json={"role": role, "user_id": user_id, "name": name}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def counts(node: Node, room: str) -> dict[str, int]:
    """Poll ``p``'s counts by option, as REST reports them."""
    view = node.view(room, "p")
    return {o["id"]: o["count"] for o in view["results"]["options"]}
