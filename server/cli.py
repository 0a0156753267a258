"""The ``hudong`` command."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence

from server import __version__
from server.config import ConfigError, Settings, base_url, load_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.auth import new_secret
    from server.hub import Connection

    try:
        settings = load_settings(
            args.config, flags={"host": args.host, "port": args.port, "redis_url": args.redis}
        )
    except ConfigError as exc:
        print(f"hudong: configuration error: {exc}", file=sys.stderr)
        return 2
    generated = not settings.server.admin_token
    if generated:
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, admin_token=new_secret())
        )
    try:
        app = create_app(settings, demo=args.demo)
    except ValueError as exc:
        print(f"hudong: configuration error: {exc}", file=sys.stderr)
        return 2
    _print_banner(settings, generated)
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("hudong.websocket").setLevel(logging.WARNING)
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        http="httptools",
        ws=Connection,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        lifespan="on",
        log_level=settings.server.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.hub.shutdown_grace_s) or 1,
        backlog=4096,
    )
    _server_class()(config).run()
    return 0


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, exiting 0 after a clean drain on SIGTERM."""

        def handle_exit(self, sig: int, frame: object) -> None:
            super().handle_exit(sig, frame)  # type: ignore[arg-type]
            # uvicorn re-raises the signal after shutting down; a node that drained
            # cleanly on SIGTERM exits 0 instead, so supervisors see a clean stop.
            self._captured_signals.clear()

    return Server


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def _print_banner(settings: Settings, generated: bool) -> None:
    base = base_url(settings)
    ws = base.replace("http", "ws", 1)
    lines = [
        f"hudong {__version__} — "
        + (
            f"node {settings.server.node_id or ''} on {_redacted(settings.server.redis_url)}"
            if settings.server.redis_url
            else "embedded default (memory backend, one process)"
        ),
        f"  API        {base}/api/v1",
        f"  WebSocket  {ws}/ws  (subprotocols hudong.v1.json, hudong.v1.msgpack)",
        f"  health     {base}/healthz   ready {base}/readyz   metrics {base}/metrics",
    ]
    if generated:
        lines.append(
            f"  admin token (generated; set HUDONG_ADMIN_TOKEN to choose one): "
            f"{settings.server.admin_token}"
        )
    else:
        lines.append("  admin token: from HUDONG_ADMIN_TOKEN / config")
    lines.append(
        f"  try: curl -s -X POST -H 'Authorization: Bearer <admin token>' "
        f'{base}/api/v1/rooms -d \'{{"id":"demo"}}\''
    )
    print("\n".join(lines), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hudong", description=__doc__)
    parser.add_argument("--version", action="version", version=f"hudong {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a hub node (embedded default: memory backend)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--config", help="TOML file of settings (see config/hudong.toml)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="make a demo room with a poll, a co-design, a draw and a Q&A, and print the "
        "URLs of its console, viewer page, overlay and wall",
    )
    serve.add_argument(
        "--redis",
        metavar="URL",
        help="share rooms with other nodes through Redis: redis://host:port/db or "
        "redis+cluster://host:port (default: embedded memory backend)",
    )
    serve.set_defaults(func=_serve)
    verify = sub.add_parser(
        "verify-draw",
        help="recompute a lucky draw from its audit record and check it",
        description="Recompute a draw from the audit record that GET "
        "/api/v1/rooms/{room}/interactions/{draw}/audit exports: the seed must match the "
        "commitment published when the draw opened, the entrant list its hash, and the "
        "winners the recomputation. Exit status 0 when it holds, 1 when it does not.",
    )
    verify.add_argument("file", help="the audit record (JSON); - reads standard input")
    verify.add_argument("--commitment", help="the commitment you saw when the draw opened")
    verify.set_defaults(func=_verify_draw)
    return parser


def _verify_draw(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from server.draw_verification import verify_audit

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        record = json.loads(text)
    except (OSError, ValueError) as exc:
        print(f"hudong verify-draw: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    result = verify_audit(record, commitment=args.commitment)
    title = record.get("draw_id") if isinstance(record, dict) else None
    if result.ok:
        winners = ", ".join(result.winners or [])
        entrants = len(record.get("entrants", [])) if isinstance(record, dict) else 0
        print(f"OK: draw {title or ''} holds: {entrants} entrants, winners {winners}")
        return 0
    print(f"FAILED: draw {title or ''} does not hold:")
    for problem in result.problems:
        print(f"  - {problem}")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
