// HudongClient against a live hudong node started by this file (test/live-node.js):
// connecting, joining, danmaku, errors and closes. Reconnects and retries through a
// proxy that cuts connections are in resilience.test.js.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import WebSocket from "ws";

import { ConnectionState, HudongClient, HudongError, JSON_CODEC } from "../hudong.js";
import * as live from "./live-node.js";
import { STARTUP_MS, TEST_TIMEOUT_MS, WAIT_MS, nextEvent, rejectsWith } from "./live-node.js";

/** @type {live.LiveNode} */
let node;
/** @type {HudongClient[]} */
const clients = [];

/**
 * Call the REST API as admin.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
const api = (method, path, body) => live.api(node, method, path, body);

/** A fresh room; returns its id. */
const createRoom = () => live.createRoom(node);

/**
 * @param {string} room
 * @param {"viewer"|"host"|"screen"} role
 * @returns {Promise<string>}
 */
const mintToken = (room, role) => live.mintToken(node, room, role);

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

// --- tests --------------------------------------------------------------------------------

before(async () => {
  node = await live.startServer();
}, { timeout: STARTUP_MS + 5_000 });

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  if (node) await live.stopServer(node.proc);
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
      // its own token, to join again as the same guest after a reconnect
      assert.equal(typeof guestJoined.token, "string");
      assert.equal(guest.token, guestJoined.token);
      assert.equal(client.token, token);

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
