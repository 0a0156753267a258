// HudongClient's own bookkeeping, driven through an injected fake WebSocket: no
// network, no server. Reconnects, open() and retries are in reconnect-fake.test.js;
// the live behaviour is in client.test.js and resilience.test.js.

import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import { CODECS } from "../codec.js";
import { CLIENT_EVENTS, ConnectionState, HudongClient, HudongError, KEY_PATTERN, RECENT_SIZE, eventName, idempotencyKey } from "../hudong.js";
import { FakeWebSocket, HELLO } from "./fake-websocket.js";

/** @type {HudongClient[]} */
const clients = [];

/** @param {import("../hudong.js").HudongClientOptions} [options] */
function makeClient(options = {}) {
  const client = new HudongClient("ws://hudong.test/ws", { WebSocket: FakeWebSocket, timeoutMs: 1000, ...options });
  clients.push(client);
  return client;
}

// No test may leave a timer behind: close every client (it clears them all).
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  FakeWebSocket.reset();
});

/**
 * @param {"json"|"msgpack"} protocol
 * @param {number} [timeoutMs]
 * @param {import("../hudong.js").HudongClientOptions} [options]
 */
async function connected(protocol = "json", timeoutMs = 1000, options = {}) {
  const client = makeClient({ protocol, timeoutMs, ...options });
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
    const client = makeClient({ timeoutMs: 50 });
    const closes = [];
    client.on("close", (info) => closes.push(info));
    await assert.rejects(client.connect(), (err) => err instanceof HudongError && err.code === "timeout");
    assert.equal(client.state, ConnectionState.DISCONNECTED);
    assert.equal(closes.length, 1);
    assert.equal(closes[0].reconnect, true);
  });

  test("a server close rejects pending commands and says whether to reconnect", async () => {
    // reconnect: false leaves reconnecting to the caller (reconnect-fake.test.js has the default)
    const { client, ws } = await connected("msgpack", 1000, { reconnect: false });
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

    // connect() may be called again after a close
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

// --- the room's state, kept current ------------------------------------------------------

/** @param {string} id @param {number} count */
const pollView = (id, count) => ({
  id,
  kind: "poll",
  spec: { id, question: "Q?", kind: "single", options: [{ id: "a", label: "A" }] },
  status: { phase: "open" },
  results: { poll: id, kind: "single", voters: count, options: [{ id: "a", label: "A", count, share: count ? 1 : 0 }], hidden: false },
});

/** @param {string} id @param {string} [text] */
const danmaku = (id, text = id) => ({ type: "danmaku", id, user: { id: "u", name: "U", role: "viewer" }, text, color: "#ffffff", mode: "scroll", ts: 1 });

/**
 * @param {Record<string, unknown>} [fields]
 */
const snapshotWith = (fields = {}) => ({
  room: { id: "demo", title: "Demo", created_at: 1, version: 1, settings: {} },
  version: 1,
  seq: 3,
  online: 1,
  degrade: 0,
  interactions: {},
  recent: [],
  ...fields,
});

/**
 * A connected client that joined "demo" with `snapshot`.
 * @param {Record<string, unknown>} snapshot
 */
async function joinedWith(snapshot) {
  const { client, ws } = await connected("json");
  const joining = client.join("demo", { token: "t" });
  ws.serverSend({ type: "joined", id: ws.sent[0].id, you: { id: "v-1", name: "V", role: "viewer" }, snapshot });
  await joining;
  return { client, ws };
}

/**
 * Record the listed events of `client` as [type, ...args].
 * @param {HudongClient} client
 * @param {string[]} types
 */
function record(client, types) {
  /** @type {unknown[][]} */
  const seen = [];
  for (const type of types) client.on(/** @type {any} */ (type), (/** @type {unknown[]} */ ...args) => seen.push([type, ...args]));
  return seen;
}

describe("room state", () => {
  test("the joined snapshot fills interactions and emits per view, then state messages update them", async () => {
    const { client, ws } = await connected("msgpack");
    const seen = record(client, ["joined", "snapshot", "interaction", "poll", "checkin", "views"]);
    const checkin = { id: "checkin", kind: "checkin", spec: { id: "checkin", title: "Check-in" }, status: { phase: "open" }, count: 0 };
    const snapshot = snapshotWith({ interactions: { checkin, p: pollView("p", 0) }, degrade: 1 });
    const joining = client.join("demo", { token: "t" });
    ws.serverSend({ type: "joined", id: 1, you: { id: "v-1", name: "V", role: "viewer" }, snapshot });
    await joining;

    assert.deepEqual(seen.map((e) => e[0]), ["joined", "snapshot", "interaction", "checkin", "interaction", "poll"]);
    assert.equal(/** @type {any} */ (seen[0][1]).type, "joined");
    assert.deepEqual(seen[1][1], snapshot);
    assert.deepEqual(seen.slice(2).map((e) => /** @type {any} */ (e[1]).id), ["checkin", "checkin", "p", "p"]);
    assert.equal(seen[3][2], undefined, "no previous view");
    assert.deepEqual(client.snapshot, snapshot);
    assert.equal(client.degrade, 1);
    assert.deepEqual([...client.interactions.keys()], ["checkin", "p"]);
    assert.deepEqual(client.interaction("p"), pollView("p", 0));
    const map = client.interactions;

    seen.length = 0;
    const state = { type: "state", room: "demo", version: 9, interactions: { p: pollView("p", 1) } };
    ws.serverSend(state);
    assert.deepEqual(seen, [
      ["views", state],
      ["interaction", pollView("p", 1), pollView("p", 0)],
      ["poll", pollView("p", 1), pollView("p", 0)],
    ]);
    assert.equal(/** @type {any} */ (client.interaction("p"))?.results?.voters, 1);
    assert.equal(client.interactions, map, "the same Map, updated in place");

    // A view without id and kind (as in protocol/vectors) keeps those of the view it replaces.
    seen.length = 0;
    ws.serverSend({ type: "state", room: "demo", version: 10, interactions: { checkin: { count: 5 } } });
    assert.deepEqual(client.interaction("checkin"), { count: 5, id: "checkin", kind: "checkin" });
    assert.deepEqual(seen.map((e) => e[0]), ["views", "interaction", "checkin"]);

    // A new snapshot replaces the map: unchanged views emit nothing, gone ones leave.
    seen.length = 0;
    ws.serverSend({ type: "snapshot", snapshot: snapshotWith({ seq: 8, interactions: { p: pollView("p", 1), q: pollView("q", 0) } }) });
    assert.deepEqual(seen.map((e) => [e[0], /** @type {any} */ (e[1])?.id]), [
      ["snapshot", undefined],
      ["interaction", "q"],
      ["poll", "q"],
    ]);
    assert.deepEqual([...client.interactions.keys()], ["p", "q"]);
    assert.equal(client.seq, 8);
    assert.equal(client.degrade, 0);
  });

  test("state messages with patches keep the views current; the views event sees whole views", async () => {
    const { client, ws } = await joinedWith(snapshotWith({ version: 5, interactions: { p: pollView("p", 0), q: pollView("q", 0) } }));
    const seen = record(client, ["views", "interaction", "poll"]);
    const map = client.interactions;
    // Only what changed: the voters and the option's count and share (arrays go whole).
    const patch = { results: { voters: 1, options: [{ id: "a", label: "A", count: 1, share: 1 }] } };
    ws.serverSend({ type: "state", room: "demo", base: 5, version: 7, interactions: {}, patches: { p: patch } });
    assert.deepEqual(client.interaction("p"), pollView("p", 1));
    assert.deepEqual(client.interaction("q"), pollView("q", 0));
    assert.equal(client.interactions, map, "the same Map, updated in place");
    assert.deepEqual(seen, [
      ["views", { type: "state", room: "demo", base: 5, version: 7, interactions: { p: pollView("p", 1) } }],
      ["interaction", pollView("p", 1), pollView("p", 0)],
      ["poll", pollView("p", 1), pollView("p", 0)],
    ]);
    // A member set to null goes; a whole view and a patch in one message.
    seen.length = 0;
    const closed = { ...pollView("q", 0), status: { phase: "closed" } };
    ws.serverSend({ type: "state", room: "demo", base: 7, version: 8, interactions: { q: closed }, patches: { p: { spec: null } } });
    const { spec, ...withoutSpec } = pollView("p", 1);
    assert.ok(spec);
    assert.deepEqual(client.interaction("p"), withoutSpec);
    assert.deepEqual(client.interaction("q"), closed);
    assert.deepEqual(seen.map((e) => [e[0], /** @type {any} */ (e[1])?.id ?? null]), [
      ["views", null],
      ["interaction", "q"],
      ["poll", "q"],
      ["interaction", "p"],
      ["poll", "p"],
    ]);
    // A message based on a version before the one held (a snapshot came meanwhile) applies.
    ws.serverSend({ type: "state", room: "demo", base: 6, version: 9, interactions: {}, patches: { q: { status: { phase: "open" } } } });
    assert.deepEqual(/** @type {any} */ (client.interaction("q")).status, { phase: "open" });
    assert.equal(ws.sent.filter((c) => c.op === "snapshot").length, 0, "no snapshot asked for");
  });

  test("a missed state message is a gap: the client asks for a snapshot once and waits for it", async () => {
    const { client, ws } = await joinedWith(snapshotWith({ version: 5, interactions: { p: pollView("p", 0) } }));
    const seen = record(client, ["views", "interaction", "snapshot"]);
    // The message 5 -> 6 was missed: 6 -> 7 does not apply to version 5.
    ws.serverSend({ type: "state", room: "demo", base: 6, version: 7, interactions: {}, patches: { p: { results: { voters: 2 } } } });
    assert.deepEqual(client.interaction("p"), pollView("p", 0), "not applied to the wrong base");
    const asks = () => ws.sent.filter((c) => c.op === "snapshot");
    assert.equal(asks().length, 1);
    // Until the snapshot comes, state messages are passed over, and not asked again.
    ws.serverSend({ type: "state", room: "demo", base: 7, version: 8, interactions: {}, patches: { p: { results: { voters: 3 } } } });
    assert.equal(asks().length, 1);
    assert.deepEqual(seen, []);
    ws.serverSend({ type: "snapshot", id: asks()[0].id, snapshot: snapshotWith({ version: 8, interactions: { p: pollView("p", 3) } }) });
    assert.deepEqual(client.interaction("p"), pollView("p", 3));
    assert.deepEqual(seen.map((e) => e[0]), ["snapshot", "interaction"]);
    // Back on the chain.
    ws.serverSend({ type: "state", room: "demo", base: 8, version: 9, interactions: {}, patches: { p: { status: { phase: "closed" } } } });
    assert.deepEqual(/** @type {any} */ (client.interaction("p")).status, { phase: "closed" });
    assert.equal(asks().length, 1);
    // A patch for a view never held is a gap too.
    ws.serverSend({ type: "state", room: "demo", base: 9, version: 10, interactions: {}, patches: { zz: { x: 1 } } });
    assert.equal(asks().length, 2);
    assert.equal(client.interaction("zz"), undefined);
  });

  test("recent danmaku: from the snapshot, then new ones up to RECENT_SIZE, retracted ones removed", async () => {
    const { client, ws } = await joinedWith(snapshotWith({ recent: [danmaku("n.1"), danmaku("n.2")] }));
    assert.deepEqual(client.recent.map((e) => e.id), ["n.1", "n.2"]);
    const seen = record(client, ["event", "danmaku", "retract", "drawResult", "designRevealed"]);

    const retract = { type: "retract", id: "n.1", ts: 5 };
    const draw = { type: "draw_result", interaction: "d", title: "Prize", winners: ["v-1"], ts: 6 };
    const reveal = { type: "design_revealed", interaction: "c", final: { design: "x", round: 1, title: "T", slots: [] }, ts: 7 };
    const future = { type: "future_thing", id: "f" };
    const batch = { type: "batch", room: "demo", seq: 4, events: [danmaku("n.3"), retract, draw, reveal, future] };
    ws.serverSend(batch);
    assert.deepEqual(seen, [
      ["event", danmaku("n.3"), batch],
      ["danmaku", danmaku("n.3"), batch],
      ["event", retract, batch],
      ["retract", retract, batch],
      ["event", draw, batch],
      ["drawResult", draw, batch],
      ["event", reveal, batch],
      ["designRevealed", reveal, batch],
      ["event", future, batch],
    ]);
    assert.deepEqual(client.recent.map((e) => e.id), ["n.2", "n.3"]);

    const many = Array.from({ length: RECENT_SIZE + 5 }, (_, i) => danmaku(`m.${i}`));
    ws.serverSend({ type: "batch", room: "demo", seq: 5, events: many });
    assert.equal(client.recent.length, RECENT_SIZE);
    assert.equal(client.recent[0].id, "m.5");
    assert.equal(client.recent[RECENT_SIZE - 1].id, `m.${RECENT_SIZE + 4}`);
    ws.serverSend({ type: "batch", room: "demo", seq: 6, events: [{ type: "retract", id: "m.30", ts: 8 }] });
    assert.equal(client.recent.length, RECENT_SIZE - 1);
    assert.ok(!client.recent.some((e) => e.id === "m.30"));
  });

  test("notices: notice for all, drawWon and degrade by kind; degrade updates client.degrade", async () => {
    const { client, ws } = await joinedWith(snapshotWith({ degrade: 0 }));
    const seen = record(client, ["notice", "drawWon", "degrade"]);
    const won = { type: "notice", kind: "draw_won", interaction: "d", title: "Prize" };
    const degrade = { type: "notice", kind: "degrade", level: 2, name: "overloaded" };
    const other = { type: "notice", kind: "something_new", x: 1 };
    ws.serverSend(won);
    ws.serverSend(degrade);
    ws.serverSend(other);
    assert.deepEqual(seen, [
      ["notice", won],
      ["drawWon", won],
      ["notice", degrade],
      ["degrade", { level: 2, name: "overloaded" }],
      ["notice", other],
    ]);
    assert.equal(client.degrade, 2);
  });

  test("online: the snapshot's count, then each online message's", async () => {
    const { client, ws } = await joinedWith(snapshotWith({ online: 3 }));
    assert.equal(client.online, 3);
    const seen = record(client, ["online"]);
    const message = { type: "online", room: "demo", online: 41 };
    ws.serverSend(message);
    ws.serverSend({ type: "online", room: "demo", online: "many" }); // not a count: ignored
    assert.deepEqual(seen, [["online", 41, message]]);
    assert.equal(client.online, 41);
  });
});

// --- the wire shape of every command -----------------------------------------------------

describe("events named after what the server sends", () => {
  test("eventName: camelCase of a type", () => {
    assert.equal(eventName("draw_result"), "drawResult");
    assert.equal(eventName("design_revealed"), "designRevealed");
    assert.equal(eventName("draw_won"), "drawWon");
    assert.equal(eventName("danmaku"), "danmaku");
    assert.equal(eventName("heart_burst_2"), "heartBurst2");
  });

  test("a kind, a batch event or a notice no client knows yet has its own event", async () => {
    const { client, ws } = await joinedWith(snapshotWith({}));
    const seen = record(client, ["interaction", "reaction", "heartBurst", "prizeShipped"]);
    const view = { id: "r", kind: "reaction", counts: { heart: 3 } };
    ws.serverSend({ type: "state", room: "demo", version: 3, interactions: { r: view } });
    const burst = { type: "heart_burst", n: 40, ts: 1 };
    const batch = { type: "batch", room: "demo", seq: 3, events: [burst] };
    ws.serverSend(batch);
    const shipped = { type: "notice", kind: "prize_shipped", interaction: "d" };
    ws.serverSend(shipped);
    assert.deepEqual(seen, [
      ["interaction", view, undefined],
      ["reaction", view, undefined],
      ["heartBurst", burst, batch],
      ["prizeShipped", shipped],
    ]);
  });

  test("a type that would be one of the client's own events is not emitted as it", async () => {
    const { client, ws } = await joinedWith(snapshotWith({}));
    const seen = record(client, [...CLIENT_EVENTS]);
    const view = { id: "e", kind: "error", x: 1 };
    ws.serverSend({ type: "state", room: "demo", version: 3, interactions: { e: view } });
    const event = { type: "close", code: 1 };
    const batch = { type: "batch", room: "demo", seq: 3, events: [event] };
    ws.serverSend(batch);
    const notice = { type: "notice", kind: "snapshot" };
    ws.serverSend(notice);
    assert.deepEqual(
      seen.map((e) => e[0]),
      ["message", "views", "interaction", "message", "batch", "event", "message", "notice"],
    );
  });
});

describe("commands on the wire", () => {
  test("viewer commands carry a fresh key each, or the one given", async () => {
    const { client, ws } = await joinedWith(snapshotWith());
    ws.sent.length = 0;
    const calls = [
      client.vote("p", { option: "a" }),
      client.vote("m", /** @type {any} */ ({ options: ["a", "b"], ignored: 1, key: "not-this" })), // only ballot fields go out
      client.vote("r", { ranking: ["b", "a"] }),
      client.vote("s", { rating: 4 }),
      client.vote("t", { text: "火锅" }),
      client.answer("quiz", "q1", "a"),
      client.pick("cd", "slot1", "red"),
      client.unpick("cd", "slot1"),
      client.enter("draw"),
      client.ask("qa", "why?"),
      client.upvote("qa", "q-1"),
      client.unvote("qa", "q-1"),
      client.checkin(),
      client.post("hello wall"),
      client.participate("future_op", { interaction: "x", extra: true }, { key: "my-key.1:2" }),
      client.checkin({ key: "checkin-7" }),
    ];
    const withoutKeys = ws.sent.map(({ key, id, ...rest }) => rest);
    assert.deepEqual(withoutKeys, [
      { op: "vote", interaction: "p", option: "a" },
      { op: "vote", interaction: "m", options: ["a", "b"] },
      { op: "vote", interaction: "r", ranking: ["b", "a"] },
      { op: "vote", interaction: "s", rating: 4 },
      { op: "vote", interaction: "t", text: "火锅" },
      { op: "answer", interaction: "quiz", question: "q1", option: "a" },
      { op: "pick", interaction: "cd", slot: "slot1", option: "red" },
      { op: "unpick", interaction: "cd", slot: "slot1" },
      { op: "enter", interaction: "draw" },
      { op: "ask", interaction: "qa", text: "why?" },
      { op: "upvote", interaction: "qa", question: "q-1" },
      { op: "unvote", interaction: "qa", question: "q-1" },
      { op: "checkin" },
      { op: "post", text: "hello wall" },
      { op: "future_op", interaction: "x", extra: true },
      { op: "checkin" },
    ]);
    // key order on the wire: op, id, interaction, key, then the rest
    assert.deepEqual(Object.keys(ws.sent[0]), ["op", "id", "interaction", "key", "option"]);
    assert.deepEqual(Object.keys(ws.sent[12]), ["op", "id", "key"]);
    const keys = ws.sent.map((cmd) => cmd.key);
    for (const key of keys) assert.match(key, KEY_PATTERN);
    assert.equal(keys[14], "my-key.1:2");
    assert.equal(keys[15], "checkin-7");
    assert.equal(new Set(keys).size, keys.length, "a fresh key per command");

    for (const cmd of ws.sent) ws.serverSend({ type: "ack", id: cmd.id, version: 1, duplicate: false });
    const acks = await Promise.all(calls);
    assert.deepEqual(acks[0], { type: "ack", id: ws.sent[0].id, version: 1, duplicate: false });
  });

  test("a malformed key is refused before anything is sent", async () => {
    const { client, ws } = await joinedWith(snapshotWith());
    const before = ws.sent.length;
    await assert.rejects(client.vote("p", { option: "a" }, { key: "has space" }), TypeError);
    await assert.rejects(client.checkin({ key: "x".repeat(65) }), TypeError);
    await assert.rejects(client.post("hi", { key: "" }), TypeError);
    assert.equal(ws.sent.length, before);
  });

  test("host and moderation operations, sent once", async () => {
    const { client, ws } = await joinedWith(snapshotWith());
    ws.sent.length = 0;
    const spec = { id: "p", question: "Q?", kind: "single", options: [{ id: "a", label: "A" }] };
    const calls = [
      client.host("lock_all", { interaction: "cd" }),
      client.createInteraction("poll", spec),
      client.act("p", "open"),
      client.act("qa", "answer", { question: "q-1", text: "because" }),
      client.retract("node1.41"),
      client.mute("v-9", 600),
      client.mute("v-9"),
      client.unmute("v-9"),
      client.ban("v-9"),
      client.unban("v-9"),
    ];
    assert.deepEqual(ws.sent.map(({ id, ...rest }) => rest), [
      { op: "host", action: "lock_all", interaction: "cd" },
      { op: "host", action: "create", kind: "poll", spec },
      { op: "host", action: "open", interaction: "p" },
      { op: "host", action: "answer", interaction: "qa", question: "q-1", text: "because" },
      { op: "host", action: "retract", event: "node1.41" },
      { op: "host", action: "mute", user: "v-9", duration_s: 600 },
      { op: "host", action: "mute", user: "v-9" },
      { op: "host", action: "unmute", user: "v-9" },
      { op: "host", action: "ban", user: "v-9" },
      { op: "host", action: "unban", user: "v-9" },
    ]);
    // an error rejects at once, without a retry
    ws.serverSend({ type: "error", id: ws.sent[1].id, code: "internal_error", message: "oops" });
    await assert.rejects(calls[1], (err) => err instanceof HudongError && err.code === "internal_error" && err.retry);
    for (const cmd of ws.sent) ws.serverSend({ type: "ack", id: cmd.id, interaction: "p", version: 2, view: {} });
    await Promise.all(calls.filter((_, i) => i !== 1));
    assert.equal(ws.sentOps("host").length, 10);
  });

  test("danmaku are sent once, not retried", async () => {
    const { client, ws } = await joinedWith(snapshotWith());
    const sending = client.sendDanmaku("666");
    ws.serverSend({ type: "error", id: ws.sentOps("danmaku")[0].id, code: "rate_limited", message: "slow", retry_after_ms: 1 });
    await assert.rejects(sending, (err) => err instanceof HudongError && err.code === "rate_limited");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(ws.sentOps("danmaku").length, 1);
  });

  test("idempotency keys: a UUID, or 16 random bytes in hex without randomUUID", () => {
    assert.match(idempotencyKey(), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const saved = Object.getOwnPropertyDescriptor(globalThis, "crypto");
    assert.ok(saved);
    try {
      Object.defineProperty(globalThis, "crypto", {
        configurable: true,
        value: { getRandomValues: (/** @type {Uint8Array} */ a) => a.fill(0xab) },
      });
      assert.equal(idempotencyKey(), "ab".repeat(16));
    } finally {
      Object.defineProperty(globalThis, "crypto", saved);
    }
    assert.match(idempotencyKey(), KEY_PATTERN);
  });
});
