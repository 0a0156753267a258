"""``clients/js/protocol.d.ts``: the TypeScript types of protocol v1's messages and of
every interaction view, made from the protocol's tables and the registry of kinds.

    python -m server.js_types --write     # after changing a message, an op or a view

What comes from where: the protocol version, error and close codes, danmaku modes and
roles from ``protocol/``; the viewer commands (op, whether it names an interaction and
carries a key) and the host actions from the registry; each kind's spec and state
interfaces from its msgspec structs (their JSON schema); each view's members from the
kind's ``view_ts`` and ``types_ts`` (:class:`~server.interactions.kind.Kind`). So no
kind is named here, and a kind added to the registry (a plug-in too) gets its types.

``tests/test_js_types.py`` fails when the committed file is stale, and type-checks the
protocol vectors and real views of every kind against these types with ``tsc``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec

from protocol.codes import CLOSES, ERRORS
from protocol.messages import DANMAKU_MODES, PROTOCOL_VERSION
from server.auth import ROLES
from server.interactions.kind import Kind
from server.interactions.registry import Registry

PATH = Path(__file__).resolve().parent.parent / "clients" / "js" / "protocol.d.ts"
COMMAND = "python -m server.js_types --write"


def pascal(name: str) -> str:
    """``quiz_revealed`` -> ``QuizRevealed``: a kind's or an op's name as a type name."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


def union(values: Any) -> str:
    items = [_literal(v) for v in values]
    return " | ".join(items) if items else "never"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


def ts_type(schema: dict[str, Any], suffix: str = "") -> str:
    """A JSON schema (as msgspec writes one) as a TypeScript type; ``suffix`` is added to
    the names of the structs it refers to (``Input``: the forms a host writes)."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1] + suffix
    if "anyOf" in schema:
        return " | ".join(ts_type(s, suffix) for s in schema["anyOf"])
    if "enum" in schema:
        return union(schema["enum"])
    if "const" in schema:
        return _literal(schema["const"])
    kind = schema.get("type")
    if kind == "array":
        if "prefixItems" in schema:
            return "[" + ", ".join(ts_type(s, suffix) for s in schema["prefixItems"]) + "]"
        item = ts_type(schema.get("items", {}), suffix)
        return f"({item})[]" if "|" in item else f"{item}[]"
    if kind == "object":
        if "properties" in schema:
            return "{ " + " ".join(_members(schema, suffix)) + " }"
        extra = schema.get("additionalProperties")
        value = ts_type(extra, suffix) if isinstance(extra, dict) else "unknown"
        return f"Record<string, {value}>"
    return {
        "string": "string",
        "integer": "number",
        "number": "number",
        "boolean": "boolean",
        "null": "null",
    }.get(str(kind), "unknown")


def _sparse() -> set[str]:
    """The structs dumped without their default values (``omit_defaults``)."""
    names, todo = set(), [msgspec.Struct]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__struct_config__.omit_defaults:
            names.add(cls.__name__)
    return names


def _members(schema: dict[str, Any], suffix: str = "", sparse: bool = False) -> list[str]:
    """As sent (no suffix): a struct is dumped whole, so every field is there (defaults
    included), unless it is ``sparse`` (omit_defaults). As written (``Input``): a field
    with a default may be left out."""
    required = set(schema.get("required", ()))
    optional = bool(suffix) or sparse
    return [
        f"{name}{'' if not optional or name in required else '?'}: {ts_type(prop, suffix)};"
        for name, prop in schema["properties"].items()
    ]


def _interfaces(components: dict[str, Any], suffix: str = "") -> list[str]:
    out, sparse = [], _sparse()
    for name in sorted(components):
        schema = components[name]
        doc = str(schema.get("description", "")).split("\n\n")[0].replace("\n", " ")
        doc = doc.replace("``", "`").replace("*/", "* /")
        if doc:
            out.append(f"/** {doc} */")
        out.append(f"export interface {name}{suffix} {{")
        out.extend(f"  {member}" for member in _members(schema, suffix, name in sparse))
        out.append("}")
    return out


def structs(kinds: list[Kind[Any, Any]]) -> str:
    """Interfaces of the kinds' spec and state structs (and the structs they hold) as
    views send them, and of the specs of the kinds a host creates as it writes them
    (``…Input``, by kind in ``SpecsByKind``: what ``createInteraction`` takes)."""
    types = [t for kind in kinds for t in (kind.spec_type, kind.state_type)]
    _, components = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    specs = [kind.spec_type for kind in kinds if kind.builtin is None]
    _, written = msgspec.json.schema_components(specs, ref_template="#/$defs/{name}")
    out = _interfaces(components)
    out.append("\n// --- specs as a host writes them (a field with a default may be left out) --\n")
    out.extend(_interfaces(written, "Input"))
    out.append("/** The spec of each kind a host may create, as createInteraction takes it. */")
    out.append("export interface SpecsByKind {")
    out.extend(
        f"  {kind.name}: {kind.spec_type.__name__}Input;" for kind in kinds if kind.builtin is None
    )
    out.append("}")
    return "\n".join(out)


HEAD = """\
// Generated by `{command}` from protocol/ and the registry of interaction
// kinds (server/js_types.py); do not edit. tests/test_js_types.py checks it is current.
// The types of protocol v1 (protocol/PROTOCOL.md): commands, server messages, and the
// view of every interaction kind as the server sends it.

/** The protocol this client speaks: a `hello` whose `protocol` differs is refused. */
export type ProtocolVersion = {version};
export type ErrorCode = {errors};
export type CloseName = {closes};
export type DanmakuMode = {modes};
export type Role = {roles};
/** The interaction kinds of this server's registry. */
export type KindName = {kinds};
/** Viewer commands of the interaction kinds. */
export type ViewerOp = {ops};
/** Host actions on interactions (besides create, retract, mute, unmute, ban, unban, …). */
export type KindAction = {actions};

// --- commands (PROTOCOL.md, "Commands") ---------------------------------------------

interface CommandBase {{
  /** echoed in the ack or error: 0 … 2^53−1 */
  id?: number;
}}
export interface JoinCommand extends CommandBase {{
  op: "join";
  room: string;
  token?: string;
  name?: string;
  /** a language tag such as zh-CN */
  lang?: string;
}}
export interface DanmakuCommand extends CommandBase {{
  op: "danmaku";
  text: string;
  /** `#rrggbb` */
  color?: string;
  mode?: DanmakuMode;
}}
export interface PingCommand extends CommandBase {{
  op: "ping";
}}
/** After a gap in state messages: the room's snapshot, answered with a `snapshot`. */
export interface SnapshotCommand extends CommandBase {{
  op: "snapshot";
}}
/** A `hudong bridge` process's (host tokens only): one event of a platform's chat. */
export interface BridgeCommand extends CommandBase {{
  op: "bridge";
  platform: string;
  channel: string;
  event: Record<string, unknown>;
}}
export interface HostCommand extends CommandBase {{
  op: "host";
  action: string;
  [field: string]: unknown;
}}
"""

MESSAGES = """
// --- server messages (PROTOCOL.md, "Server messages") ----------------------------

export interface User {
  id: string;
  name: string;
  role: Role;
}
export interface DanmakuEvent {
  type: "danmaku";
  /** unique per node: `<node>.<n>` */
  id: string;
  user: User;
  /** user text: render it as text, never as HTML */
  text: string;
  /** `#rrggbb`, lower case */
  color: string;
  mode: DanmakuMode;
  /** ms since the Unix epoch */
  ts: number;
  /** merged duplicates (degrade level 1 and up) */
  count?: number;
}
/** A moderator took danmaku `id` back. */
export interface RetractEvent {
  type: "retract";
  id: string;
  ts: number;
}
/** Any other event of a batch (a kind's announcement: a draw's result, …). */
export interface OtherEvent {
  type: string;
  [field: string]: unknown;
}
export type BatchEvent = DanmakuEvent | RetractEvent | OtherEvent;
export interface Snapshot {
  room: {
    id: string;
    title: string;
    created_at: number;
    version: number;
    settings: Record<string, unknown>;
  };
  version: number;
  /** seq of the room's last batch on this node */
  seq: number;
  online: number;
  interactions?: Record<string, InteractionView>;
  /** the room's degrade level, 0–3 */
  degrade?: number;
  recent: DanmakuEvent[];
}
export interface HelloLimits {
  max_command_bytes: number;
  max_frame_bytes: number;
  max_text_chars: number;
  commands_per_s: number;
  command_burst: number;
}
export interface HelloMessage {
  type: "hello";
  /** the server's protocol: this client speaks ProtocolVersion */
  protocol: string;
  server: string;
  heartbeat_ms: number;
  limits: HelloLimits;
}
export interface JoinedMessage {
  type: "joined";
  id: number | null;
  you: User;
  snapshot: Snapshot;
  /** an anonymous viewer's (or renamed guest's) own token, to join with again */
  token?: string;
}
/**
 * An acknowledgement. Danmaku: `event`. Viewer commands: `version`, `duplicate`, and
 * what the kind adds. Host operations: `interaction`, `version`, `view` (+ `winners`).
 */
export interface AckMessage {
  type: "ack";
  id: number | null;
  version?: number;
  duplicate?: boolean;
  event?: string;
  [field: string]: unknown;
}
export interface ErrorMessage {
  type: "error";
  id: number | null;
  code: ErrorCode;
  message: string;
  retry_after_ms?: number;
  limit?: number;
  [field: string]: unknown;
}
export interface BatchMessage {
  type: "batch";
  room: string;
  seq: number;
  events: BatchEvent[];
}
/** Changes against a version (PROTOCOL.md, "State messages"): whole views in
 * `interactions`, RFC 7396 merge patches of views in `patches`, both against `base`. */
export interface StateMessage {
  type: "state";
  room: string;
  /** the version these changes apply to; absent from servers before deltas */
  base?: number;
  version: number;
  interactions: Record<string, InteractionView>;
  patches?: Record<string, Record<string, unknown>>;
}
export interface SnapshotMessage {
  type: "snapshot";
  snapshot: Snapshot;
  /** the `snapshot` command's id, when it answers one */
  id?: number;
}
export interface OnlineMessage {
  type: "online";
  room: string;
  online: number;
}
export interface PongMessage {
  type: "pong";
  id: number | null;
}
/** For this connection only: `draw_won`, `quiz_standing`, `degrade`, `keyword_alert`, … */
export interface NoticeMessage {
  type: "notice";
  kind: string;
  [field: string]: unknown;
}
export type ServerMessage =
  | HelloMessage
  | JoinedMessage
  | AckMessage
  | ErrorMessage
  | BatchMessage
  | StateMessage
  | SnapshotMessage
  | OnlineMessage
  | PongMessage
  | NoticeMessage;

// --- interaction views (PROTOCOL.md, "Views") --------------------------------------

/** What every view starts with. */
export interface ViewHead {
  id: string;
  kind: string;
  /** seconds since the Unix epoch */
  created_at: number;
}
"""


def _viewer_commands(registry: Registry) -> list[str]:
    out, names = [], []
    for op_name, op in registry.ops.items():
        name = f"{pascal(op_name)}Command"
        names.append(name)
        out.append(f"export interface {name} extends CommandBase {{")
        out.append(f"  op: {_literal(op_name)};")
        if op.targets == "interaction":
            out.append("  interaction: string;")
        if op.keyed:
            out.append("  /** the idempotency key: ^[A-Za-z0-9_.:-]{1,64}$ */")
            out.append("  key: string;")
        out.append("  [field: string]: unknown;")
        out.append("}")
    commands = [
        "JoinCommand",
        "DanmakuCommand",
        "PingCommand",
        "SnapshotCommand",
        "BridgeCommand",
        "HostCommand",
        *names,
    ]
    out.append("export type Command =\n  | " + "\n  | ".join(commands) + ";")
    return out


def _views(kinds: list[Kind[Any, Any]]) -> list[str]:
    out = []
    for kind in kinds:
        name = f"{pascal(kind.name)}View"
        out.append(f"/** The view of a {kind.name} ({type(kind).__module__}). */")
        out.append(f"export interface {name} extends ViewHead {{")
        out.append(f"  kind: {_literal(kind.name)};")
        out.append(f"  {kind.view_ts.strip()}")
        out.append("}")
        if kind.types_ts.strip():
            out.append(kind.types_ts.strip())
    out.append("/** Each kind's view, by kind name. */")
    out.append("export interface ViewsByKind {")
    out.extend(f"  {kind.name}: {pascal(kind.name)}View;" for kind in kinds)
    out.append("}")
    out.append("export type InteractionView = ViewsByKind[KindName];")
    out.append(
        "/** A listener for each kind's views, under the kind's name (HudongClient.on). */\n"
        "export type ViewEvents = {\n"
        "  [K in KindName]: (view: ViewsByKind[K], previous: ViewsByKind[K] | undefined)"
        " => void;\n};"
    )
    return out


def render(registry: Registry | None = None) -> str:
    registry = registry or Registry()
    kinds = list(registry)
    head = HEAD.format(
        command=COMMAND,
        version=_literal(PROTOCOL_VERSION),
        errors=union(e.name for e in ERRORS),
        closes=union(c.name for c in CLOSES),
        modes=union(DANMAKU_MODES),
        roles=union(ROLES),
        kinds=union(k.name for k in kinds),
        ops=union(registry.ops),
        actions=union(sorted(registry.actions)),
    )
    parts = [
        head,
        "\n".join(_viewer_commands(registry)),
        MESSAGES,
        "\n".join(_views(kinds)),
        "\n// --- the kinds' specs and states ----------------------------------------------\n",
        structs(kinds),
    ]
    return "\n".join(part.rstrip("\n") for part in parts) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--write"]:
        PATH.write_text(text, "utf-8")
        print(f"wrote {PATH}")
        return 0
    if argv[1:]:
        print(f"usage: {COMMAND} (or without --write: print it)", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover - command line
    raise SystemExit(main(sys.argv))
