"""Which web pages may use a node: the Origin allow-list for ``/ws`` and CORS (issue 15).

A browser names the page that opens a WebSocket in its ``Origin`` header, and CORS
decides which pages may read REST answers. Allowed by default:

- requests with no ``Origin``: not from a browser page (the Python and Node clients,
  the load tester, curl, a platform's server). Such a client can send any header it
  likes, so refusing it would stop no one;
- the node's own pages: an ``Origin`` whose host and port are the request's ``Host``
  (the console, the viewer page, and the overlay and wall, which OBS and signage
  players load from this node: their pages' origin is the node);
- ``server.public_url``'s origin (behind a TLS proxy the node may see another
  ``Host`` than the one phones use);
- every origin of ``server.allowed_origins`` (comma-separated ``scheme://host[:port]``;
  ``*`` for any): integrators' own sites that embed the JS client.

Why not open to any page, as before: with anonymous join, any page on the web could
make each of its visitors' browsers join a room and send danmaku, thousands of real
addresses that per-address limits cannot tell from viewers. Why not stricter: pages
served by the node and non-browser clients keep working with no setting; an
integrator's site is one line of configuration.

Refused WebSocket handshakes get 403; REST requests are not refused (a browser keeps a
refused page from reading the answer, and a token is needed for anything that
matters), but only allowed origins get CORS headers.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from server.config import Settings

DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case, without a default port."""
    scheme, _, rest = url.strip().lower().partition("://")
    authority = rest.split("/", 1)[0]
    default = DEFAULT_PORTS.get(scheme)
    if default is not None:
        authority = authority.removesuffix(default)
    return f"{scheme}://{authority}"


class Origins:
    """The Origin allow-list of a node: whether a page may open ``/ws``, and the CORS
    middleware for the pages listed."""

    def __init__(self, settings: Settings) -> None:
        listed = [o for o in settings.server.allowed_origins.split(",") if o.strip()]
        self.any = any(o.strip() == "*" for o in listed)
        self.listed = {origin_of(o) for o in listed if o.strip() != "*"}
        if settings.server.public_url:
            self.listed.add(origin_of(settings.server.public_url))

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a request with this ``Origin`` (None: none sent) and ``Host`` comes
        from a page allowed to use the node."""
        if origin is None or self.any:
            return True
        seen = origin_of(origin)
        if seen in self.listed:
            return True
        scheme, _, authority = seen.partition("://")
        if scheme not in DEFAULT_PORTS or not host:
            return False  # "null" (a sandboxed or file: page), or no Host to compare
        return authority == host.strip().lower().removesuffix(DEFAULT_PORTS[scheme])

    def refusal(self, origin: str | None, host: str | None) -> str | None:
        """Why a WebSocket handshake from this origin is refused; None: it is not."""
        if self.allows(origin, host):
            return None
        return (
            f"Forbidden: pages of {(origin or '')[:100]!r} may not connect here; "
            "add the origin to server.allowed_origins"
        )

    def cors(self) -> list[Middleware]:
        """CORS for the origins allowed besides the node's own (none: no CORS headers)."""
        if not self.any and not self.listed:
            return []
        return [
            Middleware(
                CORSMiddleware,
                allow_origins=["*"] if self.any else sorted(self.listed),
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=["Retry-After", "X-Hudong-Target"],
                max_age=600,
            )
        ]
