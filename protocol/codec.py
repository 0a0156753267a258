"""The two codecs of protocol v1 (PROTOCOL.md, "Subprotocols and codecs").

``hudong.v1.json`` carries UTF-8 JSON in text frames; ``hudong.v1.msgpack`` carries
MessagePack in binary frames. Both encode the same message objects: maps with
string keys whose values are strings, integers, floats, booleans, null, arrays and
maps. The hub encodes each batch once per codec in use and frames it once
(:func:`protocol.framing.server_frame`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson


class DecodeError(ValueError):
    """A frame's payload is not a valid message of the codec."""


# eq=False: codecs are compared and hashed by identity (they key per-codec groups).
@dataclass(frozen=True, slots=True, eq=False)
class Codec:
    name: str
    subprotocol: str
    binary: bool
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


def _json_decode(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None


_packer_options: dict[str, Any] = {"use_bin_type": True}


def _msgpack_encode(obj: Any) -> bytes:
    return msgpack.packb(obj, **_packer_options)  # type: ignore[no-any-return]


def _msgpack_decode(data: bytes) -> Any:
    try:
        # strict_map_key keeps keys strings; raw=False decodes str as UTF-8.
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises ValueError, TypeError and its own errors
        raise DecodeError(f"invalid MessagePack: {exc}") from None


JSON = Codec("json", "hudong.v1.json", False, orjson.dumps, _json_decode)
MSGPACK = Codec("msgpack", "hudong.v1.msgpack", True, _msgpack_encode, _msgpack_decode)

CODECS: tuple[Codec, ...] = (JSON, MSGPACK)
SUBPROTOCOLS: tuple[str, ...] = tuple(c.subprotocol for c in CODECS)


def codec_for_subprotocol(subprotocol: str | None) -> Codec | None:
    for codec in CODECS:
        if codec.subprotocol == subprotocol:
            return codec
    return None
