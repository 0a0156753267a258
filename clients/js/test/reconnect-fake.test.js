// Keeping the room through a fake WebSocket: full-jitter backoff, reconnects and
// re-joins, open(), retries of viewer commands with the same key, heartbeats, and
// close() stopping all of it. Delays are a few ms (small backoff, fixed `random`).

import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { backoffDelay, DEFAULT_BACKOFF } from "../backoff.js";
import { ConnectionState, HudongClient, HudongError } from "../hudong.js";
import { FakeWebSocket, HELLO } from "./fake-websocket.js";

/** Bound on every wait for an event in this file. */
const WAIT_MS = 2000;

/** @type {HudongClient[]} */
const clients = [];

/** @param {import("../hudong.js").HudongClientOptions} [options] */
function makeClient(options = {}) {
  const client = new HudongClient("ws://hudong.test/ws", {
    WebSocket: FakeWebSocket,
    timeoutMs: 300,
    backoff: { initialMs: 10, maxMs: 40 },
    random: () => 0.5,
    ...options,
  });
  clients.push(client);
  return client;
}

// No test may leave a timer behind: close every client (that clears them all).
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  FakeWebSocket.reset();
});

const snapshot = (/** @type {Record<string, unknown>} */ fields = {}) => ({
  room: { id: "demo", title: "Demo", created_at: 1, version: 1, settings: {} },
  version: 1,
  seq: 0,
  online: 1,
  degrade: 0,
  interactions: {},
  recent: [],
  ...fields,
});

/**
 * A node that lets everyone join "demo" (an anonymous viewer gets `guestToken`), answers
 * pings, and acknowledges viewer commands once per key (a repeated key: duplicate).
 * `refuse(cmd, ws)` may answer a command instead.
 * @param {{guestToken?: string, refuse?: (cmd: any, ws: FakeWebSocket) => object | object[] | undefined | void}} [options]
 */
function viewerNode({ guestToken, refuse } = {}) {
  /** @type {Map<string, number>} key -> version */
  const applied = new Map();
  let version = 1;
  return {
    applied,
    /** @type {import("./fake-websocket.js").FakeServer["open"]} */
    open: undefined,
    /**
     * @param {any} cmd
     * @param {FakeWebSocket} ws
     */
    reply(cmd, ws) {
      const refusal = refuse?.(cmd, ws);
      if (refusal) return refusal;
      switch (cmd.op) {
        case "join": {
          const you = cmd.token ? { id: `v-${cmd.token}`, name: "V", role: "viewer" } : { id: "guest-1", name: cmd.name, role: "viewer" };
          /** @type {Record<string, unknown>} */
          const joined = { type: "joined", id: cmd.id, you, snapshot: snapshot() };
          if (!cmd.token && guestToken) joined.token = guestToken;
          return joined;
        }
        case "ping":
          return { type: "pong", id: cmd.id };
        case "danmaku":
          return { type: "ack", id: cmd.id, event: "n.1" };
        default: {
          const duplicate = applied.has(cmd.key);
          if (!duplicate) applied.set(cmd.key, ++version);
          return { type: "ack", id: cmd.id, version: applied.get(cmd.key), duplicate };
        }
      }
    },
  };
}

/**
 * The next `type` event of `client` (its arguments), within WAIT_MS.
 * @param {HudongClient} client
 * @param {string} type
 * @param {(...args: any[]) => boolean} [accept]
 * @returns {Promise<any[]>}
 */
function nextEvent(client, type, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const off = client.on(/** @type {any} */ (type), (/** @type {any[]} */ ...args) => {
      if (!accept(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

/**
 * Record the listed events of `client` as [type, ...args].
 * @param {HudongClient} client
 * @param {string[]} types
 */
function record(client, types) {
  /** @type {any[][]} */
  const seen = [];
  for (const type of types) client.on(/** @type {any} */ (type), (/** @type {unknown[]} */ ...args) => seen.push([type, ...args]));
  return seen;
}

/**
 * @param {Promise<unknown>} promise
 * @param {string} code
 */
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof HudongError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe("backoff", () => {
  test("full jitter: a uniform draw below min(maxMs, initialMs * 2 ** attempt)", () => {
    const backoff = { initialMs: 500, maxMs: 15_000 };
    assert.deepEqual(DEFAULT_BACKOFF, backoff);
    const half = () => 0.5;
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, backoff, half)),
      [250, 500, 1000, 2000, 4000, 7500, 7500, 7500],
    );
    assert.equal(backoffDelay(3, backoff, () => 0), 0);
    assert.ok(backoffDelay(3, backoff, () => 0.999999) < 4000);
    // bounded however many attempts (2 ** 5000 is Infinity)
    assert.equal(backoffDelay(5000, backoff, half), 7500);
    for (let i = 0; i < 500; i += 1) {
      const delay = backoffDelay(i % 12, backoff);
      assert.ok(delay >= 0 && delay < Math.min(15_000, 500 * 2 ** (i % 12)), `${delay}`);
    }
    assert.throws(() => makeClient({ backoff: { initialMs: -1 } }), RangeError);
  });

  test("failed attempts back off exponentially up to maxMs; a successful re-join resets", async () => {
    const node = viewerNode();
    FakeWebSocket.server = node;
    const client = makeClient();
    await client.open("demo", { token: "t" });

    // The node goes away: the next four sockets die before hello.
    let refusing = 4;
    node.open = (ws) => {
      if (refusing > 0) {
        refusing -= 1;
        ws.serverClose(1006, "", false);
      } else {
        ws.serverSend(HELLO);
      }
    };
    const waits = record(client, ["reconnecting"]);
    const resynced = nextEvent(client, "resync");
    FakeWebSocket.last().serverClose(1012, "server restart");
    await resynced;
    // random 0.5, initialMs 10, maxMs 40: half of 10, 20, 40, 40, 40
    assert.deepEqual(waits.map(([, info]) => [info.attempt, info.delayMs]), [[0, 5], [1, 10], [2, 20], [3, 20], [4, 20]]);
    assert.equal(waits[0][1].close.name, "server_restart");
    assert.equal(waits[1][1].close.name, "abnormal_closure");
    assert.equal(waits[1][1].error.code, "disconnected");

    const again = nextEvent(client, "reconnecting");
    FakeWebSocket.last().serverClose(1006, "", false);
    const [info] = await again;
    assert.equal(info.attempt, 0);
    await nextEvent(client, "resync");
  });
});

describe("reconnecting", () => {
  test("after a close that says reconnect, the room is joined again with the same token, then resync", async () => {
    FakeWebSocket.server = viewerNode();
    const client = makeClient({ protocol: "msgpack" });
    const joined = await client.open("demo", { token: "tok" });
    assert.equal(joined.you.id, "v-tok");
    assert.equal(client.token, "tok");
    const first = FakeWebSocket.last();
    assert.deepEqual(first.sentOps("join").map(({ id, ...rest }) => rest), [{ op: "join", room: "demo", token: "tok" }]);

    const seen = record(client, ["state", "close", "reconnecting", "joined", "snapshot", "resync"]);
    const resynced = nextEvent(client, "resync");
    first.serverClose(1012, "server restart");
    await resynced;

    assert.deepEqual(
      seen.map(([type, arg]) => (type === "state" ? `state:${arg}` : type)),
      ["state:reconnecting", "close", "reconnecting", "state:connecting", "state:connected", "joined", "snapshot", "resync"],
    );
    const [, close] = seen[1];
    assert.deepEqual(close, { code: 1012, reason: "server restart", name: "server_restart", reconnect: true, byClient: false, wasClean: true });
    assert.deepEqual(seen[2][1], { attempt: 0, delayMs: 5, close });
    assert.deepEqual(seen[7][1], seen[6][1], "resync carries the new snapshot");
    const second = FakeWebSocket.last();
    assert.notEqual(second, first);
    assert.deepEqual(second.sentOps("join").map(({ id, ...rest }) => rest), [{ op: "join", room: "demo", token: "tok" }]);
    assert.equal(client.state, ConnectionState.CONNECTED);
    assert.equal(client.room, "demo");
    assert.deepEqual(client.lastJoin, { room: "demo", token: "tok", name: undefined });
  });

  test("an anonymous viewer joins again with the token the server gave it", async () => {
    FakeWebSocket.server = viewerNode({ guestToken: "guest-token" });
    const client = makeClient();
    const joined = await client.open("demo", { name: "小明" });
    assert.equal(joined.token, "guest-token");
    assert.equal(client.token, "guest-token");
    assert.deepEqual(FakeWebSocket.last().sentOps("join").map(({ id, ...rest }) => rest), [{ op: "join", room: "demo", name: "小明" }]);

    const resynced = nextEvent(client, "resync");
    FakeWebSocket.last().serverClose(1006, "", false);
    await resynced;
    const rejoin = FakeWebSocket.last().sentOps("join")[0];
    assert.equal(rejoin.token, "guest-token");
    assert.equal(client.token, "guest-token");
  });

  test("join() on a connected client is kept too", async () => {
    FakeWebSocket.server = viewerNode({ guestToken: "g" });
    const client = makeClient();
    await client.connect();
    await client.join("demo");
    assert.equal(client.token, "g");
    const resynced = nextEvent(client, "resync");
    FakeWebSocket.last().serverClose(4009, "heartbeat timeout");
    await resynced;
    assert.equal(FakeWebSocket.last().sentOps("join")[0].token, "g");
  });

  test("a connected client that never joined reconnects without joining", async () => {
    FakeWebSocket.server = viewerNode();
    const client = makeClient();
    await client.connect();
    const connectedAgain = nextEvent(client, "state", (s) => s === ConnectionState.CONNECTED);
    FakeWebSocket.last().serverClose(1011, "internal error");
    await connectedAgain;
    assert.equal(FakeWebSocket.sockets.length, 2);
    assert.deepEqual(FakeWebSocket.last().sentOps("join"), []);
  });

  for (const [what, refuse, code] of /** @type {const} */ ([
    ["room_not_found", (/** @type {any} */ cmd) => ({ type: "error", id: cmd.id, code: "room_not_found", message: "gone" }), "room_not_found"],
    ["unauthorized", (/** @type {any} */ cmd) => ({ type: "error", id: cmd.id, code: "unauthorized", message: "expired" }), "unauthorized"],
    ["banned", (/** @type {any} */ cmd) => ({ type: "error", id: cmd.id, code: "banned", message: "banned" }), "banned"],
    ["close 4004", (/** @type {any} */ _cmd, /** @type {FakeWebSocket} */ ws) => void ws.serverClose(4004, "room deleted"), "room_deleted"],
    ["close 4003", (/** @type {any} */ _cmd, /** @type {FakeWebSocket} */ ws) => void ws.serverClose(4003, "banned"), "banned"],
    ["close 4005", (/** @type {any} */ _cmd, /** @type {FakeWebSocket} */ ws) => void ws.serverClose(4005, "token expired"), "token_expired"],
    ["close 4006", (/** @type {any} */ _cmd, /** @type {FakeWebSocket} */ ws) => void ws.serverClose(4006, "token revoked"), "token_revoked"],
  ])) {
    test(`a re-join refused for good (${what}) stops reconnecting and emits error`, async () => {
      const node = viewerNode();
      FakeWebSocket.server = node;
      const client = makeClient();
      await client.open("demo", { token: "t" });
      FakeWebSocket.server = viewerNode({ refuse: (cmd, ws) => (cmd.op === "join" ? refuse(cmd, ws) : undefined) });
      const voting = client.vote("p", { option: "a" }); // waits for the re-join, then fails with it
      FakeWebSocket.last().serverClose(1012);
      const [error] = await nextEvent(client, "error");
      assert.ok(error instanceof HudongError);
      assert.equal(error.code, code);
      assert.equal(error.retry, false);
      await rejectsWith(voting, code);
      await sleep(60); // several backoff delays
      assert.equal(FakeWebSocket.sockets.length, 2, "no further attempt");
      assert.equal(client.state, ConnectionState.DISCONNECTED);
    });
  }

  test("a close that says not to reconnect ends the session without error", async () => {
    FakeWebSocket.server = viewerNode();
    const client = makeClient();
    await client.open("demo", { token: "t" });
    const errors = record(client, ["error", "reconnecting"]);
    const voting = client.vote("p", { option: "a" });
    FakeWebSocket.last().serverClose(4004, "room deleted");
    await rejectsWith(voting, "room_deleted");
    assert.equal(client.state, ConnectionState.DISCONNECTED);
    assert.equal(client.lastClose?.name, "room_deleted");
    await sleep(30);
    assert.deepEqual(errors, []);
    assert.equal(FakeWebSocket.sockets.length, 1);
  });

  test("a retryable refusal of the re-join starts again on a fresh socket", async () => {
    let refusals = 1;
    FakeWebSocket.server = viewerNode({
      refuse: (cmd) => {
        if (cmd.op !== "join" || FakeWebSocket.sockets.length < 2 || refusals === 0) return undefined;
        refusals -= 1;
        return { type: "error", id: cmd.id, code: "store_unavailable", message: "redis", retry_after_ms: 7 };
      },
    });
    const client = makeClient();
    await client.open("demo", { token: "t" });
    const waits = record(client, ["reconnecting"]);
    const resynced = nextEvent(client, "resync");
    FakeWebSocket.last().serverClose(1012);
    await resynced;
    assert.equal(FakeWebSocket.sockets.length, 3);
    assert.deepEqual(waits.map(([, info]) => [info.attempt, info.delayMs, info.error?.code]), [[0, 5, undefined], [1, 7, "store_unavailable"]]);
    assert.equal(FakeWebSocket.sockets[1].closed, true, "the refused socket was dropped");
  });

  test("connect() while waiting to reconnect makes the attempt now", async () => {
    FakeWebSocket.server = viewerNode();
    const client = makeClient({ backoff: { initialMs: 60_000, maxMs: 60_000 } });
    await client.open("demo", { token: "t" });
    FakeWebSocket.last().serverClose(1012);
    assert.equal(client.state, ConnectionState.RECONNECTING);
    const resynced = nextEvent(client, "resync");
    const hello = await client.connect();
    assert.equal(hello.type, "hello");
    await resynced;
    assert.equal(client.room, "demo");
    assert.equal(FakeWebSocket.sockets.length, 2);
  });

  test("with reconnect: false a lost connection stays lost", async () => {
    FakeWebSocket.server = viewerNode();
    const client = makeClient({ reconnect: false });
    await client.open("demo", { token: "t" });
    const voting = client.vote("p", { option: "a" });
    const states = record(client, ["state"]);
    FakeWebSocket.last().serverClose(1012);
    await rejectsWith(voting, "disconnected");
    await sleep(30);
    assert.deepEqual(states, [["state", ConnectionState.DISCONNECTED, ConnectionState.CONNECTED]]);
    assert.equal(FakeWebSocket.sockets.length, 1);
  });
});

describe("open()", () => {
  test("retries connect failures until joined, without resync", async () => {
    let refusing = 2;
    FakeWebSocket.server = {
      ...viewerNode(),
      open: (ws) => {
        if (refusing-- > 0) ws.serverClose(1006, "", false);
        else ws.serverSend(HELLO);
      },
    };
    const client = makeClient();
    const seen = record(client, ["reconnecting", "resync", "error"]);
    const joined = await client.open("demo", { token: "t" });
    assert.equal(joined.type, "joined");
    assert.equal(FakeWebSocket.sockets.length, 3);
    assert.deepEqual(seen.map(([type, info]) => [type, info.attempt]), [["reconnecting", 0], ["reconnecting", 1]]);
  });

  test("retries a hello timeout and rate_limited joins", async () => {
    let n = 0;
    FakeWebSocket.server = {
      ...viewerNode({
        refuse: (cmd) =>
          cmd.op === "join" && FakeWebSocket.sockets.length === 2
            ? { type: "error", id: cmd.id, code: "rate_limited", message: "slow", retry_after_ms: 3 }
            : undefined,
      }),
      open: (ws) => {
        if (n++ > 0) ws.serverSend(HELLO); // the first socket never says hello
      },
    };
    const client = makeClient({ timeoutMs: 40 });
    const seen = record(client, ["reconnecting"]);
    await client.open("demo", { token: "t" });
    assert.equal(FakeWebSocket.sockets.length, 3);
    assert.deepEqual(seen.map(([, info]) => info.error?.code), ["timeout", "rate_limited"]);
  });

  test("rejects on a non-retryable error, and when already joined", async () => {
    FakeWebSocket.server = viewerNode({
      refuse: (cmd) => (cmd.op === "join" && cmd.room !== "demo" ? { type: "error", id: cmd.id, code: "room_not_found", message: "no" } : undefined),
    });
    const client = makeClient();
    const errors = record(client, ["error"]);
    await rejectsWith(client.open("nope"), "room_not_found");
    // once the socket it opened is closed: open() may be called again at once
    assert.equal(client.state, ConnectionState.DISCONNECTED);
    assert.equal(FakeWebSocket.last().closed, true);
    assert.equal(FakeWebSocket.sockets.length, 1);
    assert.deepEqual(errors, [], "the promise reports it");

    await client.open("demo", { name: "x" });
    await rejectsWith(client.open("demo"), "already_joined");

    // open() right after close(), without waiting for it, opens once it is closed
    const closing = client.close();
    const reopened = client.open("demo", { token: "t2" });
    await closing;
    assert.equal((await reopened).you.id, "v-t2");
  });

  test("close() while open() is retrying rejects it with disconnected", async () => {
    FakeWebSocket.server = { ...viewerNode(), open: (ws) => ws.serverClose(1006, "", false) };
    const client = makeClient({ backoff: { initialMs: 1000, maxMs: 1000 } });
    const opening = client.open("demo", { token: "t" });
    await nextEvent(client, "reconnecting");
    assert.equal(client.state, ConnectionState.RECONNECTING);
    await client.close();
    await rejectsWith(opening, "disconnected");
    assert.equal(client.state, ConnectionState.DISCONNECTED);
    assert.equal(/** @type {any} */ (client)._reconnectTimer, null);
  });
});

describe("viewer commands are retried until acknowledged", () => {
  test("a retryable refusal is retried after retry_after_ms with the same key", async () => {
    let refusals = 2;
    FakeWebSocket.server = viewerNode({
      refuse: (cmd) =>
        cmd.op === "vote" && refusals-- > 0
          ? { type: "error", id: cmd.id, code: "store_unavailable", message: "redis", retry_after_ms: 5 }
          : undefined,
    });
    const client = makeClient();
    await client.open("demo", { token: "t" });
    const ack = await client.vote("p", { option: "a" });
    assert.equal(ack.duplicate, false);
    const votes = FakeWebSocket.last().sentOps("vote");
    assert.equal(votes.length, 3);
    assert.equal(new Set(votes.map((v) => v.key)).size, 1, "the same key every time");
    assert.equal(new Set(votes.map((v) => v.id)).size, 3, "a fresh command id every time");
  });

  test("a vote cut off by a lost connection is sent again, same key, after the re-join", async () => {
    const node = viewerNode();
    FakeWebSocket.server = node;
    const client = makeClient();
    await client.open("demo", { token: "t" });
    const first = FakeWebSocket.last();
    // The node applies the vote, but the connection dies before the ack gets out.
    node.reply = ((reply) => (/** @type {any} */ cmd, /** @type {FakeWebSocket} */ ws) => {
      const answer = reply(cmd, ws);
      if (cmd.op === "vote" && ws === first) {
        ws.serverClose(1006, "", false);
        return undefined;
      }
      return answer;
    })(node.reply);
    const ack = await client.vote("p", { option: "b" }, { key: "vote-p-1" });
    assert.equal(ack.duplicate, true);
    assert.deepEqual([...node.applied.keys()], ["vote-p-1"]);
    const second = FakeWebSocket.last();
    assert.notEqual(second, first);
    assert.deepEqual(second.sent.map((cmd) => cmd.op), ["join", "vote"], "resent after the re-join");
    assert.equal(second.sentOps("vote")[0].key, "vote-p-1");
  });

  test("a timeout is retried with the same key on the same connection", async () => {
    let silent = 1;
    FakeWebSocket.server = viewerNode({
      refuse: (cmd) => (cmd.op === "checkin" && silent-- > 0 ? [] : undefined), // [] : no answer
    });
    const client = makeClient({ timeoutMs: 30 });
    await client.open("demo", { token: "t" });
    const ack = await client.checkin();
    assert.equal(ack.type, "ack");
    const sent = FakeWebSocket.last().sentOps("checkin");
    assert.equal(sent.length, 2);
    assert.equal(sent[0].key, sent[1].key);
    assert.equal(FakeWebSocket.sockets.length, 1);
  });

  test("a non-retryable error rejects at once", async () => {
    FakeWebSocket.server = viewerNode({
      refuse: (cmd) => (cmd.op === "answer" ? { type: "error", id: cmd.id, code: "not_open", message: "closed" } : undefined),
    });
    const client = makeClient();
    await client.open("demo", { token: "t" });
    await rejectsWith(client.answer("quiz", "q1", "a"), "not_open");
    assert.equal(FakeWebSocket.last().sentOps("answer").length, 1);
  });

  test("retry.deadlineMs bounds the retries", async () => {
    FakeWebSocket.server = viewerNode({
      refuse: (cmd) =>
        cmd.op === "pick" ? { type: "error", id: cmd.id, code: "store_unavailable", message: "redis", retry_after_ms: 20 } : undefined,
    });
    const client = makeClient({ retry: { deadlineMs: 70 } });
    await client.open("demo", { token: "t" });
    const started = Date.now();
    await rejectsWith(client.pick("cd", "s", "o"), "timeout");
    assert.ok(Date.now() - started < 500);
    const picks = FakeWebSocket.last().sentOps("pick").length;
    assert.ok(picks >= 2 && picks <= 4, `${picks} picks`);
  });

  test("the deadline also bounds the wait for a re-join", async () => {
    FakeWebSocket.server = viewerNode();
    const client = makeClient({ retry: { deadlineMs: 50 }, backoff: { initialMs: 5000, maxMs: 5000 } });
    await client.open("demo", { token: "t" });
    FakeWebSocket.server = { ...viewerNode(), open: (ws) => ws.serverClose(1006, "", false) };
    FakeWebSocket.last().serverClose(1012);
    assert.equal(client.state, ConnectionState.RECONNECTING);
    await rejectsWith(client.enter("draw"), "timeout");
  });

  test("close() rejects retries that wait, and stops the client for good", async () => {
    FakeWebSocket.server = viewerNode({
      refuse: (cmd) =>
        cmd.op === "ask" ? { type: "error", id: cmd.id, code: "rate_limited", message: "slow", retry_after_ms: 60_000 } : undefined,
    });
    const client = makeClient({ backoff: { initialMs: 60_000, maxMs: 60_000 } });
    await client.open("demo", { token: "t" });
    const asking = client.ask("qa", "why?"); // sleeps a minute after the refusal
    await sleep(10);
    FakeWebSocket.last().serverClose(1012); // now waiting a minute to reconnect, too
    const upvoting = client.upvote("qa", "q-1"); // waits for the re-join
    assert.equal(client.state, ConnectionState.RECONNECTING);
    const started = Date.now();
    await client.close();
    await rejectsWith(asking, "disconnected");
    await rejectsWith(upvoting, "disconnected");
    assert.ok(Date.now() - started < 200);
    assert.equal(client.state, ConnectionState.DISCONNECTED);
    await rejectsWith(client.post("after close"), "disconnected");
    assert.equal(FakeWebSocket.sockets.length, 1);
  });

  test("without a connection that will come back, a command rejects with disconnected at once", async () => {
    const client = makeClient();
    await rejectsWith(client.vote("p", { option: "a" }), "disconnected");
    await rejectsWith(client.checkin(), "disconnected");
  });
});

describe("dead-connection detection", () => {
  test("a silent connection gets an app-level ping; without a pong it is dropped and reconnected", async () => {
    let answering = false;
    FakeWebSocket.server = {
      ...viewerNode({ refuse: (cmd) => (cmd.op === "ping" && !answering ? [] : undefined) }), // [] : no pong
      hello: { ...HELLO, heartbeat_ms: 20 },
    };
    const client = makeClient({ timeoutMs: 40 });
    await client.open("demo", { token: "t" });
    const first = FakeWebSocket.last();
    const [close] = await nextEvent(client, "close");
    assert.equal(first.sentOps("ping").length, 1);
    assert.equal(close.code, 4009);
    assert.equal(close.name, "heartbeat_timeout");
    assert.equal(close.reconnect, true);
    assert.equal(close.byClient, false);
    answering = true;
    await nextEvent(client, "resync");

    // With pongs coming back the connection stays up.
    const second = FakeWebSocket.last();
    const closes = record(client, ["close"]);
    await sleep(120);
    assert.deepEqual(closes, []);
    assert.ok(second.sentOps("ping").length >= 2, `${second.sentOps("ping").length} pings`);
  });

  test("no ping while other messages arrive", async () => {
    FakeWebSocket.server = { ...viewerNode(), hello: { ...HELLO, heartbeat_ms: 30 } };
    const client = makeClient();
    await client.open("demo", { token: "t" });
    const ws = FakeWebSocket.last();
    for (let i = 0; i < 8; i += 1) {
      ws.serverSend({ type: "batch", room: "demo", seq: i + 1, events: [] });
      await sleep(10);
    }
    assert.deepEqual(ws.sentOps("ping"), []);
  });
});
