// The JavaScript client of hudong protocol v1 (protocol/PROTOCOL.md).
//
// One HudongClient is one WebSocket connection at a time to a node's /ws, joined to
// at most one room. Commands carry an increasing integer `id` and their promises
// settle on the reply with that id (PROTOCOL.md, "Commands"); everything else the
// server sends (batches, state, snapshots, notices) arrives as events, and what the
// client knows of the room is kept in a RoomState (room.js).
//
// The client keeps its room: after a close that says "reconnect" (PROTOCOL.md,
// "Close codes") it reconnects with full-jitter backoff (backoff.js), joins the room
// again with the same token (an anonymous viewer with the token the server gave it in
// `joined`, so it keeps its identity) and emits `resync`. A silent connection is
// probed with an app-level `ping`, since the server's WebSocket pings are invisible
// to browser JS (PROTOCOL.md, "Heartbeats"). State-changing viewer commands carry an
// idempotency key and are sent again with the same key until acknowledged
// (PROTOCOL.md, "Idempotency keys"); danmaku and host operations are sent once.
//
// The WebSocket constructor is injectable, so the same module runs in browsers (the
// global WebSocket) and in Node (the `ws` package), and tests drive it with a fake.

import { DEFAULT_BACKOFF, backoffDelay, backoffFrom } from "./backoff.js";
import { codecFor } from "./codec.js";
import { CLOSE_BY_CODE, ERRORS } from "./codes.js";
import { RoomState } from "./room.js";

export { CLOSES, CLOSE_BY_CODE, ERRORS } from "./codes.js";
export { CODECS, JSON_CODEC, MSGPACK_CODEC, codecFor } from "./codec.js";
export { DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";
export { RECENT_SIZE, RoomState } from "./room.js";

/** @typedef {import("./codec.js").Codec} Codec */
/** @typedef {import("./backoff.js").Backoff} Backoff */
/** @typedef {import("./room.js").View} View */

/**
 * The connection's state. Transitions:
 * DISCONNECTED → CONNECTING (connect(), open()) → CONNECTED (the server's `hello`
 * arrived) → CLOSING (close()) → DISCONNECTED. When the socket is lost and the client
 * will try again: → RECONNECTING (waiting for the next attempt) → CONNECTING → …
 * Any state → DISCONNECTED when the socket closes for good.
 */
export const ConnectionState = Object.freeze({
  DISCONNECTED: "disconnected",
  CONNECTING: "connecting",
  CONNECTED: "connected",
  CLOSING: "closing",
  RECONNECTING: "reconnecting",
});

/** @typedef {typeof ConnectionState[keyof typeof ConnectionState]} ConnectionStateValue */

/**
 * The protocol this client speaks (protocol/messages.py PROTOCOL_VERSION): a server
 * whose `hello` names another is refused with `protocol_mismatch`.
 * @type {ProtocolVersion}
 */
export const PROTOCOL_VERSION = "hudong.v1";

/** The largest command id (PROTOCOL.md, "Commands": 0 … 2^53−1). */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

/** How long connect(), commands and close() wait by default. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** How long a state-changing command is retried at most, by default. */
export const DEFAULT_RETRY_DEADLINE_MS = 120_000;

/** What an idempotency key must look like (PROTOCOL.md, "Idempotency keys"). */
export const KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Error codes this client raises itself; the server's are in ERRORS (codes.js).
 * `retry` has the meaning of ERRORS: whether the same command may succeed later.
 * A command that timed out or was cut off by a close may have been applied.
 */
export const CLIENT_ERRORS = Object.freeze({
  timeout: { retry: true, description: "no answer within the client's timeoutMs (or retry.deadlineMs)" },
  disconnected: { retry: true, description: "the client is not connected, or the connection closed before the answer" },
  transport_error: { retry: true, description: "the WebSocket reported an error" },
  bad_frame: { retry: false, description: "a server frame could not be decoded, or had the wrong frame type" },
  protocol_mismatch: {
    retry: false,
    description: "the server's hello names another protocol than this client's PROTOCOL_VERSION",
  },
});

/**
 * The client's own event types. A batch event, a notice or an interaction kind whose
 * name would be one of these is emitted only as `event`, `notice` or `interaction`, so
 * a server's new type can never pose as one of the client's events.
 */
export const CLIENT_EVENTS = Object.freeze([
  "state",
  "hello",
  "joined",
  "snapshot",
  "resync",
  "reconnecting",
  "batch",
  "event",
  "danmaku",
  "retract",
  "views",
  "interaction",
  "notice",
  "degrade",
  "online",
  "message",
  "error",
  "close",
]);
const OWN_EVENTS = new Set(CLIENT_EVENTS);

/**
 * The listener type of a batch event's `type` or a notice's `kind`: its camelCase form
 * (`draw_result` → `drawResult`, `design_revealed` → `designRevealed`, `draw_won` →
 * `drawWon`), for any type a server sends, today's and those to come.
 * @param {string} type
 */
export function eventName(type) {
  return type.replace(/_+([a-z0-9])/g, (_, c) => c.toUpperCase());
}

/** Ballot fields of a `vote` (PROTOCOL.md, "Viewer commands"). */
const BALLOT_FIELDS = Object.freeze(["option", "options", "ranking", "rating", "text"]);

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

// The messages' and views' types are generated from the server (protocol.d.ts:
// `python -m server.js_types --write`).
/** @typedef {import("./protocol.js").User} User */
/** @typedef {import("./protocol.js").DanmakuEvent} DanmakuEvent */
/** @typedef {import("./protocol.js").RetractEvent} RetractEvent */
/** @typedef {import("./protocol.js").BatchEvent} BatchEvent */
/** @typedef {import("./protocol.js").Snapshot} Snapshot */
/** @typedef {import("./protocol.js").HelloMessage} HelloMessage */
/** @typedef {import("./protocol.js").JoinedMessage} JoinedMessage */
/** @typedef {import("./protocol.js").AckMessage} AckMessage */
/** @typedef {import("./protocol.js").PongMessage} PongMessage */
/** @typedef {import("./protocol.js").ErrorMessage} ErrorMessage */
/** @typedef {import("./protocol.js").BatchMessage} BatchMessage */
/** @typedef {import("./protocol.js").SnapshotMessage} SnapshotMessage */
/** @typedef {import("./protocol.js").StateMessage} StateMessage */
/** @typedef {import("./protocol.js").OnlineMessage} OnlineMessage */
/** @typedef {import("./protocol.js").NoticeMessage} NoticeMessage */
/** @typedef {import("./protocol.js").ServerMessage} ServerMessage */
/** @typedef {import("./protocol.js").InteractionView} InteractionView */
/** @typedef {import("./protocol.js").ViewEvents} ViewEvents */
/** @typedef {import("./protocol.js").ProtocolVersion} ProtocolVersion */
/** @typedef {{type: "draw_result", interaction: string, title: string, winners: string[], ts: number}} DrawResultEvent */
/** @typedef {{type: "design_revealed", interaction: string, final: Record<string, unknown>, ts: number}} DesignRevealedEvent */
/** @typedef {{type: "quiz_revealed", interaction: string, question: string | null, final: boolean, ts: number}} QuizRevealedEvent */
/**
 * @typedef {object} Ballot  one of the fields, as the poll's kind needs
 * @property {string} [option]      single
 * @property {string[]} [options]   multiple
 * @property {string[]} [ranking]   ranked, best first
 * @property {number} [rating]      rating, 1 … scale
 * @property {string} [text]        text
 */

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
 * What a `reconnecting` event reports: the client waits `delayMs`, then makes attempt
 * number `attempt` (0 for the first after a loss).
 * @typedef {object} ReconnectingInfo
 * @property {number} attempt
 * @property {number} delayMs
 * @property {CloseInfo | null} close  the close that made it reconnect
 * @property {HudongError} [error]     the error of the failed attempt, if one failed
 */

/**
 * Listener signatures, by event type. Besides these, each event type a server sends is an
 * event of its own under its camelCase name (see eventName; not when that is one of
 * CLIENT_EVENTS): a batch event `(event, batch)` (`draw_result` → `drawResult`,
 * `design_revealed` → `designRevealed`), a notice `(notice)` (`draw_won` → `drawWon`),
 * and a view that changed `(view, previous)` under its `kind` (every kind: today's polls,
 * quizzes, co-designs, draws, Q&A boards, check-in and wall, and kinds to come).
 * @typedef {object} BaseEvents
 * @property {(state: ConnectionStateValue, previous: ConnectionStateValue) => void} state
 * @property {(hello: HelloMessage) => void} hello
 * @property {(joined: JoinedMessage) => void} joined
 * @property {(snapshot: Snapshot, message: JoinedMessage | SnapshotMessage) => void} snapshot
 *   the room to draw: after a join, after a change of the room, after a slow connection drained
 * @property {(snapshot: Snapshot) => void} resync  the room was joined again after a lost connection
 * @property {(info: ReconnectingInfo) => void} reconnecting
 * @property {(batch: BatchMessage) => void} batch
 * @property {(event: {type: string, [field: string]: any}, batch: BatchMessage) => void} event  every event of every batch
 * @property {(event: DanmakuEvent, batch: BatchMessage) => void} danmaku
 * @property {(event: RetractEvent, batch: BatchMessage) => void} retract
 * @property {(event: DrawResultEvent, batch: BatchMessage) => void} drawResult
 * @property {(event: DesignRevealedEvent, batch: BatchMessage) => void} designRevealed
 * @property {(event: QuizRevealedEvent, batch: BatchMessage) => void} quizRevealed
 * @property {(message: StateMessage) => void} views  a `state` message
 * @property {(view: InteractionView, previous: InteractionView | undefined) => void} interaction  a view changed
 * @property {(notice: NoticeMessage) => void} notice
 * @property {(notice: NoticeMessage) => void} drawWon
 * @property {(notice: NoticeMessage) => void} quizStanding  this player's own `rank`,
 *   `points`, `correct` and `players` once a quiz answer is revealed (`final` once finished)
 * @property {(degrade: {level: number, name: string}) => void} degrade
 * @property {(online: number, message: OnlineMessage) => void} online  viewers in the room now
 *   (also `roomState.online`); the server sends it when the count moved, at most once a second
 * @property {(message: ServerMessage) => void} message  every decoded server message
 * @property {(error: HudongError) => void} error
 *   an error that answers no pending command: an `error` with id null or an unknown
 *   id, an undecodable frame, a transport error, or why reconnecting stopped
 * @property {(info: CloseInfo) => void} close  a socket closed (also a failed attempt's)
 */
/**
 * Every listener signature: the client's own events, and each interaction kind's views
 * under the kind's name (ViewEvents, generated from the server's registry).
 * @typedef {BaseEvents & ViewEvents} HudongEvents
 */

/**
 * An `error` from the server (`code` in ERRORS) or from this client (`code` in
 * CLIENT_ERRORS). When reconnecting stops because of a close, `code` is the close's
 * name (room_deleted, banned, …) and `close` the close.
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
    /** For retryable server codes (rate_limited, store_unavailable, muted, …): when to try again. */
    this.retryAfterMs = details.retryAfterMs;
    /** For text_too_long and frame_too_large: the limit. */
    this.limit = details.limit;
    /** The server's `error` message, when there was one. */
    this.reply = details.reply;
    /** For `disconnected`: the close that cut the command off. */
    this.close = details.close;
    /** @type {string | null | undefined} For `protocol_mismatch`: the server's protocol. */
    this.serverProtocol = undefined;
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
 * A fresh idempotency key: a UUID, or 16 random bytes in hex where randomUUID is
 * missing (browsers only have it in secure contexts).
 * @returns {string}
 */
export function idempotencyKey() {
  const webCrypto = globalThis.crypto;
  if (typeof webCrypto?.randomUUID === "function") return webCrypto.randomUUID();
  if (typeof webCrypto?.getRandomValues !== "function") {
    throw new TypeError("no crypto.getRandomValues: cannot make an idempotency key; pass {key}");
  }
  const bytes = webCrypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * @typedef {object} HudongClientOptions
 * @property {"json"|"msgpack"} [protocol]  default "json"
 * @property {Codec} [codec]                overrides `protocol`
 * @property {typeof globalThis.WebSocket | (new (url: string | URL, protocols?: string[]) => any)} [WebSocket]
 *   the WebSocket constructor; default globalThis.WebSocket (Node: pass the `ws` package's)
 * @property {number} [timeoutMs]           bound on connect(), each command, each heartbeat
 *                                          ping and close(); default 10 s
 * @property {boolean} [reconnect]          reconnect and join again after a lost connection; default true
 * @property {Partial<Backoff>} [backoff]   reconnect and retry delays; default {initialMs: 500, maxMs: 15000}
 * @property {{deadlineMs?: number}} [retry] how long viewer commands are retried; default 120 s
 * @property {() => number} [random]        the source of jitter, uniform in [0, 1); default Math.random
 */

/**
 * @typedef {object} Pending
 * @property {string} op
 * @property {Record<string, unknown>} command
 * @property {(message: any) => void} resolve
 * @property {(error: HudongError) => void} reject
 * @property {ReturnType<typeof setTimeout>} timer
 */

/**
 * A command being retried until acknowledged: close() and giving up cancel it.
 * @typedef {object} RetryTicket
 * @property {HudongError | null} error            why it was cancelled
 * @property {((error: HudongError) => void) | null} wake  ends the wait it is in
 */

/** @typedef {{resolve: (joined: JoinedMessage | null) => void, reject: (error: HudongError) => void}} JoinWaiter */

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
    /** @private */
    this._WebSocket = WebSocketImpl;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    /** Whether a lost connection is reconnected (and the room joined again); may be changed. */
    this.reconnect = options.reconnect ?? true;
    /** @type {Readonly<Backoff>} */
    this.backoff = options.backoff === undefined ? DEFAULT_BACKOFF : backoffFrom(options.backoff);
    const deadlineMs = options.retry?.deadlineMs ?? DEFAULT_RETRY_DEADLINE_MS;
    if (!(deadlineMs >= 0)) throw new RangeError(`retry.deadlineMs must be >= 0, got ${deadlineMs}`);
    /** @type {Readonly<{deadlineMs: number}>} */
    this.retry = Object.freeze({ deadlineMs });
    /** @private */
    this._random = options.random ?? Math.random;

    // --- the connection
    /** @private @type {ConnectionStateValue} */
    this._state = ConnectionState.DISCONNECTED;
    /** @private @type {any} the current WebSocket; events of any other are stale and ignored */
    this._ws = null;
    /** @private */
    this._nextId = 1;
    /** @private @type {Map<number, Pending>} */
    this._pending = new Map();
    /** @private @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @private @type {{promise: Promise<HelloMessage>, resolve: (hello: HelloMessage) => void, reject: (error: HudongError) => void, timer: ReturnType<typeof setTimeout>} | null} */
    this._connecting = null;
    /** @private @type {Array<(info: CloseInfo) => void>} */
    this._closeWaiters = [];
    /** @private */
    this._closeRequested = false;

    // --- keeping the room (reconnects, open(), retries)
    /**
     * Whether the client should be connected (and joined to _target): until close() or giving up.
     * @private
     */
    this._keep = false;
    /** @private @type {{room: string, token?: string, name?: string, lang?: string} | null} the room to be in */
    this._target = null;
    /**
     * A connection was lost and is being brought back (for `resync` and for reporting a stop).
     * @private
     */
    this._recovering = false;
    /**
     * An attempt (connect + join) is under way; it, not the close, decides what follows.
     * @private
     */
    this._attempting = false;
    /**
     * Attempts since the last success: the backoff's exponent.
     * @private
     */
    this._attempt = 0;
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    this._reconnectTimer = null;
    /** @private @type {Set<JoinWaiter>} open() calls and retries waiting for the room */
    this._joinWaiters = new Set();
    /** @private @type {Set<RetryTicket>} */
    this._tickets = new Set();

    // --- dead-connection detection (PROTOCOL.md, "Heartbeats")
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    this._heartbeatTimer = null;
    /** @private */
    this._lastHeardAt = 0;
    /** @private */
    this._framesHeard = 0;

    /** @type {HelloMessage | null} the server's hello on the current connection */
    this.hello = null;
    /** @type {User | null} who this connection joined as */
    this.you = null;
    /** @type {string | null} the joined room */
    this.room = null;
    /** @type {number | null} seq of the last batch or snapshot seen */
    this.seq = null;
    /** @type {{room: string, token?: string, name?: string, lang?: string} | null} the last successful join's arguments */
    this.lastJoin = null;
    /** @type {string | null} the token joins use: the one given, or the one the server gave an anonymous viewer */
    this.token = null;
    /** @type {CloseInfo | null} */
    this.lastClose = null;
    /**
     * What is known of the room; kept over reconnects until the next snapshot.
     * @type {import("./room.js").RoomState}
     */
    this.roomState = new RoomState();
    /** A state message showed a gap and a snapshot was asked for; none answered yet. */
    this._askedSnapshot = false;
  }

  /** @returns {ConnectionStateValue} */
  get state() {
    return this._state;
  }

  /** The last snapshot (from `joined` or a `snapshot` message), as it arrived. */
  get snapshot() {
    return this.roomState.snapshot;
  }

  /** Interaction id -> its current view, from snapshots and `state` messages. */
  get interactions() {
    return this.roomState.interactions;
  }

  /** The room's degrade level, 0-3. */
  get degrade() {
    return this.roomState.degrade;
  }

  /** Viewers in the room now: the snapshot's count, then each `online` message's. */
  get online() {
    return this.roomState.online;
  }

  /** The recent danmaku, oldest first, at most RECENT_SIZE; retracted ones removed. */
  get recent() {
    return this.roomState.recent;
  }

  /**
   * The current view of interaction `id`.
   * @param {string} id
   * @returns {View | undefined}
   */
  interaction(id) {
    return this.roomState.interactions.get(id);
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
   * @private
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

  /** @private @param {ConnectionStateValue} state */
  _setState(state) {
    const previous = this._state;
    if (state === previous) return;
    this._state = state;
    this._emit("state", state, previous);
  }

  // --- connecting and closing ---------------------------------------------------------------

  /**
   * Open the WebSocket; resolves with the server's `hello` (PROTOCOL.md, "Session").
   * Rejects with HudongError `timeout`, `disconnected` or `transport_error`; a failed
   * connect() is not retried (open() is). Once connected, a lost connection is
   * reconnected if `reconnect` is on.
   * @returns {Promise<HelloMessage>}
   */
  connect() {
    if (this._state === ConnectionState.CONNECTED && this.hello) return Promise.resolve(this.hello);
    if (this._connecting) return this._connecting.promise;
    if (this._state === ConnectionState.RECONNECTING && !this._attempting) {
      // Waiting for the next attempt: make it now.
      this._cancelReconnectTimer();
      void this._run();
      return this._helloOfAttempt();
    }
    if (this._state !== ConnectionState.DISCONNECTED) {
      return Promise.reject(new HudongError("disconnected", `cannot connect while ${this._state}`));
    }
    return this._openSocket();
  }

  /** @private @returns {Promise<HelloMessage>} the hello of the attempt that just started */
  _helloOfAttempt() {
    return this._connecting?.promise ?? Promise.reject(new HudongError("transport_error", "the attempt failed at once"));
  }

  /**
   * Connect and join `room`, retrying connect errors, timeouts, lost connections and
   * retryable refusals (store_unavailable, rate_limited, …) with the backoff until
   * joined. Resolves with the `joined` message; rejects with a non-retryable error
   * (room_not_found, unauthorized, anonymous_not_allowed, banned, …) or `disconnected`
   * when close() is called meanwhile.
   * @param {string} room
   * @param {{token?: string, name?: string, lang?: string}} [options]  no token: an anonymous viewer called `name`
   *   (`lang`, a language tag such as `navigator.language`: the language of its default name)
   * @returns {Promise<JoinedMessage>}
   */
  open(room, { token, name, lang } = {}) {
    if (this._state === ConnectionState.CLOSING && !this._keep) {
      // close() was called and has not finished: open once it has.
      const closed = new Promise((resolve) => this._closeWaiters.push(resolve));
      return closed.then(() => this.open(room, { token, name, lang }));
    }
    if (this.room !== null) {
      return Promise.reject(new HudongError("already_joined", `already joined room ${this.room}; close() first`));
    }
    if (this._attempting || this._state === ConnectionState.CLOSING || this._state === ConnectionState.RECONNECTING) {
      return Promise.reject(new HudongError("disconnected", `cannot open while ${this._state}; close() first`));
    }
    this._target = lang === undefined ? { room, token, name } : { room, token, name, lang };
    this.token = token ?? null;
    this._keep = true;
    this._attempt = 0;
    const joined = new Promise((resolve, reject) => this._joinWaiters.add({ resolve, reject }));
    void this._run();
    return /** @type {Promise<JoinedMessage>} */ (joined);
  }

  /**
   * Close the connection (1000 by default) and stop reconnecting and retrying (pending
   * retries reject with `disconnected`); resolves with the close's CloseInfo once the
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
    this._keep = false;
    this._recovering = false;
    this._cancelReconnectTimer();
    this._cancelWaits(new HudongError("disconnected", "close() was called"));
    const ws = this._ws;
    if (ws === null) {
      this._setState(ConnectionState.DISCONNECTED); // from RECONNECTING
      return Promise.resolve(
        this.lastClose ?? { code, reason, name: "normal", reconnect: false, byClient: true, wasClean: true },
      );
    }
    const closed = new Promise((resolve) => this._closeWaiters.push(resolve));
    if (this._state !== ConnectionState.CLOSING) {
      this._closeRequested = true;
      this._stopHeartbeat();
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
   * Open a new socket (the state is DISCONNECTED or RECONNECTING); resolves on `hello`.
   * @returns {Promise<HelloMessage>}
   * @private
   */
  _openSocket() {
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
   * Stop listening to `ws` and drop it without waiting for the closing handshake.
   * @param {any} ws
   * @param {string} reason
   * @private
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
   * Give up on `ws` now, as if it had closed with `code`.
   * @param {any} ws
   * @param {number} code
   * @param {string} reason
   * @param {boolean} reconnect  what the CloseInfo says
   * @private
   */
  _drop(ws, code, reason, reconnect) {
    this._abandon(ws, reason);
    this._finish(ws, { code, reason, wasClean: false }, undefined, reconnect);
  }

  /**
   * The socket `ws` is gone: settle everything that waited on it, once, and decide
   * whether to reconnect.
   * @param {any} ws
   * @param {{code: number, reason: string, wasClean: boolean}} close
   * @param {HudongError} [connectError]  the error connect() rejects with, if still pending
   * @param {boolean} [reconnect]         overrides what the close code says
   * @private
   */
  _finish(ws, close, connectError, reconnect) {
    if (this._ws !== ws) return;
    this._ws = null;
    this._stopHeartbeat();
    const byClient = this._closeRequested;
    this._closeRequested = false;
    const known = CLOSE_BY_CODE[close.code] ?? TRANSPORT_CLOSES[close.code];
    /** @type {CloseInfo} */
    const info = {
      code: close.code,
      reason: close.reason ?? "",
      name: known ? known.name : "unknown",
      reconnect: !byClient && (reconnect ?? (known !== undefined && known.reconnect)),
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
    const keep = this._keep && !byClient;
    // open() retries its attempts whatever `reconnect` says.
    const recover = keep && info.reconnect && (this.reconnect || this._attempting);
    this._setState(recover ? ConnectionState.RECONNECTING : ConnectionState.DISCONNECTED);
    this._emit("close", info);
    const waiters = this._closeWaiters;
    this._closeWaiters = [];
    for (const resolve of waiters) resolve(info);
    // An attempt that this close cut short decides itself (see _failed); a close
    // listener may have called close().
    if (this._attempting || !keep || !this._keep) return;
    if (recover) {
      this._recovering = true;
      this._schedule(info);
    } else {
      this._giveUp(this.reconnect ? closeError(info) : error);
    }
  }

  // --- keeping the room: reconnects and open() ---------------------------------------------

  /**
   * Wait, then make the next attempt.
   * @param {CloseInfo | null} close
   * @param {HudongError} [error]
   * @private
   */
  _schedule(close, error) {
    const attempt = this._attempt;
    this._attempt += 1;
    const delayMs = error?.retryAfterMs ?? backoffDelay(attempt, this.backoff, this._random);
    this._setState(ConnectionState.RECONNECTING);
    /** @type {ReconnectingInfo} */
    const info = { attempt, delayMs, close };
    if (error !== undefined) info.error = error;
    this._emit("reconnecting", info);
    if (!this._keep || this._state !== ConnectionState.RECONNECTING) return; // a listener closed it
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      void this._run();
    }, delayMs);
  }

  /** @private */
  _cancelReconnectTimer() {
    if (this._reconnectTimer !== null) clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
  }

  /**
   * One attempt: connect if need be, then join the target room if there is one.
   * @private
   */
  async _run() {
    this._attempting = true;
    /** @type {JoinedMessage | null} */
    let joined = null;
    try {
      if (this._state !== ConnectionState.CONNECTED) {
        await (this._connecting ? this._connecting.promise : this._openSocket());
      }
      const target = this._target;
      if (target !== null && this.room === null) {
        // Same identity as before: the given token, or the one an anonymous join got.
        joined = await this._command("join", {
          room: target.room,
          token: this.token ?? undefined,
          name: target.name,
          lang: target.lang,
        });
      }
    } catch (err) {
      try {
        this._failed(err);
      } finally {
        this._attempting = false;
      }
      return;
    }
    this._attempting = false;
    this._succeeded(joined);
  }

  /** @private @param {JoinedMessage | null} joined */
  _succeeded(joined) {
    if (!this._keep) return;
    this._attempt = 0;
    if (joined !== null) this.lastJoin = this._target;
    const resync = this._recovering && joined !== null;
    this._recovering = false;
    if (!this.reconnect) this._keep = false; // open() is done; nothing to keep
    const waiters = [...this._joinWaiters];
    this._joinWaiters.clear();
    for (const waiter of waiters) waiter.resolve(joined);
    if (resync && joined !== null) this._emit("resync", joined.snapshot);
  }

  /** @private @param {unknown} err why the attempt failed */
  _failed(err) {
    if (!this._keep) return; // close() settled everything already
    if (!(err instanceof HudongError)) {
      // Not the network or the server (a codec refusing the join's fields, say):
      // trying again would fail the same way.
      this._giveUp(new HudongError("transport_error", `cannot join: ${err}`, { cause: err }));
      return;
    }
    const error = err;
    if (error.close !== undefined && !error.close.reconnect) {
      this._giveUp(closeError(error.close)); // room_deleted, banned, …
      return;
    }
    if (!error.retry) {
      this._giveUp(error); // room_not_found, unauthorized, banned, anonymous_not_allowed, …
      return;
    }
    // A retryable refusal of the join (store_unavailable, rate_limited, timeout) leaves
    // the socket open: start again from a fresh one.
    if (this._ws !== null) this._drop(this._ws, 1000, `join failed (${error.code}); reconnecting`, true);
    this._schedule(this.lastClose, error);
  }

  /**
   * Stop keeping the room: reject open() and pending retries with `error`, close the
   * socket if one is open, and report it if a lost connection was being brought back.
   * @param {HudongError} error
   * @private
   */
  _giveUp(error) {
    const report = this._recovering;
    this._keep = false;
    this._recovering = false;
    this._cancelReconnectTimer();
    // open() rejects once the socket is closed, so that it may be called again at once.
    const waiters = [...this._joinWaiters];
    this._joinWaiters.clear();
    this._cancelWaits(error);
    const settle = () => {
      for (const waiter of waiters) waiter.reject(error);
      if (report) this._emit("error", error);
    };
    if (this._ws !== null) {
      void this.close().then(settle);
    } else {
      this._setState(ConnectionState.DISCONNECTED);
      settle();
    }
  }

  /** @private @param {HudongError} error */
  _cancelWaits(error) {
    const waiters = [...this._joinWaiters];
    this._joinWaiters.clear();
    for (const waiter of waiters) waiter.reject(error);
    for (const ticket of this._tickets) {
      if (ticket.error !== null) continue; // the first reason stands
      ticket.error = error;
      ticket.wake?.(error);
    }
  }

  /**
   * Joined to a room on a live connection.
   * @private
   */
  _isJoined() {
    return this._state === ConnectionState.CONNECTED && this.room !== null;
  }

  /**
   * The client will join its room (again) by itself.
   * @private
   */
  _willRejoin() {
    return this._keep && this._target !== null;
  }

  // --- dead-connection detection (PROTOCOL.md, "Heartbeats") ----------------------------------

  /** @private @param {number} ms */
  _armHeartbeat(ms) {
    if (this._heartbeatTimer !== null) clearTimeout(this._heartbeatTimer);
    this._heartbeatTimer = setTimeout(() => this._heartbeat(), ms);
  }

  /** @private */
  _stopHeartbeat() {
    if (this._heartbeatTimer !== null) clearTimeout(this._heartbeatTimer);
    this._heartbeatTimer = null;
  }

  /**
   * Nothing arrived for heartbeat_ms: ask for a pong. If neither it nor anything else
   * arrives within timeoutMs, the connection is dead: drop it and reconnect.
   * @private
   */
  _heartbeat() {
    this._heartbeatTimer = null;
    const ws = this._ws;
    const everyMs = this.hello?.heartbeat_ms ?? 0;
    if (ws === null || this._state !== ConnectionState.CONNECTED || !(everyMs > 0)) return;
    const quietMs = Date.now() - this._lastHeardAt;
    if (quietMs < everyMs) {
      this._armHeartbeat(everyMs - quietMs);
      return;
    }
    const heard = this._framesHeard;
    this._command("ping", {}).then(
      () => {
        if (this._ws === ws) this._armHeartbeat(everyMs);
      },
      (/** @type {HudongError} */ err) => {
        if (this._ws !== ws) return;
        if (this._framesHeard === heard && (err.code === "timeout" || err.code === "transport_error")) {
          this._drop(ws, 4009, `no pong within ${this.timeoutMs} ms`, true);
        } else {
          this._armHeartbeat(everyMs);
        }
      },
    );
  }

  // --- commands (PROTOCOL.md, "Commands") ---------------------------------------------------

  /**
   * Join `room` on the connected client (one attempt); resolves with the `joined`
   * message. Without a token the client joins as an anonymous viewer called `name`, if
   * the room allows it; with a guest's token, `name` renames that guest (same id).
   * After a lost connection the client joins this room again.
   * @param {string} room
   * @param {{token?: string, name?: string, lang?: string}} [options]
   * @returns {Promise<JoinedMessage>}
   */
  async join(room, { token, name, lang } = {}) {
    const joined = await this._command("join", { room, token, name, lang });
    this.lastJoin = lang === undefined ? { room, token, name } : { room, token, name, lang };
    this._target = this.lastJoin;
    return joined;
  }

  /**
   * Send a danmaku (once: the stream is best effort); resolves with the `ack` (its
   * `event` is the id of the danmaku event, which then arrives in the room's next
   * batch). Rejects with HudongError: `text_too_long` (`.limit`), `rate_limited`
   * (`.retryAfterMs`), `slow_mode`, `muted`, `forbidden`, `text_refused`,
   * `links_not_allowed`, `duplicate_text`, `disconnected`, … An ack with `held: true`
   * (and no `event`): the text filter held it for review; nobody else receives it.
   * @param {string} text
   * @param {{color?: string, mode?: "scroll"|"top"|"bottom"}} [options]
   * @returns {Promise<AckMessage>}
   */
  sendDanmaku(text, { color, mode } = {}) {
    return this._command("danmaku", { text, color, mode });
  }

  /**
   * Send a command once, as it is: no idempotency key, no retry. For commands whose
   * effect may be lost but must not be repeated by a retry, like the taps of a
   * `react` (PROTOCOL.md, "Viewer commands"). Resolves with the answer (`ack`);
   * rejects with the `error`, or with `timeout` / `disconnected`.
   * @param {string} op
   * @param {Record<string, unknown>} [fields]
   * @returns {Promise<AckMessage>}
   */
  send(op, fields = {}) {
    return this._command(op, fields);
  }

  /**
   * An application-level round trip; resolves with the `pong`.
   * @returns {Promise<PongMessage>}
   */
  ping() {
    return this._command("ping", {});
  }

  // --- viewer commands: sent until acknowledged (PROTOCOL.md, "Idempotency keys") -----------

  /**
   * Send a state-changing viewer command `{op, interaction?, key, ...fields}` and send it
   * again, with the same key, until it is acknowledged: after a retryable failure
   * (timeout, disconnected, transport_error, store_unavailable, rate_limited,
   * internal_error) it waits (retryAfterMs, else the backoff), waits for the room to be
   * joined again if the client is reconnecting, and resends. Resolves with the `ack`
   * ({version, duplicate, …}); rejects with a non-retryable error, with `disconnected`
   * when close() is called or nothing will reconnect, and with `timeout` after
   * retry.deadlineMs.
   * @param {string} op
   * @param {Record<string, unknown>} [fields]
   * @param {{key?: string}} [options]  key: your own idempotency key (KEY_PATTERN)
   * @returns {Promise<AckMessage>}
   */
  participate(op, fields = {}, { key } = {}) {
    let chosen;
    try {
      chosen = key ?? idempotencyKey();
    } catch (err) {
      return Promise.reject(err);
    }
    if (typeof chosen !== "string" || !KEY_PATTERN.test(chosen)) {
      return Promise.reject(new TypeError(`an idempotency key must match ${KEY_PATTERN}, got ${JSON.stringify(chosen)}`));
    }
    const { interaction, ...rest } = fields;
    return this._untilAcknowledged(op, { interaction, key: chosen, ...rest });
  }

  /**
   * @param {string} op
   * @param {Record<string, unknown>} command
   * @returns {Promise<AckMessage>}
   * @private
   */
  async _untilAcknowledged(op, command) {
    const deadlineMs = this.retry.deadlineMs;
    const deadline = Date.now() + deadlineMs;
    /** @type {RetryTicket} */
    const ticket = { error: null, wake: null };
    this._tickets.add(ticket);
    let attempt = 0;
    try {
      for (;;) {
        // No await when joined: the first attempt goes out now, in call order with
        // other commands (PROTOCOL.md: commands are handled in the order sent).
        if (ticket.error !== null) throw ticket.error;
        if (!this._isJoined() && this._willRejoin()) await this._whenJoined(ticket, deadline, op);
        try {
          return await this._command(op, command);
        } catch (err) {
          if (ticket.error !== null) throw ticket.error;
          if (!(err instanceof HudongError) || !err.retry) throw err;
          // Lost, and nothing will bring the connection back: no point waiting.
          if (!this._isJoined() && !this._willRejoin()) throw err;
          const delayMs = err.retryAfterMs ?? backoffDelay(attempt, this.backoff, this._random);
          attempt += 1;
          if (Date.now() + delayMs >= deadline) {
            throw new HudongError("timeout", `${op} was not acknowledged within ${deadlineMs} ms (last: ${err.code})`, {
              cause: err,
            });
          }
          await this._sleep(ticket, delayMs);
        }
      }
    } finally {
      this._tickets.delete(ticket);
    }
  }

  /**
   * @param {RetryTicket} ticket
   * @param {number} ms
   * @returns {Promise<void>}
   * @private
   */
  _sleep(ticket, ms) {
    return new Promise((resolve, reject) => {
      if (ticket.error !== null) {
        reject(ticket.error);
        return;
      }
      const timer = setTimeout(() => {
        ticket.wake = null;
        resolve();
      }, ms);
      ticket.wake = (error) => {
        clearTimeout(timer);
        ticket.wake = null;
        reject(error);
      };
    });
  }

  /**
   * Resolves when the client joined its room again; rejects at the deadline, on
   * close() and when the client gives up.
   * @param {RetryTicket} ticket
   * @param {number} deadline  Date.now() value
   * @param {string} op
   * @returns {Promise<void>}
   * @private
   */
  _whenJoined(ticket, deadline, op) {
    return new Promise((resolve, reject) => {
      /** @type {JoinWaiter} */
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          ticket.wake = null;
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          ticket.wake = null;
          this._joinWaiters.delete(waiter);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        waiter.reject(new HudongError("timeout", `${op}: the room was not joined again within the retry deadline`));
      }, Math.max(0, deadline - Date.now()));
      this._joinWaiters.add(waiter);
      ticket.wake = waiter.reject;
    });
  }

  /**
   * Vote in a poll: `ballot` is {option} (single), {options} (multiple), {ranking}
   * (ranked), {rating} or {text}. A new vote replaces the previous one while the poll is open.
   * @param {string} interaction
   * @param {Ballot} ballot
   * @param {{key?: string}} [options]
   * @returns {Promise<AckMessage>}
   */
  vote(interaction, ballot, options) {
    /** @type {Record<string, unknown>} */
    const fields = { interaction };
    for (const name of BALLOT_FIELDS) {
      const value = /** @type {Record<string, unknown>} */ (ballot ?? {})[name];
      if (value !== undefined) fields[name] = value;
    }
    return this.participate("vote", fields, options);
  }

  /**
   * Answer a quiz question.
   * @param {string} interaction
   * @param {string} question
   * @param {string} option
   * @param {{key?: string}} [options]
   */
  answer(interaction, question, option, options) {
    return this.participate("answer", { interaction, question, option }, options);
  }

  /**
   * Pick an option in a co-design slot (changeable while the slot is open).
   * @param {string} interaction
   * @param {string} slot
   * @param {string} option
   * @param {{key?: string}} [options]
   */
  pick(interaction, slot, option, options) {
    return this.participate("pick", { interaction, slot, option }, options);
  }

  /**
   * Withdraw the pick in a co-design slot.
   * @param {string} interaction
   * @param {string} slot
   * @param {{key?: string}} [options]
   */
  unpick(interaction, slot, options) {
    return this.participate("unpick", { interaction, slot }, options);
  }

  /**
   * Enter a lucky draw (source `entry`).
   * @param {string} interaction
   * @param {{key?: string}} [options]
   */
  enter(interaction, options) {
    return this.participate("enter", { interaction }, options);
  }

  /**
   * Ask a question on a Q&A board.
   * @param {string} interaction
   * @param {string} text
   * @param {{key?: string}} [options]
   */
  ask(interaction, text, options) {
    return this.participate("ask", { interaction, text }, options);
  }

  /**
   * Upvote a Q&A question.
   * @param {string} interaction
   * @param {string} question
   * @param {{key?: string}} [options]
   */
  upvote(interaction, question, options) {
    return this.participate("upvote", { interaction, question }, options);
  }

  /**
   * Withdraw an upvote.
   * @param {string} interaction
   * @param {string} question
   * @param {{key?: string}} [options]
   */
  unvote(interaction, question, options) {
    return this.participate("unvote", { interaction, question }, options);
  }

  /**
   * Check in to the room; the ack has `count` and `already`.
   * @param {{key?: string}} [options]
   */
  checkin(options) {
    return this.participate("checkin", {}, options);
  }

  /**
   * Post to the room's wall; the ack has `post` (its id) and `status` ("pending" or "approved").
   * @param {string} text
   * @param {{key?: string}} [options]
   */
  post(text, options) {
    return this.participate("post", { text }, options);
  }

  // --- host and moderator operations (PROTOCOL.md, "Host operations over the WebSocket") ----

  /**
   * A host operation `{op: "host", action, ...fields}`, sent once: most are repeat-safe
   * on the server, but `create` is not, so retrying is the caller's decision.
   * @param {string} action
   * @param {Record<string, unknown>} [fields]
   * @returns {Promise<AckMessage>}
   */
  host(action, fields = {}) {
    return this._command("host", { action, ...fields });
  }

  /**
   * Create an interaction; the ack has `interaction`, `version` and `view`.
   * @template {keyof import("./protocol.js").SpecsByKind} K
   * @param {K} kind  a kind hosts create (poll, quiz, codesign, draw, qa, …)
   * @param {import("./protocol.js").SpecsByKind[K]} spec  the kind's spec (protocol.d.ts)
   */
  createInteraction(kind, spec) {
    return this.host("create", { kind, spec });
  }

  /**
   * Act on an interaction: `open`, `close`, `reveal`, `ask`, `lock`, `run`, `pin`, …
   * @param {string} interaction
   * @param {string} action
   * @param {Record<string, unknown>} [fields]  the action's fields (question, slot, text, …)
   */
  act(interaction, action, fields = {}) {
    return this.host(action, { interaction, ...fields });
  }

  /**
   * Take a danmaku back: everyone gets a `retract` event.
   * @param {string} eventId  the danmaku event's id
   */
  retract(eventId) {
    return this.host("retract", { event: eventId });
  }

  /**
   * Mute a user (danmaku, questions and posts refused with `muted`).
   * @param {string} userId
   * @param {number} [durationS]  seconds; the server's default without it
   */
  mute(userId, durationS) {
    return this.host("mute", { user: userId, duration_s: durationS });
  }

  /** @param {string} userId */
  unmute(userId) {
    return this.host("unmute", { user: userId });
  }

  /**
   * Ban a user from the room: their connections are closed with 4003.
   * @param {string} userId
   */
  ban(userId) {
    return this.host("ban", { user: userId });
  }

  /** @param {string} userId */
  unban(userId) {
    return this.host("unban", { user: userId });
  }

  /**
   * Send a command with a fresh id; the promise settles on the reply with that id.
   * Fields that are undefined are left out.
   * @param {string} op
   * @param {Record<string, unknown>} fields
   * @returns {Promise<any>}
   * @private
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
      this._pending.set(id, { op, command, resolve, reject, timer });
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

  /** @private @param {string | ArrayBuffer | ArrayBufferView} data */
  _receive(data) {
    this._lastHeardAt = Date.now();
    this._framesHeard += 1;
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
        this._onJoined(message);
        break;
      case "ack":
      case "pong":
      case "error":
        this._settle(message);
        break;
      case "batch":
        this._onBatch(message);
        break;
      case "state":
        this._onState(message);
        break;
      case "snapshot":
        this._askedSnapshot = false;
        if (typeof message.id === "number") this._settle(message);
        if (message.snapshot && typeof message.snapshot === "object") {
          this.seq = message.snapshot.seq ?? this.seq;
          const changed = this.roomState.applySnapshot(message.snapshot);
          this._emit("snapshot", message.snapshot, message);
          this._emitViews(changed);
        }
        break;
      case "notice":
        this._onNotice(message);
        break;
      case "online":
        if (Number.isInteger(message.online)) {
          this.roomState.online = message.online;
          this._emit("online", message.online, message);
        }
        break;
      default:
        // A newer server's message type: already reported as "message".
        break;
    }
  }

  /** @private @param {HelloMessage} hello */
  _onHello(hello) {
    this.hello = hello;
    this._emit("hello", hello);
    if (hello.protocol !== PROTOCOL_VERSION) {
      this._refuseProtocol(hello);
      return;
    }
    const connecting = this._connecting;
    if (connecting === null || this._state === ConnectionState.CLOSING) return;
    this._connecting = null;
    clearTimeout(connecting.timer);
    if (this.reconnect) this._keep = true;
    this._setState(ConnectionState.CONNECTED);
    if (Number.isFinite(hello.heartbeat_ms) && hello.heartbeat_ms > 0) this._armHeartbeat(hello.heartbeat_ms);
    connecting.resolve(hello);
  }

  /**
   * The server speaks another protocol: drop the socket and stop (no reconnect: the
   * same server would say the same). connect() and open() reject with the error, and
   * `error` reports it; the state goes `disconnected`.
   * @param {HelloMessage} hello
   * @private
   */
  _refuseProtocol(hello) {
    const ws = this._ws;
    const error = new HudongError(
      "protocol_mismatch",
      `the server speaks ${JSON.stringify(hello.protocol ?? null)}, this client ${PROTOCOL_VERSION}: ` +
        "use the client that the node serves at /static/client/hudong.js",
    );
    error.serverProtocol = typeof hello.protocol === "string" ? hello.protocol : null;
    if (!this._recovering) this._emit("error", error); // giving up reports it otherwise
    this._abandon(ws, "protocol mismatch");
    this._finish(ws, { code: 1002, reason: "protocol mismatch", wasClean: false }, error, false);
  }

  /** @private @param {JoinedMessage} joined */
  _onJoined(joined) {
    const pending = typeof joined.id === "number" ? this._pending.get(joined.id) : undefined;
    this.you = joined.you;
    this.room = joined.snapshot?.room?.id ?? null;
    this.seq = joined.snapshot?.seq ?? null;
    // An anonymous viewer keeps the token the server made for it: joining with it
    // again keeps its identity (and its idempotency keys) across reconnects.
    if (typeof joined.token === "string") this.token = joined.token;
    else if (pending?.op === "join") this.token = /** @type {string | undefined} */ (pending.command.token) ?? null;
    this._askedSnapshot = false;
    const changed = joined.snapshot && typeof joined.snapshot === "object" ? this.roomState.applySnapshot(joined.snapshot) : [];
    this._settle(joined);
    this._emit("joined", joined);
    this._emit("snapshot", joined.snapshot, joined);
    this._emitViews(changed);
  }

  /** @private @param {BatchMessage} batch */
  _onBatch(batch) {
    this.seq = batch.seq;
    this._emit("batch", batch);
    for (const event of batch.events ?? []) {
      if (event === null || typeof event !== "object") continue;
      if (event.type === "danmaku") this.roomState.addDanmaku(event);
      else if (event.type === "retract") this.roomState.retract(event.id);
      this._emit("event", event, batch);
      if (typeof event.type !== "string" || event.type === "") continue;
      const type = eventName(event.type);
      // danmaku and retract are batch events themselves; no other type may pose as one of ours
      if (type === "danmaku" || type === "retract" || !OWN_EVENTS.has(type)) this._emit(type, event, batch);
    }
  }

  /**
   * A `state` message: changes against a version (PROTOCOL.md, "State messages"). The
   * "views" event gets it with `interactions` the whole views it changed, patches
   * applied, as before deltas. A gap (a message missed) asks for a snapshot; state
   * messages are passed over until it arrives.
   * @param {StateMessage} message
   */
  _onState(message) {
    if (this._askedSnapshot) return;
    const applied = this.roomState.applyState(message);
    if (applied === null) {
      this._askSnapshot();
      return;
    }
    const seen = message.patches === undefined ? message : { ...message, interactions: applied.views };
    if (seen !== message) delete seen.patches;
    this._emit("views", seen);
    this._emitViews(applied.changed);
  }

  /** Ask for the room's snapshot once; asked again at the next gap if this one fails. */
  _askSnapshot() {
    this._askedSnapshot = true;
    this._command("snapshot", {}).catch(() => {
      this._askedSnapshot = false;
    });
  }

  /** @private @param {import("./room.js").ViewChange[]} changed */
  _emitViews(changed) {
    for (const [view, previous] of changed) {
      this._emit("interaction", view, previous);
      if (typeof view.kind === "string" && view.kind !== "" && !OWN_EVENTS.has(view.kind)) this._emit(view.kind, view, previous);
    }
  }

  /** @private @param {NoticeMessage} notice */
  _onNotice(notice) {
    if (notice.kind === "degrade" && Number.isInteger(notice.level)) {
      this.roomState.degrade = /** @type {number} */ (notice.level);
    }
    this._emit("notice", notice);
    if (notice.kind === "degrade") this._emit("degrade", { level: notice.level, name: notice.name });
    else if (typeof notice.kind === "string" && notice.kind !== "") {
      const type = eventName(notice.kind);
      if (!OWN_EVENTS.has(type)) this._emit(type, notice);
    }
  }

  /**
   * Settle the pending command a reply answers; an `error` that answers none is an
   * "error" event.
   * @param {JoinedMessage | AckMessage | PongMessage | ErrorMessage} reply
   * @private
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

/**
 * Why reconnecting stops after a close that says not to: `code` is the close's name.
 * @param {CloseInfo} info
 */
function closeError(info) {
  return new HudongError(
    info.name,
    `the connection closed for good: ${info.code} ${info.name}${info.reason ? ` (${info.reason})` : ""}`,
    { close: info },
  );
}

export default HudongClient;
