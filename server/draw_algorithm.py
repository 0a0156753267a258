"""Algorithm ``hudong-draw-v1``: the lucky draws' winners from a secret seed and a frozen
entrant list (server/interactions/draws.py runs the draws; :mod:`server.draw_verification`
checks their audit records). Pure code, no I/O.

Algorithm ``hudong-draw-v1``, precisely, so it can be reimplemented elsewhere:

- *Entrant list*: the distinct viewer ids, minus the excluded ones, sorted by Unicode
  code point (the same order as their UTF-8 bytes).
- *Entrant list hash* ``H``: SHA-256 over, for each id in order, its UTF-8 length as
  4 bytes big-endian followed by its UTF-8 bytes; written as lowercase hex.
- *Random words*: block ``c`` (c = 0, 1, 2, ...) is
  ``HMAC-SHA256(key=seed, msg="hudong-draw-v1" || 0x00 || H (32 raw bytes) || c as
  8 bytes big-endian)``; each block gives four 64-bit big-endian words, used in order.
- *Uniform integer below r*: take words ``w`` until ``w < 2**64 - (2**64 mod r)`` and
  return ``w mod r`` (rejection sampling: no modulo bias).
- *Selection*: partial Fisher-Yates on the list ``a`` of ``m`` entrants: for
  ``i = 0 .. k-1`` with ``k = min(n, m)``, ``j = i + uniform(m - i)``, swap ``a[i]``
  and ``a[j]``. The winners are ``a[0..k-1]`` in that order (first prize first).

The entrant digests that viewers read in place of the ids (:func:`entrant_digest`):
SHA-256 of a salt made from the revealed seed, then the id in UTF-8.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from server.interactions.base import InteractionError

ALGORITHM = "hudong-draw-v1"
ENTRANT_DIGEST = b"hudong-entrant-digest-v1"  # the salt of entrant ids in viewers' audit
SEED_BYTES = 32
MAX_ENTRANT_ID_CHARS = 256
_WORD = 1 << 64


def new_seed() -> bytes:
    """32 bytes from the operating system's CSPRNG: a draw's seed (server/interactions/draws.py)."""
    return secrets.token_bytes(SEED_BYTES)


def commitment_of(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def entrant_list(entrants: Iterable[str], excluded: Iterable[str] = ()) -> list[str]:
    """The frozen entrant list: distinct ids minus ``excluded``, in code-point order.

    Raises ``invalid_field`` for an id that is not a 1..256 character string that
    UTF-8 can encode.
    """
    out = set(entrants).difference(excluded)
    for viewer in out:
        if not isinstance(viewer, str) or not 1 <= len(viewer) <= MAX_ENTRANT_ID_CHARS:
            raise InteractionError("invalid_field", f"entrant id {viewer!r:.40} is not valid")
        try:
            viewer.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InteractionError(
                "invalid_field", f"entrant id {viewer!r:.40} is not valid"
            ) from exc
    return sorted(out)


def entrant_list_hash(entrants: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for viewer in entrants:
        data = viewer.encode("utf-8")
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return digest.hexdigest()


class _Words:
    """The HMAC-SHA256 word stream of the algorithm."""

    def __init__(self, seed: bytes, list_hash: bytes) -> None:
        self._seed = seed
        self._prefix = ALGORITHM.encode() + b"\x00" + list_hash
        self._block = 0
        self._words: list[int] = []

    def next(self) -> int:
        if not self._words:
            block = hmac.digest(self._seed, self._prefix + self._block.to_bytes(8, "big"), "sha256")
            self._block += 1
            self._words = [int.from_bytes(block[i : i + 8], "big") for i in (24, 16, 8, 0)]
        return self._words.pop()  # the list is reversed: pops words 0, 1, 2, 3

    def below(self, r: int) -> int:
        limit = _WORD - _WORD % r
        while True:
            word = self.next()
            if word < limit:
                return word % r


def winner_positions(seed: bytes, list_hash: str, m: int, n: int) -> list[int]:
    """Where the winners stand in a frozen list of ``m`` entrants with hash ``list_hash``:
    the first ``min(n, m)`` of a seeded partial Fisher-Yates shuffle of its positions."""
    words = _Words(seed, bytes.fromhex(list_hash))
    pool = list(range(m))
    for i in range(min(n, m)):
        j = i + words.below(m - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[: min(n, m)]


def select_winners(seed: bytes, entrants: Sequence[str], n: int) -> list[str]:
    """The winners among the (already frozen) entrant list, first prize first."""
    found = winner_positions(seed, entrant_list_hash(entrants), len(entrants), n)
    return [entrants[p] for p in found]


def entrant_digest(seed: bytes, viewer: str) -> str:
    """An entrant's id as viewers see it in the audit record: SHA-256 of a salt made
    from the revealed seed (``HMAC-SHA256(seed, "hudong-entrant-digest-v1")``), then the
    id in UTF-8. Each viewer finds their own; nobody reads the others' ids."""
    salt = hmac.digest(seed, ENTRANT_DIGEST, "sha256")
    return hashlib.sha256(salt + viewer.encode("utf-8")).hexdigest()


def viewers_audit(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The audit record with the entrant and excluded ids replaced by their digests, in
    the same order: what viewers and screens read (PROTOCOL.md, "Lucky draws")."""
    seed = bytes.fromhex(audit["seed"])
    out = {k: v for k, v in audit.items() if k not in ("entrants", "excluded")}
    out["entrant_digests"] = [entrant_digest(seed, e) for e in audit["entrants"]]
    out["excluded_digests"] = [entrant_digest(seed, e) for e in audit["excluded"]]
    return out
