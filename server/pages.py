"""The pages hudong serves itself: console, cockpit, viewer page, overlay and wall, their
scripts and styles, the JS client, and each room's join QR code (PROTOCOL.md, "Pages").

The pages are plain HTML, CSS and ES modules in ``clients/web`` built on the client
in ``clients/js``; nothing is built before serving. A venue may be offline, so a page
loads nothing from any other host, and every page is sent with a strict
Content-Security-Policy: scripts, styles, images and WebSocket connections from this
server only, no inline script except each page's import map, whose SHA-256 the policy
names. User text reaches the pages as data, and the pages render it as text.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import segno
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

import server
from protocol.messages import ROOM_ID_RE

# The wheel carries clients/ inside the server package (pyproject.toml, package-dir);
# a checkout or an editable install has it beside the package.
_PACKAGED = Path(server.__file__).resolve().parent / "clients"
_CHECKOUT = Path(server.__file__).resolve().parent.parent / "clients"
PAGES = ("console", "cockpit", "live", "overlay", "wall")
# Media types by suffix: module scripts must be served as JavaScript (with nosniff a
# browser refuses anything else), whatever the platform's mimetypes table says.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}
# The client library's own modules (clients/js/*.js, not its tests or node_modules):
# the only files of clients/js that are served.
CLIENT_MODULE_RE = re.compile(r"^[a-z][a-z0-9_-]*\.js$")
INLINE_SCRIPT_RE = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S)
# clients/web/kinds/index.js, as the server makes it from its registry (PATHS: the modules).
KINDS_INDEX = """\
// Made by the server from its registry of interaction kinds (server/pages.py).
const paths = PATHS;
const loaded = await Promise.allSettled(paths.map((path) => import(path)));
loaded.forEach((result, i) => {
  if (result.status === "rejected") console.error(`${paths[i]}:`, result.reason);
});
/** The kinds' page modules (their default exports), in the registry's order. */
export const KINDS = loaded.flatMap((result) =>
  result.status === "fulfilled" && result.value.default ? [result.value.default] : [],
);
/** The same modules by the name of their kind. */
export const BY_NAME = Object.fromEntries(KINDS.map((kind) => [kind.kind, kind]));
"""
URL_SAFE = ":/?#[]@!$&'()*+,;=%"  # what quote() leaves of a URL as it is
QR_KEEP = 256  # QR codes kept made, by URL (one per room and address it is asked under)
SAFE_PATH_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9_./-]{1,200}$")


def clients_dir() -> Path:
    for candidate in (_PACKAGED, _CHECKOUT):
        if (candidate / "web").is_dir():
            return candidate
    raise RuntimeError(
        f"hudong's pages are missing: neither {_PACKAGED} nor {_CHECKOUT} has web/ "
        "(reinstall hudong)"
    )


def content_security_policy(html: bytes, *, framed: bool) -> str:
    """The page's policy: everything from this server only; inline scripts only by hash."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
        for body in INLINE_SCRIPT_RE.findall(html)
    )
    ancestors = "*" if framed else "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {hashes}".rstrip(),
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            # Overlays and walls may be embedded by streaming and signage tools.
            f"frame-ancestors {ancestors}",
        ]
    )


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Page:
    """A page's HTML and the Content-Security-Policy it is sent with."""

    body: bytes
    policy: str


class KindPage(Protocol):
    """An interaction kind as the pages need it: its name and its page module's file
    (None: ``clients/web/kinds/<name>.js``)."""

    @property
    def name(self) -> str: ...
    @property
    def page(self) -> Path | None: ...


async def _any_room(room_id: str) -> bool:
    return True


class Pages:
    """Route handlers for the pages and their files."""

    def __init__(
        self,
        *,
        public_url: str = "",
        assets_dir: str = "",
        kinds: Iterable[KindPage] = (),
        room_exists: Callable[[str], Awaitable[bool]] = _any_room,
    ) -> None:
        root = clients_dir()
        self.web = root / "web"
        self.js = root / "js"
        # The base of the QR codes' links: the node's public URL, else its own address
        # (as the printed links); never the request's Host header, which the client picks.
        self.public_url = public_url.rstrip("/")
        self.room_exists = room_exists
        self._qr: dict[str, bytes] = {}  # URL -> SVG, oldest first
        self.assets = Path(assets_dir).resolve() if assets_dir else None
        self._pages: dict[str, Page] = {}
        self.kind_modules = {
            kind.name: kind.page or self.web / "kinds" / f"{kind.name}.js" for kind in kinds
        }

    def _page(self, name: str) -> Page:
        page = self._pages.get(name)
        if page is None:
            body = (self.web / f"{name}.html").read_bytes()
            framed = name in ("overlay", "wall")
            page = self._pages[name] = Page(body, content_security_policy(body, framed=framed))
        return page

    def _html(self, name: str) -> Response:
        page = self._page(name)
        headers = {**SECURITY_HEADERS, "Content-Security-Policy": page.policy}
        return Response(page.body, media_type=MEDIA_TYPES[".html"], headers=headers)

    async def console(self, request: Request) -> Response:
        return self._html("console")

    async def cockpit(self, request: Request) -> Response:
        return self._html("cockpit")

    async def live(self, request: Request) -> Response:
        return self._html("live")

    async def overlay(self, request: Request) -> Response:
        return self._html("overlay")

    async def wall(self, request: Request) -> Response:
        return self._html("wall")

    async def static(self, request: Request) -> Response:
        """A file of clients/web (``/static/…``) or a module of the client library
        (``/static/client/…``)."""
        path = request.path_params["path"]
        if path.endswith(".html"):
            # A page only with its policy and framing headers, as at its own route.
            name = path.removesuffix(".html")
            return self._html(name) if name in PAGES else _not_found(path)
        if path.startswith("client/"):
            name = path.removeprefix("client/")
            if not CLIENT_MODULE_RE.match(name):
                return _not_found(path)
            return _file(self.js / name)
        return _file_under(self.web, path)

    async def kind_module(self, request: Request) -> Response:
        """``/static/kinds/<name>.js``: a kind's page module (a plug-in's from where it
        lives), or ``index.js``, made from the registry: every kind the pages know."""
        name = request.path_params["name"]
        if name == "index":
            return Response(
                self.kinds_index(), media_type=MEDIA_TYPES[".js"], headers=SECURITY_HEADERS
            )
        found = self.kind_modules.get(name)
        if found is not None:
            return _file(found)
        return _file_under(self.web, f"kinds/{name}.js")

    def kinds_index(self) -> str:
        """``kinds/index.js`` made from the registry (what clients/web/registry.js reads):
        every kind's page module, loaded each on its own, so that one which fails to
        load (a plug-in's) leaves out that kind and nothing else."""
        paths = [f"/static/kinds/{n}.js" for n, path in self.kind_modules.items() if path.is_file()]
        return KINDS_INDEX.replace("PATHS", json.dumps(paths))

    async def asset(self, request: Request) -> Response:
        """A file of the configured ``server.assets_dir`` (logos, images of options)."""
        if self.assets is None:
            return _not_found(request.path_params["path"], "no server.assets_dir is set")
        return _file_under(self.assets, request.path_params["path"])

    async def qr(self, request: Request) -> Response:
        """An SVG QR code of the room's viewer page URL, for the wall and posters.

        Made once per URL (kept for the next :data:`QR_KEEP` URLs asked for) and off the
        event loop: making one takes milliseconds of CPU, and anyone may ask."""
        room_id = request.path_params["room_id"]
        if not ROOM_ID_RE.match(room_id):
            message = f"a room id matches {ROOM_ID_RE.pattern}, got {room_id[:40]!r}"
            return JSONResponse({"error": {"code": "invalid_field", "message": message}}, 400)
        if not await self.room_exists(room_id):
            message = f"no room {room_id!r}"
            return JSONResponse({"error": {"code": "room_not_found", "message": message}}, 404)
        target = f"{self.public_url}/live/{room_id}"
        svg = self._qr.get(target)
        if svg is None:
            svg = await run_in_threadpool(qr_svg, target)
            self._qr[target] = svg
            while len(self._qr) > QR_KEEP:
                del self._qr[next(iter(self._qr))]
        # A header carries Latin-1 only, and a configured host name may not be.
        shown = quote(target, safe=URL_SAFE)
        return Response(
            svg, media_type="image/svg+xml", headers={**SECURITY_HEADERS, "X-Hudong-Target": shown}
        )


def qr_svg(target: str) -> bytes:
    """The QR code of ``target`` as SVG (error correction M: posters get scuffed)."""
    out = io.BytesIO()
    segno.make(target, error="m").save(
        out, kind="svg", scale=10, border=2, xmldecl=False, dark="#000", light="#fff"
    )
    return out.getvalue()


def _not_found(path: str, why: str = "no such file") -> Response:
    return JSONResponse({"error": {"code": "not_found", "message": f"{why}: {path[:80]}"}}, 404)


def _file_under(base: Path, path: str) -> Response:
    if not SAFE_PATH_RE.match(path):
        return _not_found(path)
    target = (base / path).resolve()
    if not target.is_relative_to(base.resolve()):
        return _not_found(path)
    return _file(target)


def _file(target: Path) -> Response:
    media = MEDIA_TYPES.get(target.suffix.lower())
    if media is None or not target.is_file():
        return _not_found(target.name)
    return FileResponse(target, media_type=media, headers=SECURITY_HEADERS)
