"""The registry: the interaction kinds a node knows, and the only place that lists them.

The room service, the REST API, the protocol's table of viewer commands and the pages
find kinds here and nowhere else. A deployment adds kinds of its own (plug-ins) with
:meth:`Registry.add` (the setting ``server.kinds`` names them; ``server/rooms/plugins.py``
loads them); their page modules travel with them (:attr:`Kind.page`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from server.interactions import checkin, codesign, draws, polls, qa, quiz, reactions, wall
from server.interactions.base import ID_RE, InteractionError
from server.interactions.kind import Definition, Kind, Op

BUILT_IN: tuple[Kind[Any, Any], ...] = (
    polls.KIND,
    quiz.KIND,
    codesign.KIND,
    draws.KIND,
    qa.KIND,
    checkin.KIND,
    wall.KIND,
    reactions.KIND,
)


class Registry:
    """The kinds by name, their viewer commands by op, and the instances every room has."""

    def __init__(self, kinds: Iterable[Kind[Any, Any]] = BUILT_IN) -> None:
        self._kinds: dict[str, Kind[Any, Any]] = {}
        self._ops: dict[str, tuple[Kind[Any, Any], Op]] = {}
        self._builtins: dict[str, Kind[Any, Any]] = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: Kind[Any, Any]) -> None:
        """Register ``kind``; its name, its ops and its built-in id must be new."""
        if not ID_RE.match(kind.name) or kind.name in self._kinds:
            raise ValueError(f"kind name {kind.name!r} is taken or not an id")
        for op in kind.ops:
            if op.name in self._ops:
                raise ValueError(f"op {op.name!r} of {kind.name} is taken by another kind")
        if kind.builtin is not None and kind.builtin in self._builtins:
            raise ValueError(f"built-in id {kind.builtin!r} of {kind.name} is taken")
        self._kinds[kind.name] = kind
        self._ops.update((op.name, (kind, op)) for op in kind.ops)
        if kind.builtin is not None:
            self._builtins[kind.builtin] = kind

    def __iter__(self) -> Iterator[Kind[Any, Any]]:
        return iter(self._kinds.values())

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def get(self, name: str) -> Kind[Any, Any] | None:
        return self._kinds.get(name)

    def creatable(self, name: Any) -> Kind[Any, Any]:
        """The kind a host may create instances of; ``invalid_field`` lists them."""
        kind = self._kinds.get(name) if isinstance(name, str) else None
        if kind is None or kind.builtin is not None:
            names = ", ".join(k.name for k in self if k.builtin is None)
            raise InteractionError(
                "invalid_field", f"kind must be one of {names}, got {name!r:.40}"
            )
        return kind

    def op(self, name: str) -> tuple[Kind[Any, Any], Op] | None:
        """The kind that takes the viewer command ``name``, and how."""
        return self._ops.get(name)

    @property
    def ops(self) -> Mapping[str, Op]:
        """Every viewer command of every kind, by op name (for the protocol's parser)."""
        return {name: op for name, (_, op) in self._ops.items()}

    @property
    def actions(self) -> frozenset[str]:
        """Every host action of every kind."""
        return frozenset(a for kind in self for a in kind.actions)

    def builtins(self) -> dict[str, Definition]:
        """The instances every room has, as they are before a host changes them."""
        out = {}
        for iid, kind in self._builtins.items():
            spec = kind.default_spec()
            out[iid] = Definition(iid, kind.name, spec, kind.first_state(spec, 0.0, b""), 0.0)
        return out

    def decode(self, iid: str, stored: Mapping[str, Any]) -> Definition | None:
        """A stored definition, or None when no registered kind has its name (a plug-in
        that was removed: its data stays in the store, untouched)."""
        kind = self._kinds.get(str(stored.get("kind")))
        return None if kind is None else kind.decode(iid, stored)

    def encode(self, definition: Definition) -> dict[str, Any]:
        return self._kinds[definition.kind].encode(definition)
