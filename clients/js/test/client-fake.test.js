// HudongClient's own bookkeeping, driven through an injected fake WebSocket: no
// network, no server. The live behaviour is in client.test.js.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CODECS } from "../codec.js";
import { ConnectionState, HudongClient, HudongError } from "../hudong.js";

const HELLO = {
  type: "hello",
  protocol: "hudong.v1",
  server: "hudong/test",
  heartbeat_ms: 15000,
  limits: { max_command_bytes: 4096, max_frame_bytes: 65536, max_text_chars: 100, commands_per_s: 5, command_burst: 10 },
};

/** The part of the WebSocket API the client uses, plus a server side to drive it. */
class FakeWebSocket extends EventTarget {
  /** @type {FakeWebSocket[]} */
  static sockets = [];

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
    this.codec = protocols[0] === CODECS.msgpack.subprotocol ? CODECS.msgpack : CODECS.json;
    FakeWebSocket.sockets.push(this);
  }

  static last() {
    return FakeWebSocket.sockets[FakeWebSocket.sockets.length - 1];
  }

  /** @param {string | Uint8Array} data */
  send(data) {
    this.sent.push(this.codec.decode(data));
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
   * @param {string} reason
   */
  serverClose(code, reason = "") {
    const event = new Event("close");
    Object.assign(event, { code, reason, wasClean: true });
    this.dispatchEvent(event);
  }
}

/**
 * @param {"json"|"msgpack"} protocol
 * @param {number} [timeoutMs]
 */
async function connected(protocol = "json", timeoutMs = 1000) {
  const client = new HudongClient("ws://hudong.test/ws", { protocol, WebSocket: FakeWebSocket, timeoutMs });
  const connecting = client.connect();
  const ws = FakeWebSocket.last();
  ws.serverSend(HELLO);
  assert.deepEqual(await connecting, HELLO);
  return { client, ws };
}

describe("HudongClient with a fake WebSocket", () => {
  test("needs a WebSocket constructor", () => {
    const saved = globalThis.WebSocket;
    try {
      // @ts-ignore Node 20 has none; make sure of it
      delete globalThis.WebSocket;
      assert.throws(() => new HudongClient("ws://x/ws"), TypeError);
    } finally {
      if (saved) globalThis.WebSocket = saved;
    }
    assert.throws(() => new HudongClient("ws://x/ws", { protocol: /** @type {any} */ ("xml"), WebSocket: FakeWebSocket }), TypeError);
  });

  for (const protocol of /** @type {const} */ (["json", "msgpack"])) {
    test(`offers the ${protocol} subprotocol and reads binary frames as ArrayBuffer`, async () => {
      const { client, ws } = await connected(protocol);
      assert.deepEqual(ws.protocols, [CODECS[protocol].subprotocol]);
      assert.equal(ws.binaryType, "arraybuffer");
      assert.equal(client.state, ConnectionState.CONNECTED);
      assert.deepEqual(client.hello, HELLO);
    });
  }

  test("ids increase and replies settle their command by id, in any order", async () => {
    const { client, ws } = await connected("msgpack");
    const join = client.join("demo", { name: "小明" });
    const danmaku = client.sendDanmaku("666", { color: "#ffcc00" });
    const ping = client.ping();
    assert.deepEqual(ws.sent, [
      { op: "join", id: 1, room: "demo", name: "小明" },
      { op: "danmaku", id: 2, text: "666", color: "#ffcc00" },
      { op: "ping", id: 3 },
    ]);
    ws.serverSend({ type: "pong", id: 3 });
    ws.serverSend({ type: "error", id: 2, code: "rate_limited", message: "slow down", retry_after_ms: 180 });
    const you = { id: "guest-1", name: "小明", role: "viewer" };
    const snapshot = { room: { id: "demo" }, version: 1, seq: 4, online: 1, recent: [] };
    ws.serverSend({ type: "joined", id: 1, you, snapshot });

    assert.deepEqual(await ping, { type: "pong", id: 3 });
    await assert.rejects(danmaku, (err) => {
      assert.ok(err instanceof HudongError);
      assert.equal(err.code, "rate_limited");
      assert.equal(err.retry, true);
      assert.equal(err.retryAfterMs, 180);
      assert.equal(err.id, 2);
      return true;
    });
    assert.deepEqual((await join).you, you);
    assert.equal(client.room, "demo");
    assert.equal(client.seq, 4);
    assert.deepEqual(client.lastJoin, { room: "demo", token: undefined, name: "小明" });
  });

  test("batches are dispatched whole and per event", async () => {
    const { client, ws } = await connected("json");
    const seen = [];
    client.on("batch", (b) => seen.push(["batch", b.seq]));
    client.on("event", (e) => seen.push(["event", e.id]));
    const offDanmaku = client.on("danmaku", (e, b) => seen.push(["danmaku", e.id, b.seq]));
    const danmaku = (/** @type {string} */ id) => ({ type: "danmaku", id, user: {}, text: id, color: "#ffffff", mode: "scroll", ts: 1 });
    ws.serverSend({ type: "batch", room: "demo", seq: 7, events: [danmaku("a"), { type: "future_thing", id: "f" }, danmaku("b")] });
    offDanmaku();
    ws.serverSend({ type: "batch", room: "demo", seq: 8, events: [danmaku("c")] });
    assert.deepEqual(seen, [
      ["batch", 7], ["event", "a"], ["danmaku", "a", 7], ["event", "f"], ["event", "b"], ["danmaku", "b", 7],
      ["batch", 8], ["event", "c"],
    ]);
    assert.equal(client.seq, 8);
  });

  test("errors that answer no command, and bad frames, are error events", async () => {
    const { client, ws } = await connected("json");
    /** @type {HudongError[]} */
    const errors = [];
    client.on("error", (err) => errors.push(err));
    ws.serverSend({ type: "error", id: null, code: "malformed", message: "invalid JSON" });
    ws.serverSend({ type: "error", id: 99, code: "internal_error", message: "oops" });
    ws.serverFrame(new Uint8Array([1, 2]).buffer); // binary frame on hudong.v1.json
    ws.serverFrame("{not json");
    ws.serverFrame("[1, 2]");
    assert.deepEqual(errors.map((e) => e.code), ["malformed", "internal_error", "bad_frame", "bad_frame", "bad_frame"]);
    assert.equal(client.state, ConnectionState.CONNECTED);
  });

  test("a command without an answer times out", async () => {
    const { client, ws } = await connected("json", 50);
    await assert.rejects(client.ping(), (err) => err instanceof HudongError && err.code === "timeout");
    ws.serverSend({ type: "pong", id: 1 }); // late: ignored
    assert.equal(client.state, ConnectionState.CONNECTED);
  });

  test("connect times out without hello", async () => {
    const client = new HudongClient("ws://hudong.test/ws", { WebSocket: FakeWebSocket, timeoutMs: 50 });
    const closes = [];
    client.on("close", (info) => closes.push(info));
    await assert.rejects(client.connect(), (err) => err instanceof HudongError && err.code === "timeout");
    assert.equal(client.state, ConnectionState.DISCONNECTED);
    assert.equal(closes.length, 1);
    assert.equal(closes[0].reconnect, true);
  });

  test("a server close rejects pending commands and says whether to reconnect", async () => {
    const { client, ws } = await connected("msgpack");
    const states = [];
    client.on("state", (s) => states.push(s));
    const closes = [];
    client.on("close", (info) => closes.push(info));
    const ping = client.ping();
    ws.serverClose(1012, "server shutting down; reconnect");
    await assert.rejects(ping, (err) => {
      assert.ok(err instanceof HudongError);
      assert.equal(err.code, "disconnected");
      assert.equal(err.close?.name, "server_restart");
      return true;
    });
    assert.deepEqual(closes, [
      { code: 1012, reason: "server shutting down; reconnect", name: "server_restart", reconnect: true, byClient: false, wasClean: true },
    ]);
    assert.deepEqual(states, [ConnectionState.DISCONNECTED]);
    await assert.rejects(client.ping(), (err) => err instanceof HudongError && err.code === "disconnected");

    // connect() may be called again after a close (what a reconnect will do)
    const again = client.connect();
    FakeWebSocket.last().serverSend(HELLO);
    await again;
    assert.equal(client.state, ConnectionState.CONNECTED);
    ws.serverClose(4004); // the old socket's events are ignored
    assert.equal(client.state, ConnectionState.CONNECTED);
  });

  test("close() closes with 1000 and reports no reconnect", async () => {
    const { client, ws } = await connected("json");
    const states = [];
    client.on("state", (s) => states.push(s));
    const info = await client.close();
    assert.deepEqual(ws.closeCalls, [[1000, ""]]);
    assert.equal(info.name, "normal");
    assert.equal(info.byClient, true);
    assert.equal(info.reconnect, false);
    assert.deepEqual(states, [ConnectionState.CLOSING, ConnectionState.DISCONNECTED]);
    assert.equal(await client.close(), info); // closing twice is harmless
    await assert.rejects(client.close(1003), RangeError);
  });
});
