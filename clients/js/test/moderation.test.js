// The wall and moderation through the client, against a live node (test/live-node.js):
// a post waits for a host's approval and reaches viewers as a `wall` view; a retracted
// danmaku arrives as `retract` and leaves `client.recent`; a mute refuses danmaku with
// `muted`; a ban closes the viewer with 4003 and the client stops reconnecting.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import WebSocket from "ws";

import { ConnectionState, HudongClient } from "../hudong.js";
import * as live from "./live-node.js";
import { STARTUP_MS, TEST_TIMEOUT_MS, WAIT_MS, eventually, nextEvent, rejectsWith } from "./live-node.js";

/** @type {live.LiveNode} */
let node;
/** @type {HudongClient[]} */
const clients = [];

function newClient() {
  const client = new HudongClient(node.wsUrl, { WebSocket, timeoutMs: WAIT_MS, backoff: { initialMs: 50, maxMs: 200 } });
  clients.push(client);
  return client;
}

/** @param {string} room @param {"host"|"viewer"} role @param {string} user */
async function member(room, role, user) {
  const client = newClient();
  await client.open(room, { token: await live.mintToken(node, room, role, user) });
  return client;
}

before(async () => {
  node = await live.startServer();
}, { timeout: STARTUP_MS + 5_000 });

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  if (node) await live.stopServer(node.proc);
});

describe("the wall and moderation on a live node", { timeout: TEST_TIMEOUT_MS }, () => {
  test("a post reaches viewers only once a host approves it", async () => {
    const room = await live.createRoom(node);
    const host = await member(room, "host", "host");
    const viewer = await member(room, "viewer", "fan");
    const queued = nextEvent(host, "wall", (view) => (view.queue ?? []).length === 1);
    const ack = await viewer.post("Hello wall");
    assert.equal(ack.status, "pending");
    const hostView = await queued;
    assert.equal(hostView.queue[0].text, "Hello wall");
    assert.deepEqual(viewer.interaction("wall").posts, []);
    const shown = nextEvent(viewer, "wall", (view) => view.count === 1);
    await host.act("wall", "approve", { post: ack.post });
    assert.equal((await shown).posts[0].text, "Hello wall");
    assert.equal(viewer.interaction("wall").queue, undefined); // viewers never see the queue
  });

  test("a retracted danmaku arrives as retract and leaves recent", async () => {
    const room = await live.createRoom(node);
    const host = await member(room, "host", "host");
    const viewer = await member(room, "viewer", "fan");
    const arrived = nextEvent(viewer, "danmaku", (e) => e.text === "spoiler");
    const { event } = await viewer.sendDanmaku("spoiler");
    await arrived;
    assert.ok(viewer.recent.some((e) => e.id === event));
    const retracted = nextEvent(viewer, "retract", (e) => e.id === event);
    await host.retract(event);
    await retracted;
    assert.ok(!viewer.recent.some((e) => e.id === event));
  });

  test("a muted viewer gets muted; a banned one is closed with 4003 and stays out", async () => {
    const room = await live.createRoom(node);
    const host = await member(room, "host", "host");
    const viewer = await member(room, "viewer", "troll");
    const troll = viewer.you.id; // its pseudonym, the id the wire shows (PROTOCOL.md, "Privacy")
    assert.match(troll, /^p-[0-9a-f]{24}$/);
    await host.mute(troll, 60);
    await rejectsWith(viewer.sendDanmaku("hey"), "muted");
    await host.unmute(troll);
    await viewer.sendDanmaku("hey");
    const closed = nextEvent(viewer, "close");
    await host.ban(troll);
    const info = await closed;
    assert.equal(info.code, 4003);
    assert.equal(info.reconnect, false);
    await eventually(() => viewer.state === ConnectionState.DISCONNECTED, "the client stays disconnected");
    const again = newClient();
    await rejectsWith(again.open(room, { token: await live.mintToken(node, room, "viewer", "troll") }), "banned");
  });
});
