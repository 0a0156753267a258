"""Checking a draw's audit record (``hudong verify-draw FILE``): anyone recomputes the
winners of algorithm ``hudong-draw-v1`` (server/draw_algorithm.py) from the record
and learns whether it holds. Pure code, no I/O.

Two records: the whole one (staff and the admin read it), with the entrant ids, and
the viewers' one, with each id replaced by its digest (:func:`entrant_digest`). From the
viewers' record a viewer checks the seed against the commitment, that the winners are
the entrants at the positions the seed picks in a list of that many entries with that
hash, and (``me``) that their own id is in the list; that the hash is the hash of the
ids takes the whole record.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from server.draw_algorithm import (
    ALGORITHM,
    SEED_BYTES,
    commitment_of,
    entrant_digest,
    entrant_list_hash,
    select_winners,
    winner_positions,
)
from server.interactions.base import Record
from server.interactions.draws import MAX_WINNERS


class VerifyResult(Record, frozen=True):
    """Whether an audit record holds, what is wrong with it, and the recomputed winners."""

    ok: bool
    problems: list[str]
    winners: list[str] | None = None  # the recomputed winners, when they could be


def _seed_from_hex(value: Any) -> bytes | None:
    if not isinstance(value, str) or len(value) != 2 * SEED_BYTES:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def verify_audit(
    record: Any,
    *,
    commitment: str | None = None,
    entrants_hash: str | None = None,
    me: str | None = None,
) -> VerifyResult:
    """Recompute a draw from its audit record; never raises.

    Checks the algorithm version, that the seed matches the commitment, that the
    entrant list is frozen (sorted, distinct) and matches its hash, that no excluded
    viewer is an entrant, and that the winners are the recomputed ones. ``commitment``
    and ``entrants_hash``, if given, are the values published before the draw and must
    equal the record's.
    """
    problems: list[str] = []
    if not isinstance(record, Mapping):
        return VerifyResult(False, ["the audit record is not a JSON object"])
    if "entrants" not in record and "entrant_digests" in record:
        return verify_viewers_audit(record, commitment=commitment, me=me)
    if me is not None and me not in (_strings(record.get("entrants")) or []):
        problems.append(f"{me!r:.40} is not in the entrant list")
    if record.get("version") != ALGORITHM:
        problems.append(f"unknown algorithm version {record.get('version')!r:.40}")
    seed = _seed_from_hex(record.get("seed"))
    if seed is None:
        problems.append("the seed is not 64 hex digits")
    recorded_commitment = record.get("commitment")
    if seed is not None and recorded_commitment != commitment_of(seed):
        problems.append("the seed does not match the commitment")
    if commitment is not None and recorded_commitment != commitment:
        problems.append("the commitment differs from the one published when the draw opened")
    entrants = _strings(record.get("entrants"))
    if entrants is None:
        problems.append("the entrant list is not a list of strings")
    else:
        if any(a >= b for a, b in pairwise(entrants)):
            problems.append("the entrant list is not sorted and distinct")
        try:
            recomputed_hash: str | None = entrant_list_hash(entrants)
        except UnicodeEncodeError:
            recomputed_hash = None
            problems.append("an entrant id cannot be encoded as UTF-8")
        if record.get("entrants_hash") != recomputed_hash:
            problems.append("the entrant list does not match its hash")
    if entrants_hash is not None and record.get("entrants_hash") != entrants_hash:
        problems.append("the entrant list hash differs from the published one")
    excluded = _strings(record.get("excluded", []))
    if excluded is None:
        problems.append("the excluded list is not a list of strings")
    elif entrants is not None and set(excluded) & set(entrants):
        problems.append("an excluded viewer is in the entrant list")
    n = record.get("n")
    if type(n) is not int or not 1 <= n <= MAX_WINNERS:
        problems.append(f"n must be an integer 1..{MAX_WINNERS}")
        n = None
    winners = _strings(record.get("winners"))
    if winners is None:
        problems.append("the winners are not a list of strings")
    else:
        if len(set(winners)) != len(winners):
            problems.append("a winner appears twice")
        if entrants is not None and not set(winners) <= set(entrants):
            problems.append("a winner is not in the entrant list")
    expected: list[str] | None = None
    if seed is not None and entrants is not None and n is not None:
        try:
            expected = select_winners(seed, entrants, n)
        except UnicodeEncodeError:
            expected = None
        if expected is not None and winners != expected:
            shown = ", ".join(expected[:10]) + (" ..." if len(expected) > 10 else "")
            problems.append(f"the winners differ from the recomputation, which gives: {shown}")
    return VerifyResult(not problems, problems, expected)


def _digests(value: Any) -> list[str] | None:
    strings = _strings(value)
    if strings is None or not all(len(d) == 64 for d in strings):
        return None
    return strings


def verify_viewers_audit(
    record: Mapping[str, Any], *, commitment: str | None = None, me: str | None = None
) -> VerifyResult:
    """Check a viewers' audit record (entrant ids as digests; see the module docstring);
    never raises."""
    problems: list[str] = []
    if record.get("version") != ALGORITHM:
        problems.append(f"unknown algorithm version {record.get('version')!r:.40}")
    seed = _seed_from_hex(record.get("seed"))
    if seed is None:
        problems.append("the seed is not 64 hex digits")
    elif record.get("commitment") != commitment_of(seed):
        problems.append("the seed does not match the commitment")
    if commitment is not None and record.get("commitment") != commitment:
        problems.append("the commitment differs from the one published when the draw opened")
    digests = _digests(record.get("entrant_digests"))
    excluded = _digests(record.get("excluded_digests", []))
    list_hash = record.get("entrants_hash")
    if digests is None or excluded is None:
        problems.append("the entrant or excluded digests are not lists of 64 hex digits")
    elif len(set(digests)) != len(digests) or set(excluded) & set(digests):
        problems.append("an entrant appears twice, or an excluded viewer is an entrant")
    if not isinstance(list_hash, str) or len(list_hash) != 64:
        problems.append("the entrant list hash is not 64 hex digits")
        list_hash = None
    n = record.get("n")
    if type(n) is not int or not 1 <= n <= MAX_WINNERS:
        problems.append(f"n must be an integer 1..{MAX_WINNERS}")
        n = None
    winners = _strings(record.get("winners"))
    if winners is None:
        problems.append("the winners are not a list of strings")
    if seed is None or digests is None or list_hash is None or n is None or winners is None:
        return VerifyResult(False, problems)
    try:
        positions = winner_positions(seed, list_hash, len(digests), n)
    except ValueError:
        return VerifyResult(False, [*problems, "the entrant list hash is not hex"])
    picked = [digests[p] for p in positions]
    if [entrant_digest(seed, w) for w in winners] != picked:
        problems.append("the winners are not the entrants the seed picks from the list")
    if me is not None and entrant_digest(seed, me) not in digests:
        problems.append(f"{me!r:.40} is not in the entrant list")
    return VerifyResult(not problems, problems, winners if not problems else None)
