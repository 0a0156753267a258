"""The pages as the server sends them (PROTOCOL.md, "Pages"): the policy every page
carries, the files it may load and nothing else, the join QR code, the assets folder,
`hudong serve --demo`, and the wheel that carries them. What the pages do in a browser
is in tests/test_browser.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

from server.backends import open_backends
from server.demo import DEMO_ROOM, examples
from server.interactions.kind import Audience
from tests.conftest import ADMIN, SECRET, UNIT

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "clients" / "web"
JS = ROOT / "clients" / "js"
PAGES = {"/console": "console", "/live/r1": "live", "/overlay/r1": "overlay", "/wall/r1": "wall"}


@pytest.mark.parametrize("path", sorted(PAGES))
async def test_every_page_has_a_strict_policy_that_names_its_import_map(live, path):
    async with httpx.AsyncClient(base_url=live.base) as http:
        r = await http.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = dict(
        part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'" and policy["img-src"] == "'self' data:"
    assert policy["style-src"] == "'self'"
    # The only inline script is the import map, allowed by its hash and nothing else.
    [inline] = re.findall(r"<script type=\"importmap\">(.*?)</script>", r.text, re.S)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    framed = PAGES[path] in ("overlay", "wall")
    assert policy["frame-ancestors"] == ("*" if framed else "'none'")
    # Every file the page names is on this server.
    for url in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert url.startswith(("/static/", "#")), url


def test_pages_reference_only_files_that_exist():
    """Every module, style and import a page or script names is a file that is served."""
    names: set[str] = set()
    for file in WEB.glob("*.*"):
        text = file.read_text("utf-8")
        names |= set(re.findall(r'["\'](/static/[^"\']+)["\']', text))
    assert names, "no references found"
    # Made by the server from its registry (tests/test_plugin_kind.py, tests/test_openapi.py).
    names.discard("/static/kinds/index.js")
    for name in sorted(names):
        rest = name.removeprefix("/static/")
        target = JS / rest.removeprefix("client/") if rest.startswith("client/") else WEB / rest
        assert target.is_file(), name


async def test_static_files_are_served_with_their_types_and_nothing_else(live):
    async with httpx.AsyncClient(base_url=live.base) as http:
        for path, media in (
            ("/static/client/hudong.js", "text/javascript"),
            ("/static/client/codes.js", "text/javascript"),
            ("/static/vendor/msgpack/index.mjs", "text/javascript"),
            ("/static/style.css", "text/css"),
        ):
            r = await http.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith(media), (path, r.headers)
        for path in (
            "/static/client/package.json",
            "/static/client/test/client.test.js",
            "/static/client/node_modules/ws/index.js",
            "/static/../server/app.py",
            "/static/%2e%2e/%2e%2e/pyproject.toml",
            "/static/vendor/msgpack/LICENSE",  # no media type: not served
            "/static/nope.js",
        ):
            r = await http.get(path)
            assert r.status_code == 404, (path, r.status_code)
            assert r.json()["error"]["code"] == "not_found"


def test_the_vendored_msgpack_is_the_npm_package_byte_for_byte():
    """clients/web/vendor/msgpack is @msgpack/msgpack's ES build at the version the JS
    client locks, unchanged (the pages load it in browsers; nothing is hand-written)."""
    vendored = WEB / "vendor" / "msgpack"
    lock = json.loads((JS / "package-lock.json").read_text("utf-8"))
    locked = lock["packages"]["node_modules/@msgpack/msgpack"]["version"]
    assert (vendored / "VERSION").read_text().strip() == locked
    installed = JS / "node_modules" / "@msgpack" / "msgpack"
    if not installed.is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300 * UNIT
        )
    assert json.loads((installed / "package.json").read_text())["version"] == locked
    files = sorted(p.relative_to(vendored) for p in vendored.rglob("*.mjs"))
    expected = sorted(
        p.relative_to(installed / "dist.esm") for p in (installed / "dist.esm").rglob("*.mjs")
    )
    assert files == expected
    for name in files:
        assert (vendored / name).read_bytes() == (installed / "dist.esm" / name).read_bytes(), name


async def test_the_qr_code_points_at_the_viewer_page(server_factory):
    async with server_factory(server={"public_url": "https://live.example.com/"}) as live:
        await live.create_room("launch")
        async with httpx.AsyncClient(base_url=live.base) as http:
            r = await http.get("/qr/launch.svg")
            # the link is the configured one, whatever Host the request names
            forged = await http.get("/qr/launch.svg", headers={"Host": "evil.example.net"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert r.headers["x-hudong-target"] == "https://live.example.com/live/launch"
    assert r.text.startswith("<svg") and "<script" not in r.text
    assert forged.headers["x-hudong-target"] == "https://live.example.com/live/launch"
    assert forged.content == r.content


async def test_without_a_public_url_the_qr_code_names_the_node_not_the_host_header(live):
    await live.create_room("launch")
    async with httpx.AsyncClient(base_url=live.base) as http:
        r = await http.get("/qr/launch.svg", headers={"Host": "evil.example.net"})
    assert r.status_code == 200
    assert r.headers["x-hudong-target"] == f"{live.base}/live/launch"


async def test_a_qr_code_of_a_room_that_does_not_exist_is_404(live):
    await live.create_room("launch")
    async with httpx.AsyncClient(base_url=live.base) as http:
        r = await http.get("/qr/nowhere.svg")
        assert r.status_code == 404 and r.json()["error"]["code"] == "room_not_found"
        assert (await http.get("/qr/launch.svg")).status_code == 200


async def test_a_qr_code_with_cr_lf_in_its_room_id_is_a_clear_400(live):
    """A CR/LF in the path used to drop the connection with a traceback."""
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    try:
        writer.write(b"GET /qr/a%0D%0AX-Evil:%201.svg HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5 * UNIT)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"x-evil" not in head.lower()


async def test_the_static_copies_of_the_pages_carry_the_pages_headers(live):
    async with httpx.AsyncClient(base_url=live.base) as http:
        pages = [("live", "/live/r"), ("overlay", "/overlay/r"), ("console", "/console")]
        for page, route in pages:
            own = await http.get(route)
            copy = await http.get(f"/static/{page}.html")
            assert copy.status_code == 200 and copy.content == own.content
            for header in ("content-security-policy", "x-content-type-options"):
                assert copy.headers[header] == own.headers[header], (page, header)
        assert "frame-ancestors 'none'" in copy.headers["content-security-policy"]
        assert (await http.get("/static/nothing.html")).status_code == 404


async def test_a_qr_code_of_no_room_id_is_a_clear_400_and_a_crowd_of_requests_is_served(
    server_factory,
):
    """A room id that is no room id (not Latin-1, longer than a QR code holds) used to
    answer 500; a crowd asking at once gets the same code, made once."""
    async with server_factory() as live:
        await live.create_room("launch")
        async with httpx.AsyncClient(base_url=live.base, timeout=30) as http:
            for bad in ("%E4%BD%A0", "a" * 3000, "a.b", "a%0D%0Ab"):
                r = await http.get(f"/qr/{bad}.svg")
                assert r.status_code == 400, (bad[:20], r.status_code, r.text[:200])
                assert r.json()["error"]["code"] == "invalid_field"
                assert "room id" in r.json()["error"]["message"]
            answers = await asyncio.gather(*(http.get("/qr/launch.svg") for _ in range(100)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert answers[0].content.startswith(b"<svg")


async def test_the_assets_folder_is_served(server_factory, tmp_path):
    (tmp_path / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (tmp_path / "notes.txt").write_text("private")
    async with server_factory(server={"assets_dir": str(tmp_path)}) as live:
        async with httpx.AsyncClient(base_url=live.base) as http:
            assert (await http.get("/assets/logo.svg")).headers["content-type"] == "image/svg+xml"
            assert (await http.get("/assets/notes.txt")).status_code == 404
            assert (await http.get("/assets/../conftest.py")).status_code == 404


async def test_demo_makes_a_room_with_every_kind_and_working_tokens(capsys):
    from server.app import create_app
    from server.config import Settings

    settings = Settings().replace(server={"admin_token": ADMIN, "secret": SECRET})
    backends = open_backends("memory://")
    for _ in range(2):  # a second start on the same store keeps what is there
        app = create_app(settings, backends=backends, demo=True)
        async with app.router.lifespan_context(app):
            demo = app.state.demo
            views = await app.state.rooms.interactions(DEMO_ROOM, Audience.STAFF)
            made = {spec["id"] for _, spec in examples(app.state.rooms)}
            assert len(made) >= 4 and made <= {view["id"] for view in views}
            authority = app.state.authority
            assert authority.verify(demo.host_token, DEMO_ROOM).role == "host"
            assert authority.verify(demo.screen_token, DEMO_ROOM).role == "screen"
    printed = capsys.readouterr().out
    assert f"/console#room={DEMO_ROOM}&token=" in printed
    assert f"/live/{DEMO_ROOM}" in printed and f"/wall/{DEMO_ROOM}#token=" in printed


def test_every_package_is_in_the_wheel_and_so_are_the_pages(tmp_path):
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    found = sorted(
        str(p.parent.relative_to(ROOT)).replace("/", ".")
        for top in ("server", "protocol", "loadtest")
        for p in (ROOT / top).rglob("__init__.py")
    )
    assert sorted(set(config["packages"]) - {"server.clients"}) == found
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300 * UNIT,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("hudong-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for page in ("console", "live", "overlay", "wall"):
        assert f"server/clients/web/{page}.html" in names
        assert f"server/clients/web/{page}.js" in names
    assert "server/clients/js/hudong.js" in names
    assert "server/clients/web/vendor/msgpack/index.mjs" in names
    assert not any("node_modules" in n or "/test/" in n for n in names)


async def test_index_lists_the_pages(live):
    async with httpx.AsyncClient(base_url=live.base) as http:
        pages = (await http.get("/")).json()["pages"]
    assert pages == {
        "console": "/console",
        "live": "/live/{room}",
        "overlay": "/overlay/{room}",
        "wall": "/wall/{room}",
    }
