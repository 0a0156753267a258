// HudongClient against a live hudong node: the Python server started from this file
// (`python -m server serve`), on a free port, with its own admin token and secret.
//
// The Python interpreter is $HUDONG_PYTHON, else python3; it must have the hudong
// package installed (e.g. HUDONG_PYTHON=/path/to/.venv/bin/python npm test).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import WebSocket from "ws";

import { ConnectionState, HudongClient, HudongError, JSON_CODEC } from "../hudong.js";

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
// A relative path is taken from where the tests run, not from the server's cwd.
const PYTHON = resolvePython(process.env.HUDONG_PYTHON || "python3");
/** Bound on any single wait for the server (an answer, an event, a close). */
const WAIT_MS = 5_000;
const STARTUP_MS = 15_000;
const TEST_TIMEOUT_MS = 30_000;

/** @type {{proc: import("node:child_process").ChildProcess, base: string, wsUrl: string, admin: string, output: () => string}} */
let node;
/** @type {HudongClient[]} */
const clients = [];

/** @param {string} command a name looked up in PATH, or a path */
function resolvePython(command) {
  return command.includes("/") || command.includes("\\") ? resolve(command) : command;
}

// --- the server --------------------------------------------------------------------------

/** A port that was free a moment ago (the server binds it right after). */
async function freePort() {
  const probe = createServer();
  await new Promise((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => resolve(undefined));
  });
  const address = probe.address();
  assert.ok(address && typeof address === "object");
  await new Promise((resolve) => probe.close(() => resolve(undefined)));
  return address.port;
}

async function startServer() {
  const port = await freePort();
  const admin = randomBytes(24).toString("hex");
  const proc = spawn(PYTHON, ["-m", "server", "serve", "--host", "127.0.0.1", "--port", String(port)], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      HUDONG_ADMIN_TOKEN: admin,
      HUDONG_SECRET: randomBytes(32).toString("hex"),
      HUDONG_LOG_LEVEL: "warning",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Keep the tail of the server's output for failure messages (and drain the pipes).
  let output = "";
  const keep = (/** @type {Buffer} */ chunk) => {
    output = (output + chunk.toString("utf-8")).slice(-8_000);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  /** @type {Error | null} */
  let spawnError = null;
  proc.once("error", (err) => {
    spawnError = err;
  });
  // If this process dies without running after(), do not leave the server behind.
  const reap = () => proc.kill("SIGKILL");
  process.once("exit", reap);
  proc.once("exit", () => process.off("exit", reap));

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + STARTUP_MS;
  for (;;) {
    if (spawnError) throw new Error(`cannot run ${PYTHON} (set HUDONG_PYTHON): ${spawnError}`);
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `the server exited (${proc.exitCode ?? proc.signalCode}) before answering /healthz; ` +
          `is hudong installed for ${PYTHON}? (set HUDONG_PYTHON)\n${output}`,
      );
    }
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`the server did not answer /healthz within ${STARTUP_MS} ms\n${output}`);
    }
    await sleep(100);
  }
  return { proc, base, wsUrl: `ws://127.0.0.1:${port}/ws`, admin, output: () => output };
}

/** @param {import("node:child_process").ChildProcess} proc */
async function stopServer(proc) {
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  if (exited()) return;
  /** @param {number} ms */
  const waitExit = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      proc.once("exit", () => {
        clearTimeout(timer);
        resolve(true);
      });
      if (exited()) {
        clearTimeout(timer);
        resolve(true);
      }
    });
  proc.kill("SIGTERM");
  if (await waitExit(5_000)) return;
  proc.kill("SIGKILL");
  await waitExit(5_000);
}

/**
 * Call the REST API as admin.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(method, path, body) {
  const res = await fetch(`${node.base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${node.admin}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A fresh room; returns its id. */
async function createRoom() {
  const id = `js-${randomBytes(6).toString("hex")}`;
  const res = await api("POST", "/api/v1/rooms", { id });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return id;
}

/**
 * @param {string} room
 * @param {"viewer"|"host"|"screen"} role
 * @returns {Promise<string>}
 */
async function mintToken(room, role) {
  const res = await api("POST", `/api/v1/rooms/${room}/tokens`, { role });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token;
}

// --- clients ------------------------------------------------------------------------------

/** @param {"json"|"msgpack"} protocol */
function newClient(protocol) {
  const client = new HudongClient(node.wsUrl, { protocol, WebSocket, timeoutMs: WAIT_MS });
  clients.push(client);
  return client;
}

/**
 * A connected client that joined `room` with a token of `role`.
 * @param {"json"|"msgpack"} protocol
 * @param {string} room
 * @param {"viewer"|"host"|"screen"} role
 */
async function joinedClient(protocol, room, role) {
  const client = newClient(protocol);
  await client.connect();
  await client.join(room, { token: await mintToken(room, role) });
  return client;
}

/**
 * The first `type` event of `client` for which `accept` holds, within WAIT_MS.
 * Subscribes at once: call it before the action that causes the event.
 * @param {HudongClient} client
 * @param {any} type
 * @param {(value: any) => boolean} [accept]
 * @returns {Promise<any>}
 */
function nextEvent(client, type, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const off = client.on(type, (/** @type {any} */ value) => {
      if (!accept(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
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

// --- tests --------------------------------------------------------------------------------

before(async () => {
  node = await startServer();
}, { timeout: STARTUP_MS + 5_000 });

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  if (node) await stopServer(node.proc);
}, { timeout: 15_000 });

describe("live hudong server", { timeout: TEST_TIMEOUT_MS }, () => {
  for (const protocol of /** @type {const} */ (["json", "msgpack"])) {
    test(`connect and join over ${protocol}`, async () => {
      const room = await createRoom();
      const client = newClient(protocol);
      const states = [];
      client.on("state", (state) => states.push(state));
      const snapshots = [];
      client.on("snapshot", (snapshot) => snapshots.push(snapshot));

      const hello = await client.connect();
      assert.equal(hello.type, "hello");
      assert.equal(hello.protocol, "hudong.v1");
      assert.ok(Number.isInteger(hello.heartbeat_ms) && hello.heartbeat_ms > 0);
      assert.equal(hello.limits.max_text_chars, 100);
      assert.equal(client.state, ConnectionState.CONNECTED);
      assert.deepEqual(states, [ConnectionState.CONNECTING, ConnectionState.CONNECTED]);

      const token = await mintToken(room, "viewer");
      const joined = await client.join(room, { token });
      assert.equal(joined.type, "joined");
      assert.ok(Number.isInteger(joined.id));
      assert.equal(joined.you.role, "viewer");
      assert.equal(joined.snapshot.room.id, room);
      assert.equal(joined.snapshot.online, 1);
      assert.deepEqual(joined.snapshot.recent, []);
      assert.equal(client.room, room);
      assert.deepEqual(client.you, joined.you);
      assert.deepEqual(snapshots, [joined.snapshot]);

      const pong = await client.ping();
      assert.equal(pong.type, "pong");
      assert.ok(pong.id > joined.id, "command ids increase");

      // An anonymous viewer with a display name, on the same protocol.
      const guest = newClient(protocol);
      await guest.connect();
      const guestJoined = await guest.join(room, { name: "小明" });
      assert.equal(guestJoined.you.name, "小明");
      assert.equal(guestJoined.you.role, "viewer");
      assert.match(guestJoined.you.id, /^guest-/);
      assert.equal(guestJoined.snapshot.online, 2);

      const closed = await client.close();
      assert.equal(closed.code, 1000);
      assert.equal(closed.name, "normal");
      assert.equal(closed.byClient, true);
      assert.equal(closed.reconnect, false);
      assert.equal(client.state, ConnectionState.DISCONNECTED);
      await guest.close();
    });
  }

  test("a danmaku from a json client arrives in a batch at a msgpack client", async () => {
    const room = await createRoom();
    const sender = await joinedClient("json", room, "viewer");
    const watcher = await joinedClient("msgpack", room, "screen");

    const text = "  hello\t世界 🎉 ";
    const isOurs = (/** @type {any} */ e) => e.text === "hello 世界 🎉";
    const atWatcher = nextEvent(watcher, "danmaku", isOurs);
    const atSender = nextEvent(sender, "danmaku", isOurs);
    const batchAtWatcher = nextEvent(watcher, "batch", (b) => b.events.some(isOurs));
    const before = Date.now();

    const ack = await sender.sendDanmaku(text, { color: "#FFCC00", mode: "top" });
    assert.equal(ack.type, "ack");
    assert.equal(typeof ack.event, "string");

    const event = await atWatcher;
    assert.deepEqual(Object.keys(event).sort(), ["color", "id", "mode", "text", "ts", "type", "user"]);
    assert.equal(event.type, "danmaku");
    assert.equal(event.id, ack.event);
    assert.deepEqual(event.user, sender.you);
    assert.equal(event.text, "hello 世界 🎉"); // tab folded, trimmed (PROTOCOL.md, "danmaku")
    assert.equal(event.color, "#ffcc00"); // lower-cased
    assert.equal(event.mode, "top");
    assert.ok(Number.isInteger(event.ts));
    assert.ok(event.ts >= before - 60_000 && event.ts <= Date.now() + 60_000, `ts ${event.ts}`);

    const batch = await batchAtWatcher;
    assert.equal(batch.type, "batch");
    assert.equal(batch.room, room);
    assert.ok(Number.isInteger(batch.seq) && batch.seq >= 1);
    assert.equal(watcher.seq, batch.seq);

    // The sender gets its own danmaku too, with the same content over JSON.
    assert.deepEqual(await atSender, event);
  });

  test("error replies reject with the server's code", async () => {
    const room = await createRoom();
    const client = await joinedClient("json", room, "viewer");
    const unanswered = [];
    client.on("error", (err) => unanswered.push(err));

    await assert.rejects(client.sendDanmaku("x".repeat(101)), (err) => {
      assert.ok(err instanceof HudongError);
      assert.equal(err.code, "text_too_long");
      assert.equal(err.limit, 100);
      assert.equal(err.retry, false);
      assert.ok(Number.isInteger(err.id));
      assert.equal(err.reply?.type, "error");
      return true;
    });
    await rejectsWith(client.sendDanmaku(" \n\t "), "empty_text");
    await rejectsWith(client.sendDanmaku("hi", { color: "red" }), "invalid_field");
    // 100 characters (emoji count as one each) are fine.
    const ack = await client.sendDanmaku("🎉".repeat(100));
    assert.equal(ack.type, "ack");
    // The connection stays usable after errors.
    assert.equal((await client.ping()).type, "pong");
    assert.equal(client.state, ConnectionState.CONNECTED);
    assert.deepEqual(unanswered, [], "every error answered its command");

    const lost = newClient("msgpack");
    await lost.connect();
    await rejectsWith(lost.join(`no-such-${randomBytes(4).toString("hex")}`), "room_not_found");
    await rejectsWith(lost.sendDanmaku("hi"), "not_joined");
  });

  test("a screen token may not send danmaku", async () => {
    const room = await createRoom();
    for (const protocol of /** @type {const} */ (["json", "msgpack"])) {
      const screen = await joinedClient(protocol, room, "screen");
      assert.equal(screen.you?.role, "screen");
      await rejectsWith(screen.sendDanmaku("hello"), "forbidden");
    }
  });

  test("a change of the room over REST sends members a snapshot", async () => {
    const room = await createRoom();
    const member = newClient("msgpack");
    await member.connect();
    const { version } = (await member.join(room, { token: await mintToken(room, "viewer") })).snapshot;
    const snapshot = nextEvent(member, "snapshot");
    const res = await api("PATCH", `/api/v1/rooms/${room}`, { title: "新品发布 launch" });
    assert.equal(res.status, 200);
    const got = await snapshot;
    assert.equal(got.room.title, "新品发布 launch");
    assert.ok(got.version > version, `version ${got.version} after ${version}`);
  });

  test("a frame of the wrong type is closed with 1003 unsupported_data", async () => {
    // A codec override that speaks hudong.v1.json in binary frames.
    const codec = { ...JSON_CODEC, encode: (/** @type {object} */ m) => new TextEncoder().encode(JSON.stringify(m)) };
    const client = new HudongClient(node.wsUrl, { codec, WebSocket, timeoutMs: WAIT_MS });
    clients.push(client);
    await client.connect();
    const closed = nextEvent(client, "close");
    await rejectsWith(client.ping(), "disconnected");
    const info = await closed;
    assert.equal(info.code, 1003);
    assert.equal(info.name, "unsupported_data");
    assert.equal(info.reconnect, false);
  });

  test("deleting the room closes its clients with 4004 room_deleted", async () => {
    const room = await createRoom();
    const members = [await joinedClient("json", room, "viewer"), await joinedClient("msgpack", room, "host")];
    const closes = members.map((c) => nextEvent(c, "close"));

    const res = await api("DELETE", `/api/v1/rooms/${room}`);
    assert.equal(res.status, 204);

    for (const [i, info] of (await Promise.all(closes)).entries()) {
      assert.equal(info.code, 4004);
      assert.equal(info.name, "room_deleted");
      assert.equal(info.reconnect, false);
      assert.equal(info.byClient, false);
      assert.equal(members[i].state, ConnectionState.DISCONNECTED);
      assert.equal(members[i].lastClose, info);
      await rejectsWith(members[i].sendDanmaku("still there?"), "disconnected");
    }
  });
});
