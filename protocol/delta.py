"""State messages as changes against a version (PROTOCOL.md, "State messages").

A ``state`` message carries, for one audience of one room, the interactions whose
views changed since the previous one: ``interactions`` {id: whole view} for a view
that is new or sent whole, ``patches`` {id: JSON merge patch} (RFC 7396) for the
others, with ``base`` (the version the changes apply to) and ``version`` (the version
the views are at afterwards). A client holding views at a version ``v`` applies the
message when ``base <= v``; when ``v < base`` it missed one and asks for a snapshot
(the ``snapshot`` command).

:func:`merge_patch` makes a patch; :func:`apply_patch` applies one (RFC 7396,
section 2). A merge patch cannot set a member to null (null means "remove", section
1), so :func:`merge_patch` answers None for a change it cannot express, and that view
goes whole. :class:`HeldViews` is the client side for Python clients (tests, load
tools): views kept current, gaps detected. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Delta:
    """One audience's state message: its views' changes from ``base`` to ``version``."""

    base: int
    version: int
    interactions: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> view
    patches: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> merge patch


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch that turns ``old`` into ``new``, or None when one cannot: a
    member that becomes null (RFC 7396 section 1: null removes). ``{}``: no change."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key in old:
            before = old[key]
            if before == value and type(before) is type(value):
                continue
            if isinstance(value, dict) and isinstance(before, dict):
                inner = merge_patch(before, value)
                if inner is None:
                    return None
                patch[key] = inner
                continue
        if value is None or (isinstance(value, dict) and _has_null(value)):
            return None  # a patch value that is an object merges; its nulls would remove
        patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def _has_null(value: Mapping[str, Any]) -> bool:
    return any(v is None or (isinstance(v, dict) and _has_null(v)) for v in value.values())


def apply_patch(target: Any, patch: Any) -> Any:
    """``target`` with the merge ``patch`` applied (RFC 7396 section 2, MergePatch);
    ``target`` is not changed."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_patch(result.get(key), value)
    return result


class HeldViews:
    """Keeps a client's views of one room current from snapshots and ``state``
    messages, and says when a message shows that one was missed."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.views: dict[str, dict[str, Any]] = {}
        self.gaps = 0

    def snapshot(self, snapshot: Mapping[str, Any]) -> None:
        """A snapshot (in ``joined`` or on its own) replaces everything."""
        self.version = int(snapshot.get("version", 0))
        self.views = dict(snapshot.get("interactions") or {})

    def state(self, message: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
        """Apply a ``state`` message: the whole views it changed, by id, or None when
        it does not follow what is held (a gap: ask for a snapshot)."""
        base = message.get("base")
        if self.version is None or not isinstance(base, int) or base > self.version:
            self.gaps += 1
            return None
        changed: dict[str, dict[str, Any]] = {}
        for iid, view in (message.get("interactions") or {}).items():
            changed[iid] = self.views[iid] = view
        for iid, patch in (message.get("patches") or {}).items():
            changed[iid] = self.views[iid] = apply_patch(self.views.get(iid), patch)
        self.version = max(self.version, int(message["version"]))
        return changed


__all__ = ["Delta", "HeldViews", "apply_patch", "merge_patch"]
