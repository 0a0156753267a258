// permessage-deflate (PROTOCOL.md, "Transport") against a live hudong node: HudongClient
// over Node's ws, which offers the extension by default, and over a ws that does not. Both
// get the same danmaku; the first reads them as compressed batches, in far fewer bytes.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import WebSocket from "ws";

import { HudongClient } from "../hudong.js";
import * as live from "./live-node.js";
import { STARTUP_MS, TEST_TIMEOUT_MS, WAIT_MS } from "./live-node.js";

/** @type {live.LiveNode} */
let node;
/** @type {HudongClient[]} */
const clients = [];

const PHRASES = ["哈哈哈哈哈", "前方高能", "666", "主播加油😂", "泪目", "这波稳了", "yyds"];

/**
 * A ws WebSocket with or without permessage-deflate that notes its sockets, so a test
 * reads the server's answer to the upgrade and the bytes that came over TCP.
 * @param {boolean} deflate
 * @param {any[]} sockets
 */
function socketClass(deflate, sockets) {
  return class extends WebSocket {
    /** @param {string} url @param {string[]} protocols */
    constructor(url, protocols) {
      super(url, protocols, { perMessageDeflate: deflate });
      /** @type {string | null} */
      this.answered = null;
      this.on("upgrade", (res) => {
        this.answered = res.headers["sec-websocket-extensions"] ?? "";
      });
      sockets.push(this);
    }
  };
}

/**
 * The first `count` danmaku events a client gets.
 * @param {HudongClient} client
 * @param {number} count
 * @returns {Promise<any[]>}
 */
function collect(client, count) {
  const got = /** @type {any[]} */ ([]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${count} danmaku`)), WAIT_MS);
    const off = client.on("danmaku", (/** @type {any} */ event) => {
      got.push(event);
      if (got.length === count) {
        clearTimeout(timer);
        off();
        resolve(got);
      }
    });
  });
}

before(async () => {
  node = await live.startServer();
}, { timeout: STARTUP_MS + 5_000 });

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  if (node) await live.stopServer(node.proc);
}, { timeout: 15_000 });

describe("permessage-deflate", { timeout: TEST_TIMEOUT_MS }, () => {
  for (const protocol of /** @type {const} */ (["json", "msgpack"])) {
    test(`compressing and plain clients get the same danmaku over ${protocol}`, async () => {
      const room = await live.createRoom(node);
      const zipped = /** @type {any[]} */ ([]);
      const plain = /** @type {any[]} */ ([]);
      const viewers = [];
      for (const [WS, name] of [
        [socketClass(true, zipped), "压缩"],
        [socketClass(false, plain), "不压缩"],
      ]) {
        const viewer = new HudongClient(node.wsUrl, { protocol, WebSocket: WS, timeoutMs: WAIT_MS });
        clients.push(viewer);
        await viewer.connect();
        await viewer.join(room, { name });
        viewers.push(viewer);
      }
      const host = new HudongClient(node.wsUrl, {
        protocol: "json",
        WebSocket: socketClass(true, []),
        timeoutMs: WAIT_MS,
      });
      clients.push(host);
      await host.connect();
      await host.join(room, { token: await live.mintToken(node, room, "host") });

      const count = 60;
      const [bytesZipped, bytesPlain] = [zipped[0]._socket.bytesRead, plain[0]._socket.bytesRead];
      const arrived = viewers.map((v) => collect(v, count));
      const texts = Array.from({ length: count }, (_, i) => `${PHRASES[i % PHRASES.length]} ${i}`);
      await Promise.all(texts.map((text) => host.sendDanmaku(text)));
      const [a, b] = await Promise.all(arrived);
      assert.deepEqual(
        a.map((e) => e.text),
        texts,
      );
      assert.deepEqual(a, b);

      assert.match(zipped[0].answered, /permessage-deflate/);
      assert.match(zipped[0].answered, /server_no_context_takeover/);
      assert.equal(plain[0].answered, "");
      // Same messages, compressed batches: far fewer bytes over TCP (ws's own socket).
      const readZipped = zipped[0]._socket.bytesRead - bytesZipped;
      const readPlain = plain[0]._socket.bytesRead - bytesPlain;
      assert.ok(readZipped * 2 < readPlain, `${readZipped} B compressed, ${readPlain} B plain`);
    });
  }
});
