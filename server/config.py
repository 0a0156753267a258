"""Settings: one typed object, read once and passed to ``create_app(settings)``.

Precedence, lowest first (README, "Configuration"):

1. the defaults below. The comment above each field is its documentation:
   ``config/hudong.toml`` and ``docs/configuration.md`` are generated from them
   (``python -m server.config_reference --write``; a test fails when either is stale),
   and server/config_checks.py holds each number to its range at start;
2. a TOML file given by ``--config`` or ``HUDONG_CONFIG``;
3. environment variables: ``HUDONG_<KEY>`` for the ``[server]`` section
   (``HUDONG_PORT``, ``HUDONG_ADMIN_TOKEN``) and ``HUDONG_<SECTION>_<KEY>`` for the
   others (``HUDONG_HUB_TICK_MS``);
4. command-line flags (``--host``, ``--port``, ``--public-url``, ``--data-dir``,
   ``--redis``, ``--memory``, ``--insecure-dev``).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has an unknown name or a value of the wrong type."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The ``[server]`` section: where the node listens, its secrets and its backends."""

    # Address to listen on (--host); 0.0.0.0 or :: listens on every interface.
    host: str = "127.0.0.1"
    # Port to listen on (--port).
    port: int = 8000
    # Opens every room and the admin API ('Authorization: Bearer <this>'). Empty: the
    # embedded default generates one and keeps it in data_dir; nodes on Redis generate
    # one at each start. Printed at start.
    admin_token: str = ""
    # Key that signs room tokens (HS256). Empty: the embedded default generates one
    # and keeps it in data_dir, so links stay valid across restarts; nodes on Redis
    # generate one at each start (give them all the same one).
    secret: str = ""
    # Name of this node in metrics and event ids. Empty: hostname and pid.
    node_id: str = ""
    # How much the node logs: debug, info, warning, error or critical.
    log_level: str = "info"
    # Base URL printed at start and used in links and the wall's QR code (--public-url);
    # empty: http://host:port, or http://<LAN address>:port when host is 0.0.0.0 or ::.
    public_url: str = ""
    # Where the embedded default keeps what outlives a restart: its store (hudong.db:
    # rooms, votes, draws, moderation), its secret and its admin token (--data-dir);
    # empty: $XDG_DATA_HOME/hudong, else ~/.local/share/hudong.
    data_dir: str = ""
    # Empty: the embedded default (the durable store in data_dir, one process).
    # redis://host:port/db for one Redis server, redis+cluster://host:port for a Redis
    # Cluster (--redis).
    redis_url: str = ""
    # true: keep nothing on disk, not even the secret (every room is gone at exit); for
    # tests and throwaway demos (--memory). Ignored with redis_url.
    memory: bool = False
    # Prefix of every Redis key and channel of this deployment.
    redis_prefix: str = "hudong:"
    # A folder served at /assets/ (a venue's logo, images of co-design options);
    # empty: none. The pages load images only from this server.
    assets_dir: str = ""
    # Interaction kinds of your own, beside the built-in ones: module:attribute of each
    # (comma-separated), importable by the server; empty: none.
    kinds: str = ""
    # Exposure (issue 15). true: start with an admin token under 16 characters
    # (--insecure-dev; never on a network others can reach).
    insecure_dev: bool = False
    # Origins (scheme://host[:port], comma-separated; * for any) whose pages may open
    # /ws and call the REST API (CORS), beside the node's own pages and public_url's.
    # Clients that send no Origin (not a browser page) are allowed; other pages get 403
    # on /ws. An integrator that embeds the JS client in its own site lists that site.
    allowed_origins: str = ""
    # /metrics asks for 'Authorization: Bearer <this>' (Prometheus: authorization:
    # {credentials: ...}); empty: open to anyone.
    metrics_token: str = ""
    # true: a few metrics labelled by room (viewers, danmaku, contributions on this
    # node; docs/metrics.md), for at most metrics_room_labels_max rooms at a time; the
    # rooms past it share room="_other". false: nothing is labelled by room.
    metrics_room_labels: bool = False
    metrics_room_labels_max: int = 50
    # --- privacy (issue 15, PROTOCOL.md "Privacy") ---
    # true: a viewer token's outside id (an integrator's sub, a platform id) is kept and
    # shown as its keyed hash, p-…, derived from secret (README, "Privacy").
    pseudonymous_ids: bool = True


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """The ``[limits]`` section: sizes and rates a client is held to."""

    # A frame over this closes the connection with 1009 (message_too_big).
    max_frame_bytes: int = 65536
    # A command over this gets error frame_too_large; the connection stays.
    max_command_bytes: int = 4096
    # The longest danmaku text, in characters after cleaning.
    max_text_chars: int = 100
    # Token bucket per connection: viewers and screens.
    viewer_commands_per_s: float = 5.0
    viewer_command_burst: int = 10
    # Token bucket per connection: hosts and moderators.
    staff_commands_per_s: float = 500.0
    staff_command_burst: int = 1000
    # Token bucket per room for danmaku from all senders on this node.
    room_danmaku_per_s: float = 1000.0
    room_danmaku_burst: int = 2000
    # A connection that has not joined a room by then is closed with 4001.
    join_timeout_s: float = 10.0
    # Per client address: QR codes, reports, exports and draw audits (they cost CPU);
    # over it, 429 rate_limited with Retry-After.
    heavy_requests_per_s: float = 5.0
    heavy_request_burst: int = 20
    # The audit log (issue 15): the newest entries kept per room, older ones dropped.
    audit_log_keep: int = 10000
    # HTTP (issue 15). A request body over this is refused with 413 while it streams in.
    max_body_bytes: int = 65536
    # A connection must send a whole request head within header_timeout_s of opening
    # (or of its first byte, for the next request on a kept-alive one), and the body
    # within body_timeout_s of the head; an idle kept-alive one is closed after
    # idle_timeout_s; a late head or body gets 408 and the connection is closed. Over
    # max_http_connections open HTTP connections (not counting WebSockets), a new one
    # gets 503 and is closed.
    http_header_timeout_s: float = 10.0
    http_body_timeout_s: float = 30.0
    http_idle_timeout_s: float = 5.0
    max_http_connections: int = 10000
    # Per client address, every endpoint that needs no token (pages, their files, QR
    # codes, health, metrics); over it: 429 rate_limited with Retry-After; 0: no limit.
    # A phone's first load of the viewer page is about 30 requests; behind a proxy or a
    # venue's NAT every phone has one address: raise it, or limit at the proxy.
    public_requests_per_s: float = 200.0
    public_request_burst: int = 1000
    # Wrong admin (or room) tokens per client address before each further request from
    # it that a token must open waits, 429 for a time that doubles (1 s, 2 s, 4 s ...) up
    # to 5 minutes, the right admin token too; valid room tokens and other addresses go on.
    failed_logins_allowed: int = 5
    # Caps on what one client, viewer or room may hold (issue 15; PROTOCOL.md, "Limits").
    # true: a room's danmaku budget (room_danmaku_per_s, _burst) is split evenly among the
    # client addresses that sent in the last 2 s; false: first come, first served (a
    # venue where nearly everyone shares one address, or nodes behind a proxy they do
    # not trust: FORWARDED_ALLOW_IPS, PROTOCOL.md "Limits").
    room_danmaku_fair: bool = True
    # WebSocket connections per client address on a node; 0: no cap (the default, for
    # venues behind one NAT and nodes behind an untrusted proxy). Over it: HTTP 429 on
    # the upgrade.
    connections_per_address: int = 0
    # Connections of one viewer identity (one token) to one room on a node; they share
    # one command rate. 0: no cap.
    connections_per_viewer: int = 5
    # Commands per second from one client address (all its connections together, on a
    # node), bursts of twice that; 0: no such limit (the default, as for connections).
    commands_per_address_per_s: float = 0.0
    # Interactions per room, the built-in ones not counted; over it: limit_reached.
    # 0: no cap.
    interactions_per_room: int = 100
    # The largest `joined` snapshot a room may need; a host change that would make it
    # larger is refused with limit_reached. 0: no cap.
    max_joined_bytes: int = 1048576
    # Rooms on the deployment; creating one more answers 409 limit_reached. 0: no cap.
    max_rooms: int = 10000
    # Records of minted tokens kept per room (each expires with its token); past it,
    # the oldest are forgotten.
    tokens_kept_per_room: int = 1000
    # Text filter (issue 15, server/moderation/): the node's blocklist file (empty: the
    # config/blocklist.txt beside the code), and how long the same text from the same
    # viewer again is refused as a duplicate (0: never).
    blocklist_path: str = ""
    duplicate_window_s: float = 10.0


@dataclass(frozen=True, slots=True)
class HubSettings:
    """The ``[hub]`` section: ticks, buffers, heartbeats and degrade levels."""

    # One batch per room per tick: what happened in a room in this many ms goes to its
    # viewers in one frame.
    tick_ms: int = 100
    # Danmaku kept per room for snapshots of late joiners.
    replay_size: int = 50
    # With other nodes: send this node's room traffic to them at most once per this
    # many ms (the first event after a pause at once). Each send is one Redis round
    # trip, whatever it carries, and waits up to this long; 0: whenever not sending.
    relay_ms: int = 25
    # On a busy node (from read_batch_from reads a second, under read_batch_until),
    # what a connection sends waits up to this many ms (or until the next tick) and is
    # read with everyone else's: handling danmaku in a row costs about half the CPU of
    # handling each as it comes; answers (acks, pongs) come that much later. Denser
    # reads (a vote burst) reach the loop together anyway: not held. 0: never held.
    read_batch_ms: int = 50
    read_batch_from: float = 100.0
    read_batch_until: float = 2000.0
    # Per-connection write buffer: over high, stream batches are skipped for that
    # connection; once it drains under low it gets a fresh snapshot.
    write_buffer_high_bytes: int = 262144
    write_buffer_low_bytes: int = 65536
    # A connection still over its high-water mark after this is closed with 4008.
    slow_timeout_s: float = 10.0
    # WebSocket ping interval. 25 s as Centrifugo and Socket.IO ping: each ping and pong
    # costs the node about 28 us, so this is most of what an idle viewer costs
    # (BENCHMARKS.md, "Idle viewers"); mobile NATs keep a mapping longer than that.
    heartbeat_s: float = 25.0
    # A connection that sent nothing (not even a pong) for this long is closed with 4009.
    heartbeat_timeout_s: float = 45.0
    # On SIGTERM: how long to wait for clients to close after telling them to reconnect.
    shutdown_grace_s: float = 5.0
    # Degrade levels: the lowest level this node runs at (0-3; the admin can change it
    # at run time), and how long signals must stay calm before relaxing one level.
    degrade_floor: int = 0
    degrade_relax_after_s: float = 10.0
    # How long pressure on time (loop lag, tick duration, ingest, store latency) must
    # last, every once-a-second sample calling for the level, before the level rises:
    # one late tick or lag sample is caught up, not answered by dropping. Memory marks
    # (bytes waiting in send buffers) and an unreachable store act at once.
    degrade_sustain_s: float = 2.0
    # false: signals are measured and shown, but only floors change the level.
    degrade_auto: bool = True
    # Accept a client's permessage-deflate offer (RFC 7692, without context takeover):
    # each batch is compressed once and the same frame written to every connection
    # that negotiated it. false: no extension is negotiated, every frame is plain.
    permessage_deflate: bool = True


@dataclass(frozen=True, slots=True)
class TwitchBridgeSettings:
    """The ``[bridges.twitch]`` section: how Twitch bridges read chat."""

    # The IRC-over-WebSocket endpoint of Twitch chat (server/bridges/twitch.py).
    url: str = "wss://irc-ws.chat.twitch.tv:443"
    # An OAuth token (chat:read) and the login it belongs to; empty: read anonymously as
    # justinfan12345, which public channels allow.
    token: str = ""
    login: str = ""


@dataclass(frozen=True, slots=True)
class WebhookBridgeSettings:
    """The ``[bridges.webhook]`` section: the generic webhook that any chat can post to."""

    # The shared secret of the X-Hudong-Signature HMAC-SHA256; empty: webhook bridges
    # refuse every post.
    secret: str = ""
    # A post whose X-Hudong-Timestamp is further than this from the node's clock is
    # refused (a recorded request cannot be replayed later).
    max_skew_s: float = 300.0


@dataclass(frozen=True, slots=True)
class BiliBridgeSettings:
    """The ``[bridges.bili]`` section: how Bilibili bridges reach its danmaku server."""

    # The danmaku WebSocket of Bilibili bridges (server/bridges/bilibili.py):
    # wss://<host>:<wss_port>/sub of a host in the host_list of Bilibili's getDanmuInfo
    # API (bilibili-API-collect, docs/live/message_stream.md). Credentials go in this
    # section, never in a room's record.
    url: str = "wss://broadcastlv.chat.bilibili.com/sub"
    # The Bilibili account (mid) the bridges sign in as, and the key (getDanmuInfo's
    # token, fetched with that account's cookie) sent in the auth packet. 0 and empty: a
    # guest, to whom Bilibili shows every sender's uid as 0 and names masked with *;
    # senders are then told apart by a hash of their uid.
    uid: int = 0
    key: str = ""
    # A heartbeat every this many seconds (the server drops a connection silent for 60 s);
    # a connection that hears nothing for 2.5 heartbeats is taken for dead and reopened.
    heartbeat_s: float = 30.0
    # How long to wait for the WebSocket to open and for the auth reply.
    connect_timeout_s: float = 10.0
    # The largest WebSocket message read, and the most bytes the compressed batches of one
    # message may inflate to (a small compressed body cannot make a large one); past
    # either, the connection is reopened or the batch is skipped.
    max_message_bytes: int = 1048576
    max_inflated_bytes: int = 4194304


@dataclass(frozen=True, slots=True)
class BridgesSettings:
    """The ``[bridges]`` section: platform chats in rooms (secrets: ``[bridges.<platform>]``)."""

    # Reconnecting after an error: a full-jitter backoff, a random wait up to
    # min(backoff_max_s, backoff_min_s * 2^attempt).
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    # Which node runs a bridge: a lease in the store (server/bridges/lease.py), renewed by
    # its owner every renew_s and lasting lease_s; a node that sees a lease lapse claims it
    # and runs the bridge from its cursor. lease_s is the longest a bridge stays unread when
    # its node dies (plus renew_s); keep it at least twice renew_s, and above the nodes'
    # clock skew.
    lease_s: float = 15.0
    renew_s: float = 5.0
    # Leases are checked every renew_s in the rooms this node serves (one found without a
    # bridge: again lease_s - renew_s later, still in time to take over one added since),
    # and in every room at start and every scan_all_s (so that a bridge of a room with no
    # one on any node is taken over too; 0: only at start).
    scan_all_s: float = 60.0
    twitch: TwitchBridgeSettings = field(default_factory=TwitchBridgeSettings)
    webhook: WebhookBridgeSettings = field(default_factory=WebhookBridgeSettings)
    bili: BiliBridgeSettings = field(default_factory=BiliBridgeSettings)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of a node, read once and passed to ``create_app``."""

    server: ServerSettings = field(default_factory=ServerSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    hub: HubSettings = field(default_factory=HubSettings)
    bridges: BridgesSettings = field(default_factory=BridgesSettings)

    def replace(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys of some sections changed: ``replace(hub={"tick_ms": 50})``,
        ``replace(bridges={"bili": {"uid": 1}})``."""
        return _merge(self, {k: dict(v) for k, v in sections.items()}, "argument")


# Every section; a dotted one is a table inside a table ([bridges.bili]), an attribute of
# an attribute of Settings (section_of).
SECTIONS = (
    "server",
    "limits",
    "hub",
    "bridges",
    "bridges.twitch",
    "bridges.webhook",
    "bridges.bili",
)


def section_of(settings: Settings, section: str) -> Any:
    """The settings object of one section: ``section_of(s, "bridges.bili")``."""
    found: Any = settings
    for part in section.split("."):
        found = getattr(found, part)
    return found


def _with_section(holder: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(holder, **{path[0]: value})
    inner = _with_section(getattr(holder, path[0]), path[1:], value)
    return dataclasses.replace(holder, **{path[0]: inner})


def _parent(section: str) -> bool:
    return any(s == section or s.startswith(section + ".") for s in SECTIONS)


def setting_fields(values: Any) -> list[dataclasses.Field[Any]]:
    """A section's settings, without the sections inside it (``bridges.bili``)."""
    return [
        f for f in dataclasses.fields(values) if not dataclasses.is_dataclass(f.default_factory)
    ]


def _flatten(overlay: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    """A TOML document's tables by section name: {"bridges": {"bili": {...}}} gives
    {"bridges.bili": {...}}."""
    out: dict[str, Any] = {}
    for name, values in overlay.items():
        section = f"{prefix}{name}"
        if section in SECTIONS and isinstance(values, Mapping):
            # Its own keys; the tables of its sections ([bridges] and [bridges.bili]) apart.
            inner = {
                k: v
                for k, v in values.items()
                if _parent(f"{section}.{k}") or isinstance(v, Mapping)  # a table: a section
            }
            out[section] = {k: v for k, v in values.items() if k not in inner}
            out.update(_flatten(inner, source, section + "."))
        elif section in SECTIONS:
            out[section] = values
        elif any(s.startswith(section + ".") for s in SECTIONS):
            if not isinstance(values, Mapping):
                raise ConfigError(f"{source}: [{section}] must be a table")
            out.update(_flatten(values, source, section + "."))
        else:
            raise ConfigError(
                f"{source}: unknown section [{section}]; known: {', '.join(SECTIONS)}"
            )
    return out


def _convert(value: Any, target: type, where: str) -> Any:
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
    elif target is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif target is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif target is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{where}: expected {target.__name__}, got {value!r}")


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _merge(settings: Settings, overlay: Mapping[str, Any], source: str) -> Settings:
    for section, values in _flatten(overlay, source).items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
        current = section_of(settings, section)
        fields = {f.name: f for f in setting_fields(current)}
        updates = {}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(
                    f"{source}: unknown setting {section}.{key}; known: {', '.join(fields)}"
                )
            ftype = fields[key].type
            target = _TYPES[ftype if isinstance(ftype, str) else ftype.__name__]
            updates[key] = _convert(value, target, f"{source}: {section}.{key}")
        settings = _with_section(
            settings, section.split("."), dataclasses.replace(current, **updates)
        )
    return settings


def base_url(settings: Settings) -> str:
    """The node's base URL for links: ``server.public_url``, else http://host:port."""
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


def node_name(settings: Settings) -> str:
    """This node's name in metrics, event ids and the store: ``server.node_id``, else
    the host name and process id."""
    return settings.server.node_id or f"{socket.gethostname()}-{os.getpid()}"


def env_name(section: str, key: str) -> str:
    """The environment variable of a setting: HUDONG_PORT, HUDONG_HUB_TICK_MS,
    HUDONG_BRIDGES_BILI_KEY."""
    return (
        f"HUDONG_{key.upper()}"
        if section == "server"
        else f"HUDONG_{section.upper().replace('.', '_')}_{key.upper()}"
    )


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    environ = os.environ if environ is None else environ
    settings = Settings()
    path = config_file or environ.get("HUDONG_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        settings = _merge(settings, data, str(path))
    from_env: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        for f in setting_fields(section_of(settings, section)):
            name = env_name(section, f.name)
            if name in environ:
                from_env.setdefault(section, {})[f.name] = environ[name]
    settings = _merge(settings, from_env, "environment")
    if flags:
        settings = _merge(
            settings, {"server": {k: v for k, v in flags.items() if v is not None}}, "flags"
        )
    return settings
