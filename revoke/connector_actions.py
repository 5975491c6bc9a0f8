"""Action declarations: each connector declares every action once, beside its handler, with the
permissions it needs, whether it can be undone and how verify probes it. `actions`, `permissions`,
rollback, resume probing and verify's check method are all derived from these tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from revoke.model import NodeKind

if TYPE_CHECKING:
    from revoke.connector import ActionContext, ActionResult
    from revoke.model import Node

Handler: TypeAlias = Callable[[Any, "Node", "ActionContext"], "ActionResult"]


@dataclass(frozen=True)
class ActionSpec:
    """One action, declared once beside its handler.

    `types` are the provider's node types (the middle part of the id: `access_key`, `pki_cert`)
    the handler accepts; `kinds` the node kinds the planner may pick this verb for. `reversible`
    is False when the action destroys something that cannot come back (a deleted key): the plan
    shows it and `run --execute` wants `--approve`. `undo` says whether `revoke rollback` can undo
    it. `probe` says how verify checks it against live state: "liveness" (the connector's probe
    of the node must answer dead), "readback" (a read of the changed object), "none" (not probed:
    the step stays "not verified").
    """

    verb: str
    types: tuple[str, ...]
    kinds: frozenset[NodeKind]
    handler: Handler
    permissions: tuple[str, ...] = ()
    reversible: bool = True
    undo: bool = False
    probe: str = "liveness"


class ActionTable:
    """A connector's `(node type, verb) -> ActionSpec` table, filled by decorating handlers."""

    def __init__(self) -> None:
        self.specs: list[ActionSpec] = []
        self._index: dict[tuple[str, str], ActionSpec] = {}

    def action(
        self,
        verb: str,
        *,
        types: Iterable[str],
        kinds: Iterable[NodeKind],
        permissions: Iterable[str] = (),
        reversible: bool = True,
        undo: bool = False,
        probe: str = "liveness",
    ) -> Callable[[Handler], Handler]:
        def deco(handler: Handler) -> Handler:
            spec = ActionSpec(verb, tuple(types), frozenset(kinds), handler, tuple(permissions), reversible, undo, probe)
            for t in spec.types:
                if (t, verb) in self._index:
                    raise ValueError(f"action {verb!r} declared twice for node type {t!r}")
                self._index[(t, verb)] = spec
            self.specs.append(spec)
            return handler

        return deco

    def find(self, node_type: str, verb: str) -> ActionSpec | None:
        return self._index.get((node_type, verb))

    def verbs_by_kind(self) -> dict[NodeKind, frozenset[str]]:
        out: dict[NodeKind, set[str]] = {}
        for spec in self.specs:
            for kind in spec.kinds:
                out.setdefault(kind, set()).add(spec.verb)
        return {k: frozenset(v) for k, v in out.items()}

    def permissions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for spec in self.specs:
            out.setdefault(spec.verb, [])
            out[spec.verb] += [p for p in spec.permissions if p not in out[spec.verb]]
        return out
