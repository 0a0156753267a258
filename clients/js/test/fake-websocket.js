// A fake WebSocket for HudongClient's unit tests: the part of the WebSocket API the
// client uses, plus the server's side to drive it, by hand or with a script.

import { CODECS } from "../codec.js";

export const HELLO = Object.freeze({
  type: "hello",
  protocol: "hudong.v1",
  server: "hudong/test",
  heartbeat_ms: 15000,
  limits: { max_command_bytes: 4096, max_frame_bytes: 65536, max_text_chars: 100, commands_per_s: 5, command_burst: 10 },
});

/**
 * A scripted server: `open(ws)` on every new socket, else `hello` (unless it is
 * false), and `reply(cmd, ws)` for every command: a message to send back, an array of
 * them, or nothing.
 * @typedef {object} FakeServer
 * @property {(ws: FakeWebSocket) => void} [open]
 * @property {object | false} [hello]
 * @property {(cmd: any, ws: FakeWebSocket) => object | object[] | undefined | void} [reply]
 */

export class FakeWebSocket extends EventTarget {
  /** @type {FakeWebSocket[]} */
  static sockets = [];
  /** @type {FakeServer | null} */
  static server = null;
  /** @type {Set<() => void>} */
  static #created = new Set();

  /** Forget every socket and the script (call between tests). */
  static reset() {
    FakeWebSocket.sockets = [];
    FakeWebSocket.server = null;
  }

  static last() {
    return FakeWebSocket.sockets[FakeWebSocket.sockets.length - 1];
  }

  /**
   * Resolves once `count` sockets were created in all; rejects after `ms`.
   * @param {number} count
   * @param {number} [ms]
   * @returns {Promise<FakeWebSocket>}
   */
  static created(count, ms = 2000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (FakeWebSocket.sockets.length < count) return false;
        FakeWebSocket.#created.delete(check);
        clearTimeout(timer);
        resolve(FakeWebSocket.sockets[count - 1]);
        return true;
      };
      const timer = setTimeout(() => {
        FakeWebSocket.#created.delete(check);
        reject(new Error(`socket ${count} was not created within ${ms} ms (${FakeWebSocket.sockets.length} were)`));
      }, ms);
      if (!check()) FakeWebSocket.#created.add(check);
    });
  }

  /**
   * @param {string} url
   * @param {string[]} protocols
   */
  constructor(url, protocols) {
    super();
    this.url = url;
    this.protocols = protocols;
    this.protocol = protocols[0];
    this.binaryType = "blob";
    /** @type {any[]} what the client sent, decoded */
    this.sent = [];
    /** @type {Array<[number|undefined, string|undefined]>} */
    this.closeCalls = [];
    this.closed = false;
    this.codec = protocols[0] === CODECS.msgpack.subprotocol ? CODECS.msgpack : CODECS.json;
    this.script = FakeWebSocket.server;
    FakeWebSocket.sockets.push(this);
    for (const check of [...FakeWebSocket.#created]) check();
    const script = this.script;
    if (script?.open) queueMicrotask(() => script.open?.(this));
    else if (script && script.hello !== false) queueMicrotask(() => this.serverSend(script.hello || HELLO));
  }

  /** @param {string | Uint8Array} data */
  send(data) {
    if (this.closed) return; // as a browser does with a closed socket
    const cmd = this.codec.decode(data);
    this.sent.push(cmd);
    const reply = this.script?.reply?.(cmd, this);
    if (reply) {
      const replies = Array.isArray(reply) ? reply : [reply];
      queueMicrotask(() => {
        for (const message of replies) this.serverSend(message);
      });
    }
  }

  /** What the client sent with this op. @param {string} op */
  sentOps(op) {
    return this.sent.filter((cmd) => cmd.op === op);
  }

  /**
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code, reason) {
    this.closeCalls.push([code, reason]);
    // the server echoes the close frame
    queueMicrotask(() => this.serverClose(code ?? 1005, reason ?? ""));
  }

  // --- the server's side ---

  /** @param {unknown} data a raw frame payload */
  serverFrame(data) {
    if (this.closed) return;
    const event = new Event("message");
    Object.assign(event, { data });
    this.dispatchEvent(event);
  }

  /** @param {object} message */
  serverSend(message) {
    const payload = this.codec.encode(message);
    this.serverFrame(typeof payload === "string" ? payload : payload.slice().buffer);
  }

  /**
   * @param {number} code
   * @param {string} [reason]
   * @param {boolean} [wasClean]
   */
  serverClose(code, reason = "", wasClean = true) {
    // Dispatched even on a closed socket: the client must ignore a stale socket's events.
    this.closed = true;
    const event = new Event("close");
    Object.assign(event, { code, reason, wasClean });
    this.dispatchEvent(event);
  }
}
