"""hudong wire protocol v1: codes, codecs, messages and batch framing.

Pure code: nothing here does I/O or imports asyncio, so every rule can be tested
with plain values and byte vectors (see ``protocol/vectors``).
"""

from protocol.codec import CODECS, JSON, MSGPACK, Codec, DecodeError, codec_for_subprotocol

__all__ = ["CODECS", "JSON", "MSGPACK", "Codec", "DecodeError", "codec_for_subprotocol"]
