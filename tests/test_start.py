"""What a newcomer meets when starting hudong: the help, the banner and its suggested
command, the links a phone can reach, and a restart that keeps the links valid."""

from __future__ import annotations

import io
import ipaddress
import re
import shlex
import stat
from pathlib import Path

import httpx
import pytest
import segno

from server.cli import build_parser, main
from server.config import ConfigError
from server.startup import kept_secret, lan_address
from tests.browser_kit import ROOT, Node, start_node, stop_node
from tests.conftest import UNIT, free_port

LOGS = ROOT / "test-artifacts"


def _banner(name: str) -> str:
    return (LOGS / f"{name}.log").read_text("utf-8")


def _link(banner: str, label: str) -> str:
    """The first URL on the banner's line that starts with `label`."""
    found = re.search(rf"^\s*{re.escape(label)}\s+(\S+)", banner, re.M)
    assert found, f"no {label!r} line in the banner:\n{banner}"
    return found.group(1)


# --- the help ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["serve"], ["verify-draw"]])
def test_the_help_shows_no_rest_markup(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: hudong")
    assert "`" not in text, text


def test_serve_offers_public_url_and_data_dir():
    serve = build_parser().parse_args(
        ["serve", "--public-url", "https://live.example.com", "--data-dir", "/tmp/x"]
    )
    assert serve.public_url == "https://live.example.com" and serve.data_dir == "/tmp/x"


# --- the banner's suggested command --------------------------------------------------------


def _run_suggested(banner: str, environ: dict[str, str]) -> httpx.Response:
    """Send exactly the request of the banner's suggested curl command."""
    line = next(ln for ln in banner.splitlines() if "curl" in ln)
    words = shlex.split(line[line.index("curl") :])
    assert words[:4] == ["curl", "-s", "-X", "POST"], words
    header = words[words.index("-H") + 1]
    for name, value in environ.items():
        header = header.replace(f"${name}", value)
    assert "<" not in header and "$" not in header, header
    url = next(w for w in words if w.startswith("http"))
    body = words[words.index("-d") + 1]
    key, _, value = header.partition(": ")
    return httpx.post(url, headers={key: value}, content=body, timeout=10 * UNIT)


@pytest.mark.parametrize("demo", [True, False], ids=["demo", "plain"])
def test_the_banner_s_suggested_command_works(demo, tmp_path):
    name = f"start-banner-{'demo' if demo else 'plain'}"
    args = ("--demo",) if demo else ()
    node = start_node(
        free_port(), *args, name=name, HUDONG_ADMIN_TOKEN="", HUDONG_DATA_DIR=str(tmp_path)
    )
    try:
        banner = _banner(name)
        first = _run_suggested(banner, {})
        second = _run_suggested(banner, {})  # again: still a new room, not room_exists
    finally:
        stop_node(node)
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]


def test_the_suggested_command_names_the_admin_token_from_the_environment(tmp_path):
    node = start_node(free_port(), name="start-banner-env", HUDONG_DATA_DIR=str(tmp_path))
    try:
        banner = _banner("start-banner-env")
        assert "$HUDONG_ADMIN_TOKEN" in banner
        from tests.conftest import ADMIN

        answer = _run_suggested(banner, {"HUDONG_ADMIN_TOKEN": ADMIN})
    finally:
        stop_node(node)
    assert answer.status_code == 201, answer.text


# --- links a phone can reach -----------------------------------------------------------------


def _qr(node: Node, room: str) -> tuple[str, str]:
    r = httpx.get(f"{node.base}/qr/{room}.svg", timeout=10 * UNIT)
    assert r.status_code == 200, r.text
    return r.headers["x-hudong-target"], r.text


def _encodes(svg: str, target: str) -> bool:
    """Whether the SVG is the QR code of `target`, as the server draws it."""
    out = io.BytesIO()
    segno.make(target, error="m").save(
        out, kind="svg", scale=10, border=2, xmldecl=False, dark="#000", light="#fff"
    )
    return out.getvalue().decode() == svg


def _needs_a_lan_address() -> None:
    if lan_address() is None:
        pytest.skip("this machine has no address but loopback: links fall back to 127.0.0.1")


def test_bound_to_every_interface_links_and_the_qr_code_name_the_lan_address(tmp_path):
    _needs_a_lan_address()
    name = "start-any-host"
    node = start_node(
        free_port(), "--host", "0.0.0.0", "--demo", name=name, HUDONG_DATA_DIR=str(tmp_path)
    )
    try:
        banner = _banner(name)
        api = _link(banner, "API")
        base = api.removesuffix("/api/v1")
        host = httpx.URL(base).host
        assert not ipaddress.ip_address(host).is_loopback, banner
        assert "127.0.0.1" not in banner, banner
        # It is this machine, reachable at that address.
        assert httpx.get(f"{base}/healthz", timeout=5 * UNIT).status_code == 200
        assert _link(banner, "viewer page") == f"{base}/live/demo"
        assert _link(banner, "wall").startswith(f"{base}/wall/demo#token=")
        target, svg = _qr(node, "demo")
    finally:
        stop_node(node)
    assert target == f"{base}/live/demo"
    assert _encodes(svg, target)


def test_public_url_wins_over_the_lan_address(tmp_path):
    name = "start-public-url"
    node = start_node(
        free_port(),
        "--host",
        "0.0.0.0",
        "--demo",
        "--public-url",
        "https://live.example.com/",
        name=name,
        HUDONG_DATA_DIR=str(tmp_path),
    )
    try:
        banner = _banner(name)
        target, svg = _qr(node, "demo")
    finally:
        stop_node(node)
    assert _link(banner, "API") == "https://live.example.com/api/v1"
    assert _link(banner, "viewer page") == "https://live.example.com/live/demo"
    assert target == "https://live.example.com/live/demo"
    assert _encodes(svg, target)


# --- a restart keeps the secret -------------------------------------------------------------


def _admin_token(banner: str) -> str:
    found = re.search(r"admin token \(generated once, kept in .*\): (\S+)", banner)
    assert found, banner
    return found.group(1)


def _host_token(node: Node, room: str, admin: str) -> str:
    with node.http(admin) as http:
        assert http.post("/api/v1/rooms", json={"id": room}).status_code == 201
        r = http.post(f"/api/v1/rooms/{room}/tokens", json={"role": "host", "name": "Host"})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def _takes(node: Node, token: str, room: str) -> int:
    with node.http(token) as http:
        return http.get(f"/api/v1/rooms/{room}/stats").status_code


@pytest.mark.parametrize("url", ["live.example.com", "ftp://x", "https://"])
def test_a_public_url_that_is_no_url_stops_serve_with_a_clear_message(url, capsys):
    code = main(["serve", "--public-url", url, "--port", str(free_port())])
    assert code == 2
    err = capsys.readouterr().err
    assert "server.public_url must be an http:// or https:// URL" in err and repr(url) in err


def test_a_restart_with_the_same_data_dir_keeps_links_valid(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    env = {"HUDONG_SECRET": "", "HUDONG_ADMIN_TOKEN": "", "HUDONG_DATA_DIR": str(data)}
    first = start_node(port, name="start-keep-a", **env)
    try:
        token = _host_token(first, "kept", _admin_token(_banner("start-keep-a")))
        assert _takes(first, token, "kept") == 200
    finally:
        stop_node(first)
    secret = data / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert f"kept in {secret}" in _banner("start-keep-a")
    kept = secret.read_text()
    second = start_node(port, name="start-keep-b", **env)
    try:
        # The embedded store kept the room, and the node who signed the token.
        with second.http(_admin_token(_banner("start-keep-b"))) as http:
            assert http.post("/api/v1/rooms", json={"id": "kept"}).status_code == 409
            assert http.get("/api/v1/rooms/kept").json()["id"] == "kept"
        assert _takes(second, token, "kept") == 200
        assert "rooms and results stored in" in _banner("start-keep-b")
    finally:
        stop_node(second)
    assert secret.read_text() == kept
    # A generated admin token is kept the same way: a console signed in with it stays in.
    admin = [_admin_token(_banner(n)) for n in ("start-keep-a", "start-keep-b")]
    assert admin[0] == admin[1] == (data / "admin_token").read_text().strip()
    assert stat.S_IMODE((data / "admin_token").stat().st_mode) == 0o600
    # HUDONG_SECRET, when set, wins: the old token is not this node's.
    third = start_node(port, name="start-keep-c", HUDONG_DATA_DIR=str(data))
    try:
        with third.http() as http:
            assert http.get("/api/v1/rooms/kept").status_code == 200
        assert _takes(third, token, "kept") == 401
    finally:
        stop_node(third)
    assert "kept in" not in _banner("start-keep-c")


def test_the_kept_secret_is_made_once_and_checked(tmp_path):
    made = kept_secret(tmp_path / "new" / "dir")
    assert kept_secret(tmp_path / "new" / "dir") == made and len(made) >= 32
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700
    [kept] = (tmp_path / "new" / "dir").iterdir()  # no temporary file left behind
    assert kept.name == "secret" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    short = tmp_path / "short"
    short.mkdir()
    (short / "secret").write_text("too short\n")
    with pytest.raises(ConfigError, match="no usable secret"):
        kept_secret(short)
    assert (short / "secret").read_text() == "too short\n"  # left as it was
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(ConfigError, match="cannot keep a secret"):
        kept_secret(blocked)


def test_an_unusable_data_dir_stops_serve_with_a_clear_message(tmp_path, capsys, monkeypatch):
    for name in ("HUDONG_SECRET", "HUDONG_REDIS_URL", "HUDONG_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    blocked = Path(tmp_path / "file")
    blocked.write_text("")
    code = main(["serve", "--data-dir", str(blocked), "--port", str(free_port())])
    assert code == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "cannot keep a secret" in err


# --- the JS client, as the README says to load it ----------------------------------------


async def test_the_readme_loads_the_client_from_where_every_node_serves_it(server_factory):
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "npm install @hudong/client" not in readme
    assert "npm install @hudong/client" not in (ROOT / "clients/js/README.md").read_text()
    paths = set(re.findall(r"/static/(?:client|vendor)/[\w/.-]+\.m?js", readme))
    assert "/static/client/hudong.js" in paths, paths
    async with server_factory() as live:
        async with httpx.AsyncClient(base_url=live.base) as http:
            for path in sorted(paths):
                r = await http.get(path)
                assert r.status_code == 200, path
                assert r.headers["content-type"].startswith("text/javascript"), path


def test_without_a_network_address_links_fall_back_to_loopback(monkeypatch):
    """No route and a host name that resolves to loopback (Debian's 127.0.1.1): the
    node still starts, and its links name 127.0.0.1."""
    import socket

    from server.config import Settings, base_url
    from server.startup import prepare

    def no_route(self: socket.socket, address: object) -> None:
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", no_route)
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, 0, 0, "", ("127.0.1.1", 0))]
    )
    assert lan_address() is None
    settings = Settings().replace(
        server={"host": "0.0.0.0", "secret": "s" * 32, "admin_token": "a" * 32}
    )
    prepared = prepare(settings)  # both set: nothing to keep, no file written
    assert base_url(prepared.settings) == "http://127.0.0.1:8000"
