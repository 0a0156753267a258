// A minimal client for hudong protocol v1 (protocol/PROTOCOL.md).
//
// One HudongClient is one WebSocket connection to a node's /ws, joined to at most
// one room. Commands carry an increasing integer `id` and their promises settle
// on the reply with that id (PROTOCOL.md, "Commands"); everything else the server
// sends (batches, snapshots) arrives as events. The WebSocket constructor is
// injectable, so the same module runs in browsers (the global WebSocket) and in
// Node (the `ws` package), and tests can drive it with a fake socket.
//
// Reconnecting is not done here yet; the pieces it will need are in place: the
// state machine returns to DISCONNECTED after every close and connect() may be
// called again, close events say whether to reconnect (CLOSE_BY_CODE), handlers
// of a replaced socket are ignored, and join() remembers its arguments.

import { codecFor } from "./codec.js";
import { CLOSE_BY_CODE, ERRORS } from "./codes.js";

export { CLOSES, CLOSE_BY_CODE, ERRORS } from "./codes.js";
export { CODECS, JSON_CODEC, MSGPACK_CODEC, codecFor } from "./codec.js";

/** @typedef {import("./codec.js").Codec} Codec */

/**
 * The connection's state. Transitions:
 * DISCONNECTED → CONNECTING (connect()) → CONNECTED (the server's `hello` arrived)
 * → CLOSING (close()) → DISCONNECTED; any state → DISCONNECTED when the socket closes.
 */
export const ConnectionState = Object.freeze({
  DISCONNECTED: "disconnected",
  CONNECTING: "connecting",
  CONNECTED: "connected",
  CLOSING: "closing",
});

/** @typedef {typeof ConnectionState[keyof typeof ConnectionState]} ConnectionStateValue */

/** The largest command id (PROTOCOL.md, "Commands": 0 … 2^53−1). */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

/** How long connect(), commands and close() wait by default. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Error codes this client raises itself; the server's are in ERRORS (codes.js).
 * `retry` has the meaning of ERRORS: whether the same command may succeed later.
 * A command that timed out or was cut off by a close may have been applied.
 */
export const CLIENT_ERRORS = Object.freeze({
  timeout: { retry: true, description: "no answer within the client's timeoutMs" },
  disconnected: { retry: true, description: "the client is not connected, or the connection closed before the answer" },
  transport_error: { retry: true, description: "the WebSocket reported an error" },
  bad_frame: { retry: false, description: "a server frame could not be decoded, or had the wrong frame type" },
});

/** Event types inside batches that get their own listener type (PROTOCOL.md, "Events in batches"). */
const BATCH_EVENT_TYPES = new Set(["danmaku"]);

/**
 * Close codes that are not in the protocol's table but that a browser or the
 * network produces (RFC 6455 section 7.4.1).
 * @type {Record<number, {name: string, reconnect: boolean}>}
 */
const TRANSPORT_CLOSES = {
  1001: { name: "going_away", reconnect: true },
  1005: { name: "no_status", reconnect: true },
  1006: { name: "abnormal_closure", reconnect: true },
};

// --- message types (PROTOCOL.md, "Server messages") ------------------------------------

/**
 * @typedef {object} User
 * @property {string} id
 * @property {string} name
 * @property {"host"|"moderator"|"viewer"|"screen"} role
 */
/**
 * @typedef {object} DanmakuEvent
 * @property {"danmaku"} type
 * @property {string} id      unique per node: `<node>.<n>`
 * @property {User} user
 * @property {string} text    user text: render it as text, never as HTML
 * @property {string} color   `#rrggbb`, lower case
 * @property {"scroll"|"top"|"bottom"} mode
 * @property {number} ts      ms since the Unix epoch
 */
/**
 * @typedef {object} Snapshot
 * @property {{id: string, title: string, created_at: number, version: number, settings: Record<string, unknown>}} room
 * @property {number} version
 * @property {number} seq       seq of the room's last batch
 * @property {number} online
 * @property {DanmakuEvent[]} recent
 */
/**
 * @typedef {object} HelloMessage
 * @property {"hello"} type
 * @property {string} protocol   "hudong.v1"
 * @property {string} server
 * @property {number} heartbeat_ms
 * @property {{max_command_bytes: number, max_frame_bytes: number, max_text_chars: number, commands_per_s: number, command_burst: number}} limits
 */
/** @typedef {{type: "joined", id: number, you: User, snapshot: Snapshot}} JoinedMessage */
/** @typedef {{type: "ack", id: number, event?: string}} AckMessage */
/** @typedef {{type: "pong", id: number}} PongMessage */
/** @typedef {{type: "error", id: number|null, code: string, message: string, retry_after_ms?: number, limit?: number}} ErrorMessage */
/** @typedef {{type: "batch", room: string, seq: number, events: Array<DanmakuEvent | {type: string}>}} BatchMessage */
/** @typedef {{type: "snapshot", snapshot: Snapshot}} SnapshotMessage */

/**
 * What a close event reports.
 * @typedef {object} CloseInfo
 * @property {number} code        the WebSocket close code
 * @property {string} reason
 * @property {string} name        the code's name in CLOSES (codes.js), a transport name
 *                                (going_away, no_status, abnormal_closure) or "unknown"
 * @property {boolean} reconnect  whether reconnecting with the same credentials can
 *                                succeed; false after close() and for unknown codes
 * @property {boolean} byClient   close() was called on this client
 * @property {boolean} wasClean   the closing handshake completed
 */

/**
 * Listener signatures, by event type.
 * @typedef {object} HudongEvents
 * @property {(state: ConnectionStateValue, previous: ConnectionStateValue) => void} state
 * @property {(hello: HelloMessage) => void} hello
 * @property {(joined: JoinedMessage) => void} joined
 * @property {(snapshot: Snapshot, message: JoinedMessage | SnapshotMessage) => void} snapshot
 *   the room to draw: after join, after a change of the room, after a slow connection drained
 * @property {(batch: BatchMessage) => void} batch
 * @property {(event: {type: string}, batch: BatchMessage) => void} event  every event of every batch
 * @property {(event: DanmakuEvent, batch: BatchMessage) => void} danmaku
 * @property {(message: {type: string}) => void} message  every decoded server message
 * @property {(error: HudongError) => void} error
 *   an error that answers no pending command: an `error` with id null or an unknown
 *   id, an undecodable frame, a transport error
 * @property {(info: CloseInfo) => void} close
 */

/**
 * An `error` from the server (`code` in ERRORS) or from this client (`code` in CLIENT_ERRORS).
 */
export class HudongError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{id?: number|null, retryAfterMs?: number, limit?: number, reply?: ErrorMessage, close?: CloseInfo, cause?: unknown}} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "HudongError";
    /** @type {string} */
    this.code = code;
    const entry = Object.hasOwn(ERRORS, code)
      ? ERRORS[/** @type {keyof typeof ERRORS} */ (code)]
      : Object.hasOwn(CLIENT_ERRORS, code)
        ? CLIENT_ERRORS[/** @type {keyof typeof CLIENT_ERRORS} */ (code)]
        : undefined;
    /** Whether the same command may succeed later. */
    this.retry = entry ? entry.retry : false;
    /** The id of the command this answers, or null. */
    this.id = details.id ?? null;
    /** For rate_limited and room_rate_limited: when to try again. */
    this.retryAfterMs = details.retryAfterMs;
    /** For text_too_long and frame_too_large: the limit. */
    this.limit = details.limit;
    /** The server's `error` message, when there was one. */
    this.reply = details.reply;
    /** For `disconnected`: the close that cut the command off. */
    this.close = details.close;
  }

  /** @param {ErrorMessage} reply */
  static fromReply(reply) {
    return new HudongError(String(reply.code), String(reply.message ?? reply.code), {
      id: reply.id,
      retryAfterMs: reply.retry_after_ms,
      limit: reply.limit,
      reply,
    });
  }
}

/**
 * @typedef {object} HudongClientOptions
 * @property {"json"|"msgpack"} [protocol]  default "json"
 * @property {Codec} [codec]                overrides `protocol`
 * @property {typeof globalThis.WebSocket | (new (url: string | URL, protocols?: string[]) => any)} [WebSocket]
 *   the WebSocket constructor; default globalThis.WebSocket (Node: pass the `ws` package's)
 * @property {number} [timeoutMs]           bound on connect(), each command and close(); default 10 s
 */

/**
 * @typedef {object} Pending
 * @property {string} op
 * @property {(message: any) => void} resolve
 * @property {(error: HudongError) => void} reject
 * @property {ReturnType<typeof setTimeout>} timer
 */

export class HudongClient {
  /**
   * @param {string | URL} url  the node's WebSocket endpoint, e.g. "wss://live.example.com/ws"
   * @param {HudongClientOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url;
    /** @type {Readonly<Codec>} */
    this.codec = options.codec ?? codecFor(options.protocol ?? "json");
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WebSocketImpl !== "function") {
      throw new TypeError(
        "no WebSocket constructor: pass {WebSocket} (in Node: import WebSocket from \"ws\")",
      );
    }
    this._WebSocket = WebSocketImpl;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

    /** @type {ConnectionStateValue} */
    this._state = ConnectionState.DISCONNECTED;
    /** @type {any} the current WebSocket; events of any other are stale and ignored */
    this._ws = null;
    this._nextId = 1;
    /** @type {Map<number, Pending>} */
    this._pending = new Map();
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @type {{promise: Promise<HelloMessage>, resolve: (hello: HelloMessage) => void, reject: (error: HudongError) => void, timer: ReturnType<typeof setTimeout>} | null} */
    this._connecting = null;
    /** @type {Array<(info: CloseInfo) => void>} */
    this._closeWaiters = [];
    this._closeRequested = false;

    /** @type {HelloMessage | null} the server's hello on the current connection */
    this.hello = null;
    /** @type {User | null} who this connection joined as */
    this.you = null;
    /** @type {string | null} the joined room */
    this.room = null;
    /** @type {number | null} seq of the last batch or snapshot seen */
    this.seq = null;
    /** @type {{room: string, token?: string, name?: string} | null} the last successful join, for a later reconnect */
    this.lastJoin = null;
    /** @type {CloseInfo | null} */
    this.lastClose = null;
  }

  /** @returns {ConnectionStateValue} */
  get state() {
    return this._state;
  }

  // --- events ----------------------------------------------------------------------------

  /**
   * Add a listener; returns a function that removes it.
   * @template {keyof HudongEvents} K
   * @param {K} type
   * @param {HudongEvents[K]} listener
   * @returns {() => void}
   */
  on(type, listener) {
    let set = this._listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this._listeners.set(type, set);
    }
    set.add(listener);
    return () => this.off(type, listener);
  }

  /**
   * @template {keyof HudongEvents} K
   * @param {K} type
   * @param {HudongEvents[K]} listener
   */
  off(type, listener) {
    this._listeners.get(type)?.delete(listener);
  }

  /**
   * @param {string} type
   * @param {...unknown} args
   */
  _emit(type, ...args) {
    const set = this._listeners.get(type);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        // A failing listener must not stop the others or the client's own
        // bookkeeping; report it the way an uncaught error in an event handler is.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** @param {ConnectionStateValue} state */
  _setState(state) {
    const previous = this._state;
    if (state === previous) return;
    this._state = state;
    this._emit("state", state, previous);
  }

  // --- connecting and closing ---------------------------------------------------------------

  /**
   * Open the WebSocket; resolves with the server's `hello` (PROTOCOL.md, "Session").
   * Rejects with HudongError `timeout` or `disconnected`.
   * @returns {Promise<HelloMessage>}
   */
  connect() {
    if (this._state === ConnectionState.CONNECTED && this.hello) return Promise.resolve(this.hello);
    if (this._connecting) return this._connecting.promise;
    if (this._state !== ConnectionState.DISCONNECTED) {
      return Promise.reject(new HudongError("disconnected", `cannot connect while ${this._state}`));
    }
    /** @type {any} */
    let ws;
    try {
      ws = new this._WebSocket(this.url, [this.codec.subprotocol]);
    } catch (err) {
      return Promise.reject(
        new HudongError("transport_error", `cannot open a WebSocket to ${this.url}: ${err}`, { cause: err }),
      );
    }
    // Binary frames as ArrayBuffer (browsers default to Blob, which decodes only asynchronously).
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    this._closeRequested = false;
    this.hello = null;

    /** @type {any} */
    const connecting = {};
    connecting.promise = new Promise((resolve, reject) => {
      connecting.resolve = resolve;
      connecting.reject = reject;
    });
    connecting.timer = setTimeout(() => {
      const reason = `no hello within ${this.timeoutMs} ms`;
      this._abandon(ws, reason);
      this._finish(ws, { code: 1006, reason, wasClean: false }, new HudongError("timeout", reason));
    }, this.timeoutMs);
    this._connecting = connecting;
    this._setState(ConnectionState.CONNECTING);

    ws.addEventListener("message", (/** @type {MessageEvent} */ event) => {
      if (this._ws === ws) this._receive(event.data);
    });
    ws.addEventListener("error", (/** @type {Event & {message?: string, error?: unknown}} */ event) => {
      if (this._ws !== ws) return;
      // Browsers say nothing about the cause; the close event that follows has the code.
      const detail = event.message ? `: ${event.message}` : "";
      this._emit("error", new HudongError("transport_error", `WebSocket error${detail}`, { cause: event.error }));
    });
    ws.addEventListener("close", (/** @type {CloseEvent} */ event) => {
      this._finish(ws, { code: event.code, reason: event.reason, wasClean: event.wasClean });
    });
    return connecting.promise;
  }

  /**
   * Close the connection (1000 by default); resolves with the close's CloseInfo once the
   * socket closed, or after timeoutMs (then the socket is dropped).
   * @param {number} [code]  1000 or 3000 … 4999 (what browsers allow)
   * @param {string} [reason]
   * @returns {Promise<CloseInfo>}
   */
  close(code = 1000, reason = "") {
    // RFC 6455 section 7.4.2 reserves 1001-2999 for the protocol and the endpoints that
    // speak it; browsers throw on them, so refuse them everywhere.
    if (code !== 1000 && !(Number.isInteger(code) && code >= 3000 && code <= 4999)) {
      return Promise.reject(new RangeError(`close code must be 1000 or 3000-4999, got ${code}`));
    }
    const ws = this._ws;
    if (ws === null) {
      return Promise.resolve(
        this.lastClose ?? { code, reason, name: "normal", reconnect: false, byClient: true, wasClean: true },
      );
    }
    const closed = new Promise((resolve) => this._closeWaiters.push(resolve));
    if (this._state !== ConnectionState.CLOSING) {
      this._closeRequested = true;
      this._setState(ConnectionState.CLOSING);
      try {
        ws.close(code, reason);
      } catch (err) {
        this._abandon(ws, String(err));
        this._finish(ws, { code, reason, wasClean: false });
      }
      const timer = setTimeout(() => {
        this._abandon(ws, "closing handshake timed out");
        this._finish(ws, { code: 1006, reason: "closing handshake timed out", wasClean: false });
      }, this.timeoutMs);
      closed.finally(() => clearTimeout(timer));
    }
    return /** @type {Promise<CloseInfo>} */ (closed);
  }

  /**
   * Stop listening to `ws` and drop it without waiting for the closing handshake.
   * @param {any} ws
   * @param {string} reason
   */
  _abandon(ws, reason) {
    try {
      if (typeof ws.terminate === "function") ws.terminate(); // the `ws` package
      else ws.close(1000, reason.slice(0, 100));
    } catch {
      // already closed or closing
    }
  }

  /**
   * The socket `ws` is gone: settle everything that waited on it, once.
   * @param {any} ws
   * @param {{code: number, reason: string, wasClean: boolean}} close
   * @param {HudongError} [connectError]  the error connect() rejects with, if still pending
   */
  _finish(ws, close, connectError) {
    if (this._ws !== ws) return;
    this._ws = null;
    const byClient = this._closeRequested;
    this._closeRequested = false;
    const known = CLOSE_BY_CODE[close.code] ?? TRANSPORT_CLOSES[close.code];
    /** @type {CloseInfo} */
    const info = {
      code: close.code,
      reason: close.reason ?? "",
      name: known ? known.name : "unknown",
      reconnect: !byClient && known !== undefined && known.reconnect,
      byClient,
      wasClean: Boolean(close.wasClean),
    };
    this.lastClose = info;
    const error = new HudongError(
      "disconnected",
      `the connection closed: ${info.code} ${info.name}${info.reason ? ` (${info.reason})` : ""}`,
      { close: info },
    );
    const connecting = this._connecting;
    this._connecting = null;
    if (connecting) {
      clearTimeout(connecting.timer);
      connecting.reject(connectError ?? error);
    }
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.you = null;
    this.room = null;
    this._setState(ConnectionState.DISCONNECTED);
    this._emit("close", info);
    const waiters = this._closeWaiters;
    this._closeWaiters = [];
    for (const resolve of waiters) resolve(info);
  }

  // --- commands (PROTOCOL.md, "Commands") ---------------------------------------------------

  /**
   * Join `room`; resolves with the `joined` message. Without a token the client joins as an
   * anonymous viewer called `name`, if the room allows it.
   * @param {string} room
   * @param {{token?: string, name?: string}} [options]
   * @returns {Promise<JoinedMessage>}
   */
  async join(room, { token, name } = {}) {
    const joined = await this._command("join", { room, token, name });
    this.lastJoin = { room, token, name };
    return joined;
  }

  /**
   * Send a danmaku; resolves with the `ack` (its `event` is the id of the danmaku event,
   * which then arrives in the room's next batch). Rejects with HudongError: `text_too_long`
   * (`.limit`), `rate_limited` (`.retryAfterMs`), `forbidden`, …
   * @param {string} text
   * @param {{color?: string, mode?: "scroll"|"top"|"bottom"}} [options]
   * @returns {Promise<AckMessage>}
   */
  sendDanmaku(text, { color, mode } = {}) {
    return this._command("danmaku", { text, color, mode });
  }

  /**
   * An application-level round trip; resolves with the `pong`.
   * @returns {Promise<PongMessage>}
   */
  ping() {
    return this._command("ping", {});
  }

  /**
   * Send a command with a fresh id; the promise settles on the reply with that id.
   * Fields that are undefined are left out.
   * @param {string} op
   * @param {Record<string, unknown>} fields
   * @returns {Promise<any>}
   */
  _command(op, fields) {
    const ws = this._ws;
    if (this._state !== ConnectionState.CONNECTED || ws === null) {
      return Promise.reject(new HudongError("disconnected", `cannot send ${op}: the client is ${this._state}`));
    }
    const id = this._nextId;
    this._nextId = id >= MAX_ID ? 1 : id + 1;
    /** @type {Record<string, unknown>} */
    const command = { op, id }; // key order as in protocol/vectors
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined) command[key] = value;
    }
    const payload = this.codec.encode(command);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new HudongError("timeout", `no answer to ${op} (id ${id}) within ${this.timeoutMs} ms`, { id }));
      }, this.timeoutMs);
      this._pending.set(id, { op, resolve, reject, timer });
      try {
        ws.send(payload);
      } catch (err) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(new HudongError("transport_error", `cannot send ${op}: ${err}`, { id, cause: err }));
      }
    });
  }

  // --- receiving (PROTOCOL.md, "Server messages") ------------------------------------------

  /** @param {string | ArrayBuffer | ArrayBufferView} data */
  _receive(data) {
    // Each subprotocol uses one frame type (PROTOCOL.md, "Subprotocols and codecs").
    const binary = typeof data !== "string";
    if (binary !== this.codec.binary) {
      const kind = binary ? "binary" : "text";
      this._emit("error", new HudongError("bad_frame", `a ${kind} frame on ${this.codec.subprotocol}`));
      return;
    }
    let message;
    try {
      message = this.codec.decode(data);
    } catch (err) {
      this._emit("error", new HudongError("bad_frame", `undecodable frame: ${err}`, { cause: err }));
      return;
    }
    if (message === null || typeof message !== "object" || typeof message.type !== "string") {
      this._emit("error", new HudongError("bad_frame", "a server message must be a map with a type"));
      return;
    }
    this._emit("message", message);
    switch (message.type) {
      case "hello":
        this._onHello(message);
        break;
      case "joined":
        this.you = message.you;
        this.room = message.snapshot?.room?.id ?? null;
        this.seq = message.snapshot?.seq ?? null;
        this._settle(message);
        this._emit("joined", message);
        this._emit("snapshot", message.snapshot, message);
        break;
      case "ack":
      case "pong":
        this._settle(message);
        break;
      case "error":
        this._settle(message);
        break;
      case "batch":
        this._onBatch(message);
        break;
      case "snapshot":
        this.seq = message.snapshot?.seq ?? this.seq;
        this._emit("snapshot", message.snapshot, message);
        break;
      default:
        // A newer server's message type: already reported as "message".
        break;
    }
  }

  /** @param {HelloMessage} hello */
  _onHello(hello) {
    this.hello = hello;
    this._emit("hello", hello);
    const connecting = this._connecting;
    if (connecting === null) return;
    this._connecting = null;
    clearTimeout(connecting.timer);
    this._setState(ConnectionState.CONNECTED);
    connecting.resolve(hello);
  }

  /** @param {BatchMessage} batch */
  _onBatch(batch) {
    this.seq = batch.seq;
    this._emit("batch", batch);
    for (const event of batch.events ?? []) {
      this._emit("event", event, batch);
      if (BATCH_EVENT_TYPES.has(event.type)) this._emit(event.type, event, batch);
    }
  }

  /**
   * Settle the pending command a reply answers; an `error` that answers none is an
   * "error" event.
   * @param {JoinedMessage | AckMessage | PongMessage | ErrorMessage} reply
   */
  _settle(reply) {
    const pending = typeof reply.id === "number" ? this._pending.get(reply.id) : undefined;
    if (pending === undefined) {
      if (reply.type === "error") this._emit("error", HudongError.fromReply(/** @type {ErrorMessage} */ (reply)));
      return;
    }
    this._pending.delete(/** @type {number} */ (reply.id));
    clearTimeout(pending.timer);
    if (reply.type === "error") pending.reject(HudongError.fromReply(/** @type {ErrorMessage} */ (reply)));
    else pending.resolve(reply);
  }
}

export default HudongClient;
