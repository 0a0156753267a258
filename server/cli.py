"""The ``hudong`` command: serve, verify-draw, report, bridge."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from server import __version__
from server.config import ConfigError, base_url, load_settings
from server.startup import Prepared, prepare

DESCRIPTION = (
    "hudong, the self-hosted real-time interaction server for live streams: serve runs a "
    "node; verify-draw checks a lucky draw from its audit record; report writes a room's "
    "event report (HTML, JSON, CSV); bridge brings a platform's chat into a room from a "
    "process of its own."
)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.backends import open_backends
    from server.serving import uvicorn_options

    flags = {
        "host": args.host,
        "port": args.port,
        "redis_url": args.redis,
        "public_url": args.public_url,
        "data_dir": args.data_dir,
        "memory": True if args.memory else None,
        "insecure_dev": True if args.insecure_dev else None,
    }
    try:
        prepared = prepare(load_settings(args.config, flags=flags))
    except ConfigError as exc:
        print(f"hudong: configuration error: {exc}", file=sys.stderr)
        return 2
    settings = prepared.settings
    try:
        backends = open_backends(prepared.store_url, prefix=settings.server.redis_prefix)
        app = create_app(settings, backends=backends, demo=args.demo)
    except ValueError as exc:
        print(f"hudong: configuration error: {exc}", file=sys.stderr)
        return 2
    _print_banner(prepared)
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("hudong.websocket").setLevel(logging.WARNING)
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        lifespan="on",
        log_level=settings.server.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.hub.shutdown_grace_s) or 1,
        backlog=4096,
        **uvicorn_options(settings),
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


def _print_banner(prepared: Prepared) -> None:
    settings = prepared.settings
    base = base_url(settings)
    ws = base.replace("http", "ws", 1)
    if settings.server.redis_url:
        backend = f"node {settings.server.node_id or ''} on {_redacted(settings.server.redis_url)}"
    elif prepared.store_url.startswith("sqlite://"):
        path = prepared.store_url.removeprefix("sqlite://")
        backend = f"embedded default (one process; rooms and results stored in {path})"
    else:
        backend = "memory backend (--memory: nothing is kept after this process exits)"
    lines = [
        f"hudong {__version__} — {backend}",
        f"  API        {base}/api/v1",
        f"  WebSocket  {ws}/ws  (subprotocols hudong.v1.json, hudong.v1.msgpack)",
        f"  health     {base}/healthz   ready {base}/readyz   metrics {base}/metrics",
    ]
    if prepared.secret_file is not None:
        lines.append(
            f"  secret     kept in {prepared.secret_file} (links stay valid after a restart)"
        )
    token = settings.server.admin_token
    bearer = f"'Authorization: Bearer {token}'"
    if prepared.admin_token_file is not None:
        lines.append(
            f"  admin token (generated once, kept in {prepared.admin_token_file}; "
            f"set HUDONG_ADMIN_TOKEN to choose one): {token}"
        )
    elif prepared.admin_token_generated:
        lines.append(
            f"  admin token (generated for this start; set HUDONG_ADMIN_TOKEN to choose one): "
            f"{token}"
        )
    elif os.environ.get("HUDONG_ADMIN_TOKEN") == token:
        lines.append("  admin token: from HUDONG_ADMIN_TOKEN")
        bearer = '"Authorization: Bearer $HUDONG_ADMIN_TOKEN"'
    else:
        lines.append("  admin token: from the config file")
        bearer = "'Authorization: Bearer <admin token>'"
    # No room id: the server picks a new one, so this works on any node, --demo or not.
    lines.append(
        f'  new room:  curl -s -X POST -H {bearer} {base}/api/v1/rooms -d \'{{"title":"My room"}}\''
    )
    print("\n".join(lines), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hudong", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"hudong {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="run a hub node (embedded default: a durable store in the data directory)"
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--config", help="TOML file of settings (see config/hudong.toml)")
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="base URL of the printed links and the wall's QR code, as phones reach this "
        "node, e.g. https://live.example.com (default: http://host:port; under --host "
        "0.0.0.0 or :: the machine's LAN address)",
    )
    serve.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the embedded default keeps its store (rooms, votes, draws), secret and "
        "admin token, so results and links outlive a restart (default: $XDG_DATA_HOME/hudong "
        "or ~/.local/share/hudong)",
    )
    serve.add_argument(
        "--memory",
        action="store_true",
        help="keep nothing on disk: rooms, results and the secret are gone when the "
        "process exits (for tests and throwaway demos)",
    )
    serve.add_argument(
        "--insecure-dev",
        action="store_true",
        help="allow an admin token under 16 characters (development on a machine no one "
        "else can reach; HUDONG_INSECURE_DEV=true)",
    )
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
        "redis+cluster://host:port (default: the embedded store in --data-dir)",
    )
    serve.set_defaults(func=_serve)
    verify = sub.add_parser(
        "verify-draw",
        help="recompute a lucky draw from its audit record and check it",
        description="Recompute a draw from the audit record that GET "
        "/api/v1/rooms/{room}/interactions/{draw}/audit exports: the seed must match the "
        "commitment published when the draw opened, the entrant list its hash, and the "
        "winners the recomputation. A viewer's record has digests of the entrant ids "
        "instead of the ids: the winners must be the entrants the seed picks, and --me "
        "finds your own entry. Exit status 0 when it holds, 1 when it does not.",
    )
    verify.add_argument("file", help="the audit record (JSON); - reads standard input")
    verify.add_argument("--commitment", help="the commitment you saw when the draw opened")
    verify.add_argument(
        "--me", metavar="USER_ID", help="your user id: check that you were among the entrants"
    )
    verify.set_defaults(func=_verify_draw)
    report = sub.add_parser(
        "report",
        help="write a room's event report: report.html, report.json and one CSV per interaction",
        description="Fetch GET /api/v1/rooms/{room}/report (as JSON and as a self-contained, "
        "printable HTML page) and each interaction's export as CSV, and write them to --out.",
    )
    report.add_argument("room", help="the room id")
    report.add_argument("--url", required=True, help="the node, e.g. http://127.0.0.1:8000")
    report.add_argument(
        "--token",
        default=os.environ.get("HUDONG_TOKEN"),
        help="the admin token or a host or moderator token of the room (default: $HUDONG_TOKEN)",
    )
    report.add_argument("--out", required=True, metavar="DIR", help="the folder to write to")
    report.add_argument("--lang", choices=("zh", "en"), default="zh", help="the HTML's language")
    report.set_defaults(func=_report)
    bridge = sub.add_parser(
        "bridge",
        help="bring a platform's chat into a room from a process of its own",
        description="Run one bridge (a platform and a channel) in this process and send its "
        "chat into the room over the WebSocket with a host token, as PROTOCOL.md, 'Bridges', "
        "describes. Credentials come from this process's configuration ([bridges]: --config, "
        "HUDONG_CONFIG, HUDONG_BRIDGES_*), never from the room.",
    )
    bridge.add_argument("room", help="the room id")
    bridge.add_argument("--url", required=True, help="the node, e.g. http://127.0.0.1:8000")
    bridge.add_argument("--platform", required=True, help="twitch, webhook, …")
    bridge.add_argument("--channel", required=True, help="the platform's channel id")
    bridge.add_argument(
        "--token",
        default=os.environ.get("HUDONG_TOKEN"),
        help="a host token of the room (default: $HUDONG_TOKEN)",
    )
    bridge.add_argument("--config", help="a TOML file with the [bridges] section")
    bridge.set_defaults(func=_bridge)
    return parser


def _bridge(args: argparse.Namespace) -> int:
    import asyncio

    from server.bridges.base import BridgeError
    from server.bridges.remote import RemoteBridge
    from server.bridges.runner import options_of, platforms

    if not args.token:
        print("hudong bridge: give --token or set HUDONG_TOKEN", file=sys.stderr)
        return 2
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"hudong bridge: {exc}", file=sys.stderr)
        return 2
    known = platforms()
    if args.platform not in known:
        print(f"hudong bridge: no platform {args.platform!r}; known: {', '.join(known)}")
        return 2
    try:
        adapter = known[args.platform](args.channel, options_of(settings, args.platform))
    except ValueError as exc:
        print(f"hudong bridge: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.server.log_level.upper())
    ws_url = args.url.rstrip("/").replace("http", "ws", 1) + "/ws"
    remote = RemoteBridge(
        adapter,
        ws_url,
        args.room,
        args.token,
        backoff_min_s=settings.bridges.backoff_min_s,
        backoff_max_s=settings.bridges.backoff_max_s,
    )
    try:
        asyncio.run(remote.run())
    except KeyboardInterrupt:
        return 0
    except BridgeError as exc:
        print(f"hudong bridge: {exc}", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from server.report_cli import run

    if not args.token:
        print("hudong report: give --token or set HUDONG_TOKEN", file=sys.stderr)
        return 2
    return run(args.url, args.token, args.room, args.out, args.lang)


def _verify_draw(args: argparse.Namespace) -> int:
    import json

    from server.draw_verification import verify_audit

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        record = json.loads(text)
    except (OSError, ValueError) as exc:
        print(f"hudong verify-draw: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    result = verify_audit(record, commitment=args.commitment, me=args.me)
    title = record.get("draw_id") if isinstance(record, dict) else None
    if result.ok:
        winners = ", ".join(result.winners or [])
        listed = record.get("entrants", record.get("entrant_digests", []))
        entrants = len(listed) if isinstance(record, dict) else 0
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
