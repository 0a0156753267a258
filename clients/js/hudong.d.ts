// Generated from hudong.js's JSDoc by `npm run types` (scripts/emit-types.mjs); do not edit.
/**
 * The listener type of a batch event's `type` or a notice's `kind`: its camelCase form
 * (`draw_result` → `drawResult`, `design_revealed` → `designRevealed`, `draw_won` →
 * `drawWon`), for any type a server sends, today's and those to come.
 * @param {string} type
 */
export function eventName(type: string): string;
/**
 * A fresh idempotency key: a UUID, or 16 random bytes in hex where randomUUID is
 * missing (browsers only have it in secure contexts).
 * @returns {string}
 */
export function idempotencyKey(): string;
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
export const ConnectionState: Readonly<{
    DISCONNECTED: "disconnected";
    CONNECTING: "connecting";
    CONNECTED: "connected";
    CLOSING: "closing";
    RECONNECTING: "reconnecting";
}>;
/** @typedef {typeof ConnectionState[keyof typeof ConnectionState]} ConnectionStateValue */
/**
 * The protocol this client speaks (protocol/messages.py PROTOCOL_VERSION): a server
 * whose `hello` names another is refused with `protocol_mismatch`.
 * @type {ProtocolVersion}
 */
export const PROTOCOL_VERSION: ProtocolVersion;
/** The largest command id (PROTOCOL.md, "Commands": 0 … 2^53−1). */
export const MAX_ID: number;
/** How long connect(), commands and close() wait by default. */
export const DEFAULT_TIMEOUT_MS: 10000;
/** How long a state-changing command is retried at most, by default. */
export const DEFAULT_RETRY_DEADLINE_MS: 120000;
/** What an idempotency key must look like (PROTOCOL.md, "Idempotency keys"). */
export const KEY_PATTERN: RegExp;
/**
 * Error codes this client raises itself; the server's are in ERRORS (codes.js).
 * `retry` has the meaning of ERRORS: whether the same command may succeed later.
 * A command that timed out or was cut off by a close may have been applied.
 */
export const CLIENT_ERRORS: Readonly<{
    timeout: {
        retry: boolean;
        description: string;
    };
    disconnected: {
        retry: boolean;
        description: string;
    };
    transport_error: {
        retry: boolean;
        description: string;
    };
    bad_frame: {
        retry: boolean;
        description: string;
    };
    protocol_mismatch: {
        retry: boolean;
        description: string;
    };
}>;
/**
 * The client's own event types. A batch event, a notice or an interaction kind whose
 * name would be one of these is emitted only as `event`, `notice` or `interaction`, so
 * a server's new type can never pose as one of the client's events.
 */
export const CLIENT_EVENTS: readonly string[];
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
    /** @param {ErrorMessage} reply */
    static fromReply(reply: ErrorMessage): HudongError;
    /**
     * @param {string} code
     * @param {string} message
     * @param {{id?: number|null, retryAfterMs?: number, limit?: number, reply?: ErrorMessage, close?: CloseInfo, cause?: unknown}} [details]
     */
    constructor(code: string, message: string, details?: {
        id?: number | null;
        retryAfterMs?: number;
        limit?: number;
        reply?: ErrorMessage;
        close?: CloseInfo;
        cause?: unknown;
    });
    /** @type {string} */
    code: string;
    /** Whether the same command may succeed later. */
    retry: boolean;
    /** The id of the command this answers, or null. */
    id: number;
    /** For retryable server codes (rate_limited, store_unavailable, muted, …): when to try again. */
    retryAfterMs: number;
    /** For text_too_long and frame_too_large: the limit. */
    limit: number;
    /** The server's `error` message, when there was one. */
    reply: import("./protocol.js").ErrorMessage;
    /** For `disconnected`: the close that cut the command off. */
    close: CloseInfo;
    /** @type {string | null | undefined} For `protocol_mismatch`: the server's protocol. */
    serverProtocol: string | null | undefined;
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
    constructor(url: string | URL, options?: HudongClientOptions);
    url: string | URL;
    /** @type {Readonly<Codec>} */
    codec: Readonly<Codec>;
    /** @private */
    private _WebSocket;
    timeoutMs: number;
    /** Whether a lost connection is reconnected (and the room joined again); may be changed. */
    reconnect: boolean;
    /** @type {Readonly<Backoff>} */
    backoff: Readonly<Backoff>;
    /** @type {Readonly<{deadlineMs: number}>} */
    retry: Readonly<{
        deadlineMs: number;
    }>;
    /** @private */
    private _random;
    /** @private @type {ConnectionStateValue} */
    private _state;
    /** @private @type {any} the current WebSocket; events of any other are stale and ignored */
    private _ws;
    /** @private */
    private _nextId;
    /** @private @type {Map<number, Pending>} */
    private _pending;
    /** @private @type {Map<string, Set<Function>>} */
    private _listeners;
    /** @private @type {{promise: Promise<HelloMessage>, resolve: (hello: HelloMessage) => void, reject: (error: HudongError) => void, timer: ReturnType<typeof setTimeout>} | null} */
    private _connecting;
    /** @private @type {Array<(info: CloseInfo) => void>} */
    private _closeWaiters;
    /** @private */
    private _closeRequested;
    /**
     * Whether the client should be connected (and joined to _target): until close() or giving up.
     * @private
     */
    private _keep;
    /** @private @type {{room: string, token?: string, name?: string, lang?: string} | null} the room to be in */
    private _target;
    /**
     * A connection was lost and is being brought back (for `resync` and for reporting a stop).
     * @private
     */
    private _recovering;
    /**
     * An attempt (connect + join) is under way; it, not the close, decides what follows.
     * @private
     */
    private _attempting;
    /**
     * Attempts since the last success: the backoff's exponent.
     * @private
     */
    private _attempt;
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    private _reconnectTimer;
    /** @private @type {Set<JoinWaiter>} open() calls and retries waiting for the room */
    private _joinWaiters;
    /** @private @type {Set<RetryTicket>} */
    private _tickets;
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    private _heartbeatTimer;
    /** @private */
    private _lastHeardAt;
    /** @private */
    private _framesHeard;
    /** @type {HelloMessage | null} the server's hello on the current connection */
    hello: HelloMessage | null;
    /** @type {User | null} who this connection joined as */
    you: User | null;
    /** @type {string | null} the joined room */
    room: string | null;
    /** @type {number | null} seq of the last batch or snapshot seen */
    seq: number | null;
    /** @type {{room: string, token?: string, name?: string, lang?: string} | null} the last successful join's arguments */
    lastJoin: {
        room: string;
        token?: string;
        name?: string;
        lang?: string;
    } | null;
    /** @type {string | null} the token joins use: the one given, or the one the server gave an anonymous viewer */
    token: string | null;
    /** @type {CloseInfo | null} */
    lastClose: CloseInfo | null;
    /**
     * What is known of the room; kept over reconnects until the next snapshot.
     * @type {import("./room.js").RoomState}
     */
    roomState: import("./room.js").RoomState;
    /** A state message showed a gap and a snapshot was asked for; none answered yet. */
    _askedSnapshot: boolean;
    /** @returns {ConnectionStateValue} */
    get state(): ConnectionStateValue;
    /** The last snapshot (from `joined` or a `snapshot` message), as it arrived. */
    get snapshot(): Record<string, any>;
    /** Interaction id -> its current view, from snapshots and `state` messages. */
    get interactions(): Map<string, import("./room.js").View>;
    /** The room's degrade level, 0-3. */
    get degrade(): number;
    /** Viewers in the room now: the snapshot's count, then each `online` message's. */
    get online(): number;
    /** The recent danmaku, oldest first, at most RECENT_SIZE; retracted ones removed. */
    get recent(): Record<string, any>[];
    /**
     * The current view of interaction `id`.
     * @param {string} id
     * @returns {View | undefined}
     */
    interaction(id: string): View | undefined;
    /**
     * Add a listener; returns a function that removes it.
     * @template {keyof HudongEvents} K
     * @param {K} type
     * @param {HudongEvents[K]} listener
     * @returns {() => void}
     */
    on<K extends keyof HudongEvents>(type: K, listener: HudongEvents[K]): () => void;
    /**
     * @template {keyof HudongEvents} K
     * @param {K} type
     * @param {HudongEvents[K]} listener
     */
    off<K extends keyof HudongEvents>(type: K, listener: HudongEvents[K]): void;
    /**
     * @param {string} type
     * @param {...unknown} args
     * @private
     */
    private _emit;
    /** @private @param {ConnectionStateValue} state */
    private _setState;
    /**
     * Open the WebSocket; resolves with the server's `hello` (PROTOCOL.md, "Session").
     * Rejects with HudongError `timeout`, `disconnected` or `transport_error`; a failed
     * connect() is not retried (open() is). Once connected, a lost connection is
     * reconnected if `reconnect` is on.
     * @returns {Promise<HelloMessage>}
     */
    connect(): Promise<HelloMessage>;
    /** @private @returns {Promise<HelloMessage>} the hello of the attempt that just started */
    private _helloOfAttempt;
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
    open(room: string, { token, name, lang }?: {
        token?: string;
        name?: string;
        lang?: string;
    }): Promise<JoinedMessage>;
    /**
     * Close the connection (1000 by default) and stop reconnecting and retrying (pending
     * retries reject with `disconnected`); resolves with the close's CloseInfo once the
     * socket closed, or after timeoutMs (then the socket is dropped).
     * @param {number} [code]  1000 or 3000 … 4999 (what browsers allow)
     * @param {string} [reason]
     * @returns {Promise<CloseInfo>}
     */
    close(code?: number, reason?: string): Promise<CloseInfo>;
    /**
     * Open a new socket (the state is DISCONNECTED or RECONNECTING); resolves on `hello`.
     * @returns {Promise<HelloMessage>}
     * @private
     */
    private _openSocket;
    /**
     * Stop listening to `ws` and drop it without waiting for the closing handshake.
     * @param {any} ws
     * @param {string} reason
     * @private
     */
    private _abandon;
    /**
     * Give up on `ws` now, as if it had closed with `code`.
     * @param {any} ws
     * @param {number} code
     * @param {string} reason
     * @param {boolean} reconnect  what the CloseInfo says
     * @private
     */
    private _drop;
    /**
     * The socket `ws` is gone: settle everything that waited on it, once, and decide
     * whether to reconnect.
     * @param {any} ws
     * @param {{code: number, reason: string, wasClean: boolean}} close
     * @param {HudongError} [connectError]  the error connect() rejects with, if still pending
     * @param {boolean} [reconnect]         overrides what the close code says
     * @private
     */
    private _finish;
    /**
     * Wait, then make the next attempt.
     * @param {CloseInfo | null} close
     * @param {HudongError} [error]
     * @private
     */
    private _schedule;
    /** @private */
    private _cancelReconnectTimer;
    /**
     * One attempt: connect if need be, then join the target room if there is one.
     * @private
     */
    private _run;
    /** @private @param {JoinedMessage | null} joined */
    private _succeeded;
    /** @private @param {unknown} err why the attempt failed */
    private _failed;
    /**
     * Stop keeping the room: reject open() and pending retries with `error`, close the
     * socket if one is open, and report it if a lost connection was being brought back.
     * @param {HudongError} error
     * @private
     */
    private _giveUp;
    /** @private @param {HudongError} error */
    private _cancelWaits;
    /**
     * Joined to a room on a live connection.
     * @private
     */
    private _isJoined;
    /**
     * The client will join its room (again) by itself.
     * @private
     */
    private _willRejoin;
    /** @private @param {number} ms */
    private _armHeartbeat;
    /** @private */
    private _stopHeartbeat;
    /**
     * Nothing arrived for heartbeat_ms: ask for a pong. If neither it nor anything else
     * arrives within timeoutMs, the connection is dead: drop it and reconnect.
     * @private
     */
    private _heartbeat;
    /**
     * Join `room` on the connected client (one attempt); resolves with the `joined`
     * message. Without a token the client joins as an anonymous viewer called `name`, if
     * the room allows it; with a guest's token, `name` renames that guest (same id).
     * After a lost connection the client joins this room again.
     * @param {string} room
     * @param {{token?: string, name?: string, lang?: string}} [options]
     * @returns {Promise<JoinedMessage>}
     */
    join(room: string, { token, name, lang }?: {
        token?: string;
        name?: string;
        lang?: string;
    }): Promise<JoinedMessage>;
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
    sendDanmaku(text: string, { color, mode }?: {
        color?: string;
        mode?: "scroll" | "top" | "bottom";
    }): Promise<AckMessage>;
    /**
     * Send a command once, as it is: no idempotency key, no retry. For commands whose
     * effect may be lost but must not be repeated by a retry, like the taps of a
     * `react` (PROTOCOL.md, "Viewer commands"). Resolves with the answer (`ack`);
     * rejects with the `error`, or with `timeout` / `disconnected`.
     * @param {string} op
     * @param {Record<string, unknown>} [fields]
     * @returns {Promise<AckMessage>}
     */
    send(op: string, fields?: Record<string, unknown>): Promise<AckMessage>;
    /**
     * An application-level round trip; resolves with the `pong`.
     * @returns {Promise<PongMessage>}
     */
    ping(): Promise<PongMessage>;
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
    participate(op: string, fields?: Record<string, unknown>, { key }?: {
        key?: string;
    }): Promise<AckMessage>;
    /**
     * @param {string} op
     * @param {Record<string, unknown>} command
     * @returns {Promise<AckMessage>}
     * @private
     */
    private _untilAcknowledged;
    /**
     * @param {RetryTicket} ticket
     * @param {number} ms
     * @returns {Promise<void>}
     * @private
     */
    private _sleep;
    /**
     * Resolves when the client joined its room again; rejects at the deadline, on
     * close() and when the client gives up.
     * @param {RetryTicket} ticket
     * @param {number} deadline  Date.now() value
     * @param {string} op
     * @returns {Promise<void>}
     * @private
     */
    private _whenJoined;
    /**
     * Vote in a poll: `ballot` is {option} (single), {options} (multiple), {ranking}
     * (ranked), {rating} or {text}. A new vote replaces the previous one while the poll is open.
     * @param {string} interaction
     * @param {Ballot} ballot
     * @param {{key?: string}} [options]
     * @returns {Promise<AckMessage>}
     */
    vote(interaction: string, ballot: Ballot, options?: {
        key?: string;
    }): Promise<AckMessage>;
    /**
     * Answer a quiz question.
     * @param {string} interaction
     * @param {string} question
     * @param {string} option
     * @param {{key?: string}} [options]
     */
    answer(interaction: string, question: string, option: string, options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * Pick an option in a co-design slot (changeable while the slot is open).
     * @param {string} interaction
     * @param {string} slot
     * @param {string} option
     * @param {{key?: string}} [options]
     */
    pick(interaction: string, slot: string, option: string, options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * Withdraw the pick in a co-design slot.
     * @param {string} interaction
     * @param {string} slot
     * @param {{key?: string}} [options]
     */
    unpick(interaction: string, slot: string, options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * Enter a lucky draw (source `entry`).
     * @param {string} interaction
     * @param {{key?: string}} [options]
     */
    enter(interaction: string, options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * Ask a question on a Q&A board.
     * @param {string} interaction
     * @param {string} text
     * @param {{key?: string}} [options]
     */
    ask(interaction: string, text: string, options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * Upvote a Q&A question.
     * @param {string} interaction
     * @param {string} question
     * @param {{key?: string}} [options]
     */
    upvote(interaction: string, question: string, options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * Withdraw an upvote.
     * @param {string} interaction
     * @param {string} question
     * @param {{key?: string}} [options]
     */
    unvote(interaction: string, question: string, options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * Check in to the room; the ack has `count` and `already`.
     * @param {{key?: string}} [options]
     */
    checkin(options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * Post to the room's wall; the ack has `post` (its id) and `status` ("pending" or "approved").
     * @param {string} text
     * @param {{key?: string}} [options]
     */
    post(text: string, options?: {
        key?: string;
    }): Promise<import("./protocol.js").AckMessage>;
    /**
     * A host operation `{op: "host", action, ...fields}`, sent once: most are repeat-safe
     * on the server, but `create` is not, so retrying is the caller's decision.
     * @param {string} action
     * @param {Record<string, unknown>} [fields]
     * @returns {Promise<AckMessage>}
     */
    host(action: string, fields?: Record<string, unknown>): Promise<AckMessage>;
    /**
     * Create an interaction; the ack has `interaction`, `version` and `view`.
     * @template {keyof import("./protocol.js").SpecsByKind} K
     * @param {K} kind  a kind hosts create (poll, quiz, codesign, draw, qa, …)
     * @param {import("./protocol.js").SpecsByKind[K]} spec  the kind's spec (protocol.d.ts)
     */
    createInteraction<K extends keyof import("./protocol.js").SpecsByKind>(kind: K, spec: import("./protocol.js").SpecsByKind[K]): Promise<import("./protocol.js").AckMessage>;
    /**
     * Act on an interaction: `open`, `close`, `reveal`, `ask`, `lock`, `run`, `pin`, …
     * @param {string} interaction
     * @param {string} action
     * @param {Record<string, unknown>} [fields]  the action's fields (question, slot, text, …)
     */
    act(interaction: string, action: string, fields?: Record<string, unknown>): Promise<import("./protocol.js").AckMessage>;
    /**
     * Take a danmaku back: everyone gets a `retract` event.
     * @param {string} eventId  the danmaku event's id
     */
    retract(eventId: string): Promise<import("./protocol.js").AckMessage>;
    /**
     * Mute a user (danmaku, questions and posts refused with `muted`).
     * @param {string} userId
     * @param {number} [durationS]  seconds; the server's default without it
     */
    mute(userId: string, durationS?: number): Promise<import("./protocol.js").AckMessage>;
    /** @param {string} userId */
    unmute(userId: string): Promise<import("./protocol.js").AckMessage>;
    /**
     * Ban a user from the room: their connections are closed with 4003.
     * @param {string} userId
     */
    ban(userId: string): Promise<import("./protocol.js").AckMessage>;
    /** @param {string} userId */
    unban(userId: string): Promise<import("./protocol.js").AckMessage>;
    /**
     * Send a command with a fresh id; the promise settles on the reply with that id.
     * Fields that are undefined are left out.
     * @param {string} op
     * @param {Record<string, unknown>} fields
     * @returns {Promise<any>}
     * @private
     */
    private _command;
    /** @private @param {string | ArrayBuffer | ArrayBufferView} data */
    private _receive;
    /** @private @param {HelloMessage} hello */
    private _onHello;
    /**
     * The server speaks another protocol: drop the socket and stop (no reconnect: the
     * same server would say the same). connect() and open() reject with the error, and
     * `error` reports it; the state goes `disconnected`.
     * @param {HelloMessage} hello
     * @private
     */
    private _refuseProtocol;
    /** @private @param {JoinedMessage} joined */
    private _onJoined;
    /** @private @param {BatchMessage} batch */
    private _onBatch;
    /**
     * A `state` message: changes against a version (PROTOCOL.md, "State messages"). The
     * "views" event gets it with `interactions` the whole views it changed, patches
     * applied, as before deltas. A gap (a message missed) asks for a snapshot; state
     * messages are passed over until it arrives.
     * @param {StateMessage} message
     */
    _onState(message: StateMessage): void;
    /** Ask for the room's snapshot once; asked again at the next gap if this one fails. */
    _askSnapshot(): void;
    /** @private @param {import("./room.js").ViewChange[]} changed */
    private _emitViews;
    /** @private @param {NoticeMessage} notice */
    private _onNotice;
    /**
     * Settle the pending command a reply answers; an `error` that answers none is an
     * "error" event.
     * @param {JoinedMessage | AckMessage | PongMessage | ErrorMessage} reply
     * @private
     */
    private _settle;
}
export default HudongClient;
export type Codec = import("./codec.js").Codec;
export type Backoff = import("./backoff.js").Backoff;
export type View = import("./room.js").View;
export type ConnectionStateValue = (typeof ConnectionState)[keyof typeof ConnectionState];
export type User = import("./protocol.js").User;
export type DanmakuEvent = import("./protocol.js").DanmakuEvent;
export type RetractEvent = import("./protocol.js").RetractEvent;
export type BatchEvent = import("./protocol.js").BatchEvent;
export type Snapshot = import("./protocol.js").Snapshot;
export type HelloMessage = import("./protocol.js").HelloMessage;
export type JoinedMessage = import("./protocol.js").JoinedMessage;
export type AckMessage = import("./protocol.js").AckMessage;
export type PongMessage = import("./protocol.js").PongMessage;
export type ErrorMessage = import("./protocol.js").ErrorMessage;
export type BatchMessage = import("./protocol.js").BatchMessage;
export type SnapshotMessage = import("./protocol.js").SnapshotMessage;
export type StateMessage = import("./protocol.js").StateMessage;
export type OnlineMessage = import("./protocol.js").OnlineMessage;
export type NoticeMessage = import("./protocol.js").NoticeMessage;
export type ServerMessage = import("./protocol.js").ServerMessage;
export type InteractionView = import("./protocol.js").InteractionView;
export type ViewEvents = import("./protocol.js").ViewEvents;
export type ProtocolVersion = import("./protocol.js").ProtocolVersion;
export type DrawResultEvent = {
    type: "draw_result";
    interaction: string;
    title: string;
    winners: string[];
    ts: number;
};
export type DesignRevealedEvent = {
    type: "design_revealed";
    interaction: string;
    final: Record<string, unknown>;
    ts: number;
};
export type QuizRevealedEvent = {
    type: "quiz_revealed";
    interaction: string;
    question: string | null;
    final: boolean;
    ts: number;
};
/**
 * one of the fields, as the poll's kind needs
 */
export type Ballot = {
    /**
     * single
     */
    option?: string;
    /**
     * multiple
     */
    options?: string[];
    /**
     * ranked, best first
     */
    ranking?: string[];
    /**
     * rating, 1 … scale
     */
    rating?: number;
    /**
     * text
     */
    text?: string;
};
/**
 * What a close event reports.
 */
export type CloseInfo = {
    /**
     * the WebSocket close code
     */
    code: number;
    reason: string;
    /**
     * the code's name in CLOSES (codes.js), a transport name
     * (going_away, no_status, abnormal_closure) or "unknown"
     */
    name: string;
    /**
     * whether reconnecting with the same credentials can
     * succeed; false after close() and for unknown codes
     */
    reconnect: boolean;
    /**
     * close() was called on this client
     */
    byClient: boolean;
    /**
     * the closing handshake completed
     */
    wasClean: boolean;
};
/**
 * What a `reconnecting` event reports: the client waits `delayMs`, then makes attempt
 * number `attempt` (0 for the first after a loss).
 */
export type ReconnectingInfo = {
    attempt: number;
    delayMs: number;
    /**
     * the close that made it reconnect
     */
    close: CloseInfo | null;
    /**
     * the error of the failed attempt, if one failed
     */
    error?: HudongError;
};
/**
 * Listener signatures, by event type. Besides these, each event type a server sends is an
 * event of its own under its camelCase name (see eventName; not when that is one of
 * CLIENT_EVENTS): a batch event `(event, batch)` (`draw_result` → `drawResult`,
 * `design_revealed` → `designRevealed`), a notice `(notice)` (`draw_won` → `drawWon`),
 * and a view that changed `(view, previous)` under its `kind` (every kind: today's polls,
 * quizzes, co-designs, draws, Q&A boards, check-in and wall, and kinds to come).
 */
export type BaseEvents = {
    state: (state: ConnectionStateValue, previous: ConnectionStateValue) => void;
    hello: (hello: HelloMessage) => void;
    joined: (joined: JoinedMessage) => void;
    /**
     *   the room to draw: after a join, after a change of the room, after a slow connection drained
     */
    snapshot: (snapshot: Snapshot, message: JoinedMessage | SnapshotMessage) => void;
    /**
     * the room was joined again after a lost connection
     */
    resync: (snapshot: Snapshot) => void;
    reconnecting: (info: ReconnectingInfo) => void;
    batch: (batch: BatchMessage) => void;
    /**
     * every event of every batch
     */
    event: (event: {
        type: string;
        [field: string]: any;
    }, batch: BatchMessage) => void;
    danmaku: (event: DanmakuEvent, batch: BatchMessage) => void;
    retract: (event: RetractEvent, batch: BatchMessage) => void;
    drawResult: (event: DrawResultEvent, batch: BatchMessage) => void;
    designRevealed: (event: DesignRevealedEvent, batch: BatchMessage) => void;
    quizRevealed: (event: QuizRevealedEvent, batch: BatchMessage) => void;
    /**
     * a `state` message
     */
    views: (message: StateMessage) => void;
    /**
     * a view changed
     */
    interaction: (view: InteractionView, previous: InteractionView | undefined) => void;
    notice: (notice: NoticeMessage) => void;
    drawWon: (notice: NoticeMessage) => void;
    /**
     * this player's own `rank`,
     * `points`, `correct` and `players` once a quiz answer is revealed (`final` once finished)
     */
    quizStanding: (notice: NoticeMessage) => void;
    degrade: (degrade: {
        level: number;
        name: string;
    }) => void;
    /**
     * viewers in the room now
     * (also `roomState.online`); the server sends it when the count moved, at most once a second
     */
    online: (online: number, message: OnlineMessage) => void;
    /**
     * every decoded server message
     */
    message: (message: ServerMessage) => void;
    /**
     *   an error that answers no pending command: an `error` with id null or an unknown
     *   id, an undecodable frame, a transport error, or why reconnecting stopped
     */
    error: (error: HudongError) => void;
    /**
     * a socket closed (also a failed attempt's)
     */
    close: (info: CloseInfo) => void;
};
/**
 * Every listener signature: the client's own events, and each interaction kind's views
 * under the kind's name (ViewEvents, generated from the server's registry).
 */
export type HudongEvents = BaseEvents & ViewEvents;
export type HudongClientOptions = {
    /**
     * default "json"
     */
    protocol?: "json" | "msgpack";
    /**
     * overrides `protocol`
     */
    codec?: Codec;
    /**
     * the WebSocket constructor; default globalThis.WebSocket (Node: pass the `ws` package's)
     */
    WebSocket?: typeof globalThis.WebSocket | (new (url: string | URL, protocols?: string[]) => any);
    /**
     * bound on connect(), each command, each heartbeat
     *            ping and close(); default 10 s
     */
    timeoutMs?: number;
    /**
     * reconnect and join again after a lost connection; default true
     */
    reconnect?: boolean;
    /**
     * reconnect and retry delays; default {initialMs: 500, maxMs: 15000}
     */
    backoff?: Partial<Backoff>;
    /**
     * how long viewer commands are retried; default 120 s
     */
    retry?: {
        deadlineMs?: number;
    };
    /**
     * the source of jitter, uniform in [0, 1); default Math.random
     */
    random?: () => number;
};
export type Pending = {
    op: string;
    command: Record<string, unknown>;
    resolve: (message: any) => void;
    reject: (error: HudongError) => void;
    timer: ReturnType<typeof setTimeout>;
};
/**
 * A command being retried until acknowledged: close() and giving up cancel it.
 */
export type RetryTicket = {
    /**
     * why it was cancelled
     */
    error: HudongError | null;
    /**
     * ends the wait it is in
     */
    wake: ((error: HudongError) => void) | null;
};
export type JoinWaiter = {
    resolve: (joined: JoinedMessage | null) => void;
    reject: (error: HudongError) => void;
};
export { CLOSES, CLOSE_BY_CODE, ERRORS } from "./codes.js";
export { CODECS, JSON_CODEC, MSGPACK_CODEC, codecFor } from "./codec.js";
export { DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";
export { RECENT_SIZE, RoomState } from "./room.js";
