"""The connector registry: connectors are entry points of the `revoke.connectors` group, loaded
by name only when a config names them (so `revoke --help` imports no provider SDK)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from revoke.errors import RevokeError

if TYPE_CHECKING:
    from revoke.connector import Connector


ENTRY_POINT_GROUP = "revoke.connectors"
_CLASSES: dict[str, type[Connector]] = {}


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def connector_class(name: str) -> type[Connector]:
    from revoke.connector import BaseConnector

    if name not in _CLASSES:
        ep = _entry_points().get(name)
        if ep is None:
            raise RevokeError(f"unknown connector type {name!r}; known: {', '.join(known_connectors())}")
        cls = ep.load()
        if not isinstance(cls, type) or not issubclass(cls, BaseConnector):
            raise RevokeError(f"connector entry point {name!r} ({ep.value}) is not a connector class")
        cls.name = name
        _CLASSES[name] = cls  # type: ignore[assignment]
    return _CLASSES[name]


def known_connectors() -> list[str]:
    return sorted(_entry_points())
