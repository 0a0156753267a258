// The two codecs of hudong protocol v1 (PROTOCOL.md, "Subprotocols and codecs").
//
// `hudong.v1.json` carries UTF-8 JSON in text frames; `hudong.v1.msgpack` carries
// MessagePack in binary frames. Both encode the same messages: maps with string keys
// and values that are strings, numbers, booleans, null, arrays and maps. The byte
// vectors in protocol/vectors/messages.json pin both encodings down; the tests in
// test/vectors.test.js check these codecs against them byte for byte.

import { Decoder, Encoder } from "@msgpack/msgpack";

/**
 * A codec: how messages become frame payloads and back.
 *
 * @typedef {object} Codec
 * @property {string} name                        "json" or "msgpack"
 * @property {string} subprotocol                 offered in Sec-WebSocket-Protocol
 * @property {boolean} binary                     true: binary frames; false: text frames
 * @property {(message: object) => string | Uint8Array} encode
 * @property {(data: string | ArrayBuffer | ArrayBufferView) => any} decode
 *   throws on a payload that is not a valid encoding
 */

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** @param {ArrayBuffer | ArrayBufferView} data */
function bytesOf(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** @type {Readonly<Codec>} */
export const JSON_CODEC = Object.freeze({
  name: "json",
  subprotocol: "hudong.v1.json",
  binary: false,
  // JSON.stringify writes keys in insertion order, integral numbers without a
  // fraction and non-ASCII characters as themselves, like the server's orjson.
  encode: (message) => JSON.stringify(message),
  decode: (data) => JSON.parse(typeof data === "string" ? data : utf8.decode(bytesOf(data))),
});

// One encoder and decoder for the module: @msgpack/msgpack reuses their buffers and
// clones them itself if a call re-enters (an extension codec encoding, say).
// ignoreUndefined: a field set to undefined is left out, as JSON.stringify does,
// so both codecs carry the same message.
const packer = new Encoder({ ignoreUndefined: true });
const unpacker = new Decoder();

/** @type {Readonly<Codec>} */
export const MSGPACK_CODEC = Object.freeze({
  name: "msgpack",
  subprotocol: "hudong.v1.msgpack",
  binary: true,
  // Integers take the smallest MessagePack int format and non-integral numbers are
  // float 64, strings are `str` (never `bin`): the same choices as the server's
  // msgpack.packb(use_bin_type=True), so the bytes match the vectors.
  encode: (message) => packer.encode(message),
  decode: (data) => {
    if (typeof data === "string") {
      throw new TypeError("hudong.v1.msgpack payloads are bytes, got a string");
    }
    return unpacker.decode(bytesOf(data));
  },
});

/** Codecs by name, as accepted by the client's `protocol` option. */
export const CODECS = Object.freeze({ json: JSON_CODEC, msgpack: MSGPACK_CODEC });

/**
 * The codec called `name`.
 *
 * @param {string} name "json" or "msgpack"
 * @returns {Readonly<Codec>}
 */
export function codecFor(name) {
  const codec = Object.hasOwn(CODECS, name) ? CODECS[/** @type {"json"|"msgpack"} */ (name)] : undefined;
  if (codec === undefined) {
    throw new TypeError(`unknown protocol ${JSON.stringify(name)}; expected "json" or "msgpack"`);
  }
  return codec;
}
