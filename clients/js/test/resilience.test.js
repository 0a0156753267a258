// Keeping the room against a live node (test/live-node.js), through a TCP proxy that
// cuts connections: the client reconnects and resyncs by itself, and a vote whose ack
// was lost is sent again with the same key and counted once. Over both subprotocols.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import WebSocket from "ws";

import { ConnectionState, HudongClient } from "../hudong.js";
import * as live from "./live-node.js";
import { STARTUP_MS, TEST_TIMEOUT_MS, WAIT_MS, TcpProxy, countsOf, eventually, nextEvent, rejectsWith } from "./live-node.js";

/** @type {live.LiveNode} */
let node;
/** @type {HudongClient[]} */
const clients = [];
/** @type {TcpProxy[]} */
const proxies = [];

/**
 * @param {"json"|"msgpack"} protocol
 * @param {string} [url]  default: the node itself
 */
function newClient(protocol, url = node.wsUrl) {
  const client = new HudongClient(url, {
    protocol,
    WebSocket,
    timeoutMs: WAIT_MS,
    // Quick reconnects, so that each test takes well under a second.
    backoff: { initialMs: 50, maxMs: 200 },
  });
  clients.push(client);
  return client;
}

async function newProxy() {
  const proxy = await new TcpProxy(node.port).start();
  proxies.push(proxy);
  return proxy;
}

/** A room with the open poll `p`. */
async function roomWithPoll() {
  const room = await live.createRoom(node);
  await live.openPoll(node, room);
  return room;
}

const userId = () => `u-${randomBytes(4).toString("hex")}`;

before(async () => {
  node = await live.startServer();
}, { timeout: STARTUP_MS + 5_000 });

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(proxies.map((p) => p.close()));
  if (node) await live.stopServer(node.proc);
}, { timeout: 15_000 });

describe("keeping the room on a live node", { timeout: TEST_TIMEOUT_MS }, () => {
  for (const protocol of /** @type {const} */ (["json", "msgpack"])) {
    test(`a vote whose ack was lost is sent again with its key and counted once (${protocol})`, async () => {
      const room = await roomWithPoll();
      const { token, id } = await live.mintIdentity(node, room, "viewer", userId());
      const proxy = await newProxy();
      const client = newClient(protocol, proxy.wsUrl);
      const joined = await client.open(room, { token });
      assert.equal(joined.you.id, id);
      assert.deepEqual(countsOf(client.interaction("p")), { voters: 0, a: 0, b: 0 });

      // The vote reaches the node, which commits it; its ack never gets back.
      proxy.swallowAfterNextClientChunk();
      const lost = nextEvent(client, "close");
      const resynced = nextEvent(client, "resync");
      const voting = client.vote("p", { option: "b" }, { key: `vote-${id}` });
      await live.eventually(async () => (await live.pollCounts(node, room)).voters === 1, "the vote was counted");
      proxy.cut();

      const close = await lost;
      assert.equal(close.code, 1006);
      assert.equal(close.reconnect, true);
      const ack = await voting; // reconnected, re-joined, sent again with the same key
      assert.equal(ack.type, "ack");
      assert.equal(ack.duplicate, true);
      assert.ok(Number.isInteger(ack.version));
      await resynced;
      assert.equal(proxy.accepted, 2, "the client came back through the proxy by itself");
      assert.equal(client.you?.id, id);
      assert.deepEqual(await live.pollCounts(node, room), { voters: 1, a: 0, b: 1 });

      // A fresh key on the same ballot is a new command, not a duplicate (and replaces the vote).
      const again = await client.vote("p", { option: "a" });
      assert.equal(again.duplicate, false);
      assert.deepEqual(await live.pollCounts(node, room), { voters: 1, a: 1, b: 0 });
    });
  }

  test("after a cut the client reconnects by itself and resyncs from the snapshot", async () => {
    const room = await roomWithPoll();
    const proxy = await newProxy();
    const watcher = newClient("msgpack", proxy.wsUrl);
    const { token, id: watcherId } = await live.mintIdentity(node, room, "viewer", userId());
    await watcher.open(room, { token });
    const voter = newClient("json");
    await voter.open(room, { token: await live.mintToken(node, room, "viewer", userId()) });

    // Cut the watcher off and keep it out while the other viewer votes.
    proxy.refusing = true;
    const lost = nextEvent(watcher, "close");
    const retrying = nextEvent(watcher, "reconnecting", (info) => info.error !== undefined);
    proxy.cut();
    await lost;
    assert.equal(watcher.state, ConnectionState.RECONNECTING);
    const ack = await voter.vote("p", { option: "a" });
    assert.equal(ack.duplicate, false);
    await retrying; // at least one attempt failed against the refusing proxy
    assert.deepEqual(countsOf(watcher.interaction("p")), { voters: 0, a: 0, b: 0 }, "nothing arrived meanwhile");

    const resynced = nextEvent(watcher, "resync");
    proxy.refusing = false;
    const snapshot = await resynced;
    assert.deepEqual(countsOf(snapshot.interactions.p), { voters: 1, a: 1, b: 0 });
    assert.deepEqual(countsOf(watcher.interaction("p")), { voters: 1, a: 1, b: 0 });
    assert.equal(watcher.you?.id, watcherId);
    assert.equal(watcher.state, ConnectionState.CONNECTED);
  });

  test("an anonymous viewer keeps its identity across a reconnect", async () => {
    const room = await live.createRoom(node);
    const proxy = await newProxy();
    const guest = newClient("json", proxy.wsUrl);
    const joined = await guest.open(room, { name: "小明" });
    assert.match(joined.you.id, /^guest-/);
    assert.equal(typeof guest.token, "string");
    const checkin = await guest.checkin();
    assert.equal(checkin.count, 1);

    const resynced = nextEvent(guest, "resync");
    proxy.cut();
    await resynced;
    assert.equal(guest.you?.id, joined.you.id);
    assert.equal(guest.you?.name, "小明");
    // The same viewer: checking in again (a new key) counts nobody new.
    const again = await guest.checkin();
    assert.equal(again.already, true);
    assert.equal(again.count, 1);
  });

  test("state messages keep client.interactions current and emit per kind", async () => {
    const room = await roomWithPoll();
    const watcher = newClient("msgpack");
    await watcher.open(room, { token: await live.mintToken(node, room, "screen") });
    const voter = newClient("json");
    await voter.open(room, { token: await live.mintToken(node, room, "viewer", userId()) });
    const pollEvent = nextEvent(watcher, "poll", (view) => view.results.voters === 1);
    const views = nextEvent(watcher, "views");
    await voter.vote("p", { option: "b" });
    const view = await pollEvent;
    assert.equal(view.id, "p");
    assert.equal(view.kind, "poll");
    assert.equal((await views).type, "state");
    assert.deepEqual(countsOf(watcher.interaction("p")), { voters: 1, a: 0, b: 1 });
    await eventually(() => countsOf(voter.interaction("p")).voters === 1, "the voter's view too");
  });

  test("open() rejects what retrying cannot fix", async () => {
    const client = newClient("json");
    await rejectsWith(client.open(`no-such-${randomBytes(4).toString("hex")}`), "room_not_found");
    const room = await live.createRoom(node);
    await rejectsWith(client.open(room, { token: "not-a-token" }), "unauthorized");
    assert.equal((await client.open(room, { name: "ok" })).type, "joined");
  });
});
