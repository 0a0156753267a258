// The protocol version check at connect: a server whose hello names another protocol
// than the client's PROTOCOL_VERSION is refused with a clear error, and the client
// stops (through the fake WebSocket: no network, no server).

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { CLIENT_ERRORS, ConnectionState, HudongClient, HudongError, PROTOCOL_VERSION } from "../hudong.js";
import { FakeWebSocket, HELLO } from "./fake-websocket.js";

/** @type {HudongClient[]} */
const clients = [];

function makeClient() {
  const client = new HudongClient("ws://hudong.test/ws", { WebSocket: FakeWebSocket, timeoutMs: 1000 });
  clients.push(client);
  return client;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  FakeWebSocket.reset();
});

test("the client speaks the protocol of the fake server's hello (hudong.v1)", () => {
  assert.equal(PROTOCOL_VERSION, "hudong.v1");
  assert.equal(HELLO.protocol, PROTOCOL_VERSION);
  assert.equal(CLIENT_ERRORS.protocol_mismatch.retry, false);
});

test("connect() to a server of another protocol rejects with protocol_mismatch and reports it", async () => {
  const client = makeClient();
  /** @type {HudongError[]} */
  const errors = [];
  client.on("error", (error) => errors.push(error));
  const connecting = client.connect();
  const ws = FakeWebSocket.last();
  ws.serverSend({ ...HELLO, protocol: "hudong.v2" });
  await assert.rejects(connecting, (/** @type {HudongError} */ err) => {
    assert.ok(err instanceof HudongError);
    assert.equal(err.code, "protocol_mismatch");
    assert.equal(err.retry, false);
    assert.equal(err.serverProtocol, "hudong.v2");
    assert.match(err.message, /server speaks "hudong\.v2", this client hudong\.v1/);
    return true;
  });
  assert.deepEqual(errors.map((e) => e.code), ["protocol_mismatch"]);
  assert.equal(client.state, ConnectionState.DISCONNECTED);
  assert.equal(client.lastClose?.reconnect, false);
});

test("open() gives up on a server of another protocol instead of retrying", async () => {
  FakeWebSocket.server = { hello: { ...HELLO, protocol: "hudong.v0" } };
  const client = makeClient();
  await assert.rejects(client.open("demo", { name: "guest" }), { code: "protocol_mismatch" });
  assert.equal(FakeWebSocket.sockets.length, 1, "no second attempt");
  assert.equal(client.state, ConnectionState.DISCONNECTED);
});

test("a hello without a protocol is refused too", async () => {
  const client = makeClient();
  const connecting = client.connect();
  const { protocol: _, ...bare } = HELLO;
  FakeWebSocket.last().serverSend(bare);
  await assert.rejects(connecting, (/** @type {HudongError} */ err) => err.code === "protocol_mismatch" && err.serverProtocol === null);
});
