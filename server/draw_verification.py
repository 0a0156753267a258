"""Checking a draw's audit record (``hudong verify-draw FILE``): anyone recomputes the
winners of algorithm ``hudong-draw-v1`` (server/interactions/draws.py) from the record
and learns whether it holds. Pure code, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from server.interactions.base import Record
from server.interactions.draws import (
    ALGORITHM,
    MAX_WINNERS,
    SEED_BYTES,
    commitment_of,
    entrant_list_hash,
    select_winners,
)


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
    record: Any, *, commitment: str | None = None, entrants_hash: str | None = None
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
