// The codecs against protocol/vectors/messages.json, the same file the Python tests
// load (tests/test_protocol.py): every encoding decodes to the message, and every
// message encodes to exactly those bytes.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { JSON_CODEC, MSGPACK_CODEC } from "../codec.js";

const VECTORS_URL = new URL("../../../protocol/vectors/messages.json", import.meta.url);
const vectors = JSON.parse(readFileSync(VECTORS_URL, "utf-8"));

/** @param {string} hex */
function bytesFromHex(hex) {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

/** @param {Uint8Array} bytes */
function hexOf(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

test("the vectors file is not empty and names are unique", () => {
  assert.ok(Array.isArray(vectors) && vectors.length > 0);
  const names = vectors.map((v) => `${v.kind}/${v.name}`);
  assert.equal(new Set(names).size, names.length);
});

for (const vector of vectors) {
  describe(`${vector.kind} ${vector.name}`, () => {
    test("json decodes to the message", () => {
      assert.deepStrictEqual(JSON_CODEC.decode(vector.json), vector.message);
    });

    test("json decodes from UTF-8 bytes too", () => {
      assert.deepStrictEqual(JSON_CODEC.decode(new TextEncoder().encode(vector.json)), vector.message);
    });

    test("json encodes to the same text", () => {
      assert.equal(JSON_CODEC.encode(vector.message), vector.json);
    });

    test("msgpack decodes to the message", () => {
      const bytes = bytesFromHex(vector.msgpack_hex);
      assert.deepStrictEqual(MSGPACK_CODEC.decode(bytes), vector.message);
      // as a WebSocket with binaryType "arraybuffer" delivers it
      assert.deepStrictEqual(MSGPACK_CODEC.decode(bytes.slice().buffer), vector.message);
    });

    test("msgpack encodes to the same bytes", () => {
      assert.equal(hexOf(MSGPACK_CODEC.encode(vector.message)), vector.msgpack_hex);
    });
  });
}

test("msgpack leaves undefined fields out, as JSON does", () => {
  const message = { op: "join", id: 1, room: "demo", token: undefined, name: "小明" };
  const expected = vectors.find((v) => v.name === "join-anonymous");
  assert.equal(hexOf(MSGPACK_CODEC.encode(message)), expected.msgpack_hex);
  assert.equal(JSON_CODEC.encode(message), expected.json);
});

test("msgpack refuses a text payload", () => {
  assert.throws(() => MSGPACK_CODEC.decode("{}"), TypeError);
});
