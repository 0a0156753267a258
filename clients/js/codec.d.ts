// Generated from codec.js's JSDoc by `npm run types` (scripts/emit-types.mjs); do not edit.
/**
 * The codec called `name`.
 *
 * @param {string} name "json" or "msgpack"
 * @returns {Readonly<Codec>}
 */
export function codecFor(name: string): Readonly<Codec>;
/** @type {Readonly<Codec>} */
export const JSON_CODEC: Readonly<Codec>;
/** @type {Readonly<Codec>} */
export const MSGPACK_CODEC: Readonly<Codec>;
/** Codecs by name, as accepted by the client's `protocol` option. */
export const CODECS: Readonly<{
    json: Readonly<Codec>;
    msgpack: Readonly<Codec>;
}>;
/**
 * A codec: how messages become frame payloads and back.
 */
export type Codec = {
    /**
     * "json" or "msgpack"
     */
    name: string;
    /**
     * offered in Sec-WebSocket-Protocol
     */
    subprotocol: string;
    /**
     * true: binary frames; false: text frames
     */
    binary: boolean;
    encode: (message: object) => string | Uint8Array;
    /**
     *   throws on a payload that is not a valid encoding
     */
    decode: (data: string | ArrayBuffer | ArrayBufferView) => any;
};
