"""What ``hudong serve`` works out before it starts (:func:`prepare`): the backend, the
data directory, the secrets the embedded default keeps there, and the address that
printed links and the wall's QR code use.

The embedded default (no ``server.redis_url``, no ``server.memory``) keeps its store in
``<data dir>/hudong.db`` (server/backends/embedded.py), and generates its token-signing
secret and its admin token once and keeps them in ``<data dir>/secret`` and
``<data dir>/admin_token`` (mode 0600), so rooms, results, the links printed before a
restart, and a console signed in with the admin token all still work after it.
``server.secret`` (``HUDONG_SECRET``) and ``server.admin_token``
(``HUDONG_ADMIN_TOKEN``), when set, win. Nodes on Redis keep nothing: they must share
both, so they are told. ``server.memory`` (``--memory``) keeps nothing either. The data directory
is ``server.data_dir``, else ``$XDG_DATA_HOME/hudong``, else ``~/.local/share/hudong``.

A node bound to every interface (``0.0.0.0``, ``::``) is reached by phones at the
machine's address on the network, not at 127.0.0.1: links use the primary LAN address
unless ``server.public_url`` names one.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from server.auth import MIN_SECRET_BYTES, new_secret
from server.config import ConfigError, Settings
from server.config_checks import check

SECRET_FILE = "secret"
STORE_FILE = "hudong.db"
ADMIN_TOKEN_FILE = "admin_token"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# Connecting a UDP socket picks the interface of the route to that address and sends
# nothing. 192.0.2.1 is TEST-NET-1 (RFC 5737): never a real peer, routed like any other.
PROBE_ADDRESS = ("192.0.2.1", 9)
# The admin token opens every room: one shorter than this can be guessed (issue 15).
MIN_ADMIN_TOKEN_CHARS = 16


def data_dir(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """``server.data_dir``, else ``$XDG_DATA_HOME/hudong``, else ``~/.local/share/hudong``."""
    environ = os.environ if environ is None else environ
    if settings.server.data_dir:
        return Path(settings.server.data_dir).expanduser()
    xdg = environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec ignores relative paths
        return Path(xdg) / "hudong"
    return Path.home() / ".local" / "share" / "hudong"


def kept_secret(directory: Path, name: str = SECRET_FILE) -> str:
    """The secret kept in the file ``name`` of ``directory``; made (mode 0600) on the
    first start.

    Raises ConfigError when the directory cannot be made or the file read, or when the
    file holds something too short to be a secret."""
    path = directory / name
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            _make(path, new_secret())
        secret = path.read_text("utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot keep a secret in {path}: {exc.strerror or exc}; set server.data_dir "
            "(--data-dir, HUDONG_DATA_DIR) to a writable folder"
        ) from None
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{path} holds no usable secret (at least {MIN_SECRET_BYTES} bytes); "
            "delete it to make a new one (what it signed or opened stops working)"
        )
    return secret


def _make(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path`` whole or not at all: written and synced under a
    temporary name, then linked into place, which fails if the file exists meanwhile
    (two nodes starting at once on one directory agree on the first one's)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def lan_address() -> str | None:
    """The machine's primary address on its network (the source address of its
    default route), found without sending anything; None when it has none."""
    candidates: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(PROBE_ADDRESS)
            candidates.append(probe.getsockname()[0])
    except OSError:
        pass  # no route anywhere: try the host name
    try:  # no default route (an offline venue network): what the host name resolves to
        found = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        candidates += [str(info[4][0]) for info in found]
    except OSError:
        pass
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if not (address.is_loopback or address.is_unspecified or address.is_link_local):
            return candidate
    return None


def public_base(settings: Settings) -> str:
    """What ``server.public_url`` should be for links: itself when set; for a node bound
    to every interface, http://<LAN address>:port; else empty (links use the address
    the page was opened at, or http://host:port when printed)."""
    url = settings.server.public_url
    if url:
        scheme, sep, rest = url.partition("://")
        if scheme not in ("http", "https") or not sep or not rest.strip("/"):
            raise ConfigError(
                f"server.public_url must be an http:// or https:// URL, such as "
                f"https://live.example.com, got {url!r}"
            )
        return url.rstrip("/")
    if settings.server.host not in WILDCARD_HOSTS:
        return ""
    address = lan_address()
    return f"http://{address}:{settings.server.port}" if address else ""


@dataclass(frozen=True, slots=True)
class Prepared:
    """Settings ready to serve, and where their secrets came from (for the banner)."""

    settings: Settings
    # The files the secret and the admin token are kept in; None: configured, or (the
    # admin token on Redis) generated for this start only.
    secret_file: Path | None = None
    admin_token_file: Path | None = None
    admin_token_generated: bool = False
    # The backend URL: redis_url, memory://, or the embedded store in the data directory.
    store_url: str = "memory://"


def prepare(settings: Settings, environ: Mapping[str, str] | None = None) -> Prepared:
    """Fill in what the settings leave empty: the public base URL of links, and the
    secret and admin token (kept in the data directory by the embedded default).

    Raises ConfigError for a setting out of its range (server/config_checks.py), and
    for an admin token under :data:`MIN_ADMIN_TOKEN_CHARS` characters, unless
    ``server.insecure_dev`` (``--insecure-dev``) allows it."""
    check(settings)
    token = settings.server.admin_token
    if token and len(token) < MIN_ADMIN_TOKEN_CHARS and not settings.server.insecure_dev:
        raise ConfigError(
            f"server.admin_token (HUDONG_ADMIN_TOKEN) is {len(token)} characters; it opens "
            f"every room, so it must be at least {MIN_ADMIN_TOKEN_CHARS}: generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(24))', or leave it "
            "empty to have one generated (--insecure-dev, HUDONG_INSECURE_DEV=true allows a "
            "short one on a machine no one else can reach)"
        )
    server = dataclasses.replace(settings.server, public_url=public_base(settings))
    secret_file = admin_file = None
    generated = False
    store_url = server.redis_url or "memory://"
    if not server.redis_url and not server.memory:
        directory = data_dir(settings, environ)
        store_url = f"sqlite://{(directory / STORE_FILE).absolute()}"
        if not server.secret:
            secret_file = directory / SECRET_FILE
            server = dataclasses.replace(server, secret=kept_secret(directory))
        if not server.admin_token:
            admin_file = directory / ADMIN_TOKEN_FILE
            token = kept_secret(directory, ADMIN_TOKEN_FILE)
            server = dataclasses.replace(server, admin_token=token)
    elif not server.admin_token:
        generated = True
        server = dataclasses.replace(server, admin_token=new_secret())
    return Prepared(
        dataclasses.replace(settings, server=server), secret_file, admin_file, generated, store_url
    )
