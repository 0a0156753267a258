"""Interaction kinds of a deployment's own: the setting ``server.kinds`` names them as
``module:attribute`` (comma-separated), each a :class:`~server.interactions.kind.Kind`
whose ``page`` is the path of its module for the pages."""

from __future__ import annotations

import importlib
from typing import Any

from server.interactions.kind import Kind
from server.interactions.registry import Registry


def load_kind(path: str) -> Kind[Any, Any]:
    """The kind at ``module:attribute``; ValueError says what is wrong."""
    module_name, _, attribute = path.strip().partition(":")
    if not module_name or not attribute:
        raise ValueError(f"a kind is named module:attribute, got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import kind module {module_name!r}: {exc}") from None
    kind = getattr(module, attribute, None)
    if not isinstance(kind, Kind):
        raise ValueError(f"{path!r} is not an interaction kind")
    return kind


def registry_with(extra: str = "") -> Registry:
    """The built-in kinds plus the plug-ins named in ``extra`` (``server.kinds``)."""
    registry = Registry()
    for path in filter(None, (p.strip() for p in extra.split(","))):
        registry.add(load_kind(path))
    return registry
