"""The connector interface: the protocol, its plain dataclasses and its error.

A connector is a class published as an entry point in the `revoke.connectors` group (so a
third-party package adds one without editing revoke). The core only ever talks to connectors
through this file and loads them by name, so `revoke/` imports no provider SDK and no
`connectors.*` module; connectors import this file, never the reverse.

Secret material crosses this boundary only inside `Secret`, whose repr is redacted and
which is never serialised: new material goes from the owning provider straight to the
store connectors that write it, or to the escrow (`escrow_put`) when no store may receive it.

The plain dataclasses (`connector_results.py`), the action declarations (`connector_actions.py`)
and the entry-point registry (`connector_registry.py`) live beside it and are imported from here.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from revoke.connector_actions import ActionSpec as ActionSpec
from revoke.connector_actions import ActionTable as ActionTable
from revoke.connector_actions import Handler as Handler
from revoke.connector_registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from revoke.connector_registry import connector_class as connector_class
from revoke.connector_registry import known_connectors as known_connectors
from revoke.connector_results import DELETED as DELETED
from revoke.connector_results import GONE as GONE
from revoke.connector_results import REFERENCES as REFERENCES
from revoke.connector_results import ActionContext as ActionContext
from revoke.connector_results import ActionResult as ActionResult
from revoke.connector_results import Collected as Collected
from revoke.connector_results import CollectFinding as CollectFinding
from revoke.connector_results import GraphLookups as GraphLookups
from revoke.connector_results import ProbeResult as ProbeResult
from revoke.connector_results import Replacement as Replacement
from revoke.connector_results import Secret as Secret
from revoke.connector_results import escrow_item as escrow_item
from revoke.errors import RevokeError
from revoke.model import Node, NodeKind


class ConnectorError(RevokeError):
    """A provider call failed. Names the provider, the call and the node; keeps the cause chained.

    `code` is the provider's own error code (`NoSuchEntity`, `404`, `NOT_FOUND`), set once by the
    connector's client wrapper, so nothing downstream digs into `__cause__`. `retryable` marks
    throttling, 429, 5xx and connection errors: the executor backs off and retries those, and
    gives up on the rest at once.
    """

    exit_code = 2

    def __init__(
        self,
        provider: str,
        call: str,
        message: str,
        *,
        node: str | None = None,
        retryable: bool = False,
        code: str | None = None,
    ) -> None:
        self.provider = provider
        self.call = call
        self.node = node
        self.retryable = retryable
        self.code = code
        on = f" on {node}" if node else ""
        super().__init__(f"{provider}: {call}{on} failed: {message}")


class Unsupported(ConnectorError):
    """The connector has no such operation for this node (a verb it never declared)."""

    def __init__(self, provider: str, call: str, node: str | None = None, why: str = "not supported by this connector") -> None:
        super().__init__(provider, call, why, node=node, code="unsupported")


class ConnectorOptions(BaseModel):
    """Base of every connector's options model: unknown keys are errors (a typo in `endpoint_url`
    must not send calls to the real cloud); `timeout: 1e999` is not a number any call can use."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @classmethod
    def parse(cls, config: dict[str, Any], provider: str) -> Self:
        """The block's own keys (the loader's `type` and `name` are not options), or a
        ConnectorError naming the field, for callers that build a connector without `revoke.config`."""
        try:
            return cls.model_validate({k: v for k, v in config.items() if k not in ("type", "name")})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(connector)"
            raise ConnectorError(provider, "config", f"field {where}: {err['msg']}") from None


def node_type(node_id: str) -> str:
    """The provider's type inside `<provider>:<type>:<native id>`; '' for other shapes."""
    parts = node_id.split(":", 2)
    return parts[1] if len(parts) == 3 else ""


@runtime_checkable
class Connector(Protocol):
    """What every connector implements. Unsupported operations raise `Unsupported`.

    - `collect()` is get -> transform (pure) -> return; the core stores the snapshot. Before it,
      `remember_created()` tells the connector the ids of the replacements revoke itself made (from
      the journal), so it can look up by id what its provider cannot list (moto's IoT has no
      ListCACertificates: a reissue's new CA would be missed).
    - `table` declares every action (verb, node types, kinds, permissions, reversibility, probe);
      `actions` and `permissions` are derived from it (plus `operations`, the permissions of the
      calls that are not actions: collect, probe, write_store, ...). The plan turns any reachable
      credential no connector declares an action for into a manual task.
    - `act()` runs one action. It must be idempotent: a second call reports changed=False.
    - `create_replacement()` / `discard_replacement()` / `siblings()` implement rotation and
      reissue, and let a resumed run delete a replacement whose material was lost in a crash.
    - `write_store()` puts a replacement into a store this connector owns (a KV secret, a
      Secrets Manager secret), keeping the store's shape; `store_holds()` reads it back.
    - `escrow_put()` keeps a replacement nobody else may receive under an item of the escrow
      (a KV path, a Secrets Manager prefix) the configuration names; `escrow_holds()` reads the
      item back. Only the connector the escrow block names is asked. `escrow_put_many()` writes
      several replacements as members of one item (a fleet's device certificates, named in the
      plan by `escrow["member"]`), in one write; `escrow_holds()` then answers for every member.
    - `irreversible_reason()` (a classmethod: the plan calls it, with the graph, before any
      provider call) says why a verb on a node cannot be undone, or None; the default reads the
      declaration, a connector refines it from the graph (AWS: the two-key limit).
    - `keeps_replacement_secret()` (a classmethod) says the provider itself keeps the new
      credential's secret (a Vault issuer's key is internal): then nothing needs delivering.
    - `manual_reason()` (a classmethod, from the graph only) is the precise instruction for a
      credential the connector has no verb for (a Kubernetes client certificate: rotate the CA),
      shown as the manual task's reason; None keeps the generic one.
    - `probe()` reads live provider state; it never trusts the journal. `confirm()` reads back an
      action whose effect is not the node's liveness (a role's session cutoff policy).
    """

    name: ClassVar[str]
    options_model: ClassVar[type[ConnectorOptions]]
    table: ClassVar[ActionTable]
    actions: ClassVar[dict[NodeKind, frozenset[str]]]
    permissions: ClassVar[dict[str, list[str]]]

    def __init__(self, config: dict[str, Any]) -> None: ...

    def collect(self) -> Collected: ...

    def remember_created(self, node_ids: set[str]) -> None: ...

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult: ...

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement: ...

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult: ...

    def siblings(self, node: Node) -> set[str]: ...

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult: ...

    def store_holds(self, store: Node) -> set[str]: ...

    def escrow_put(self, location: str, item: str, replacement: Replacement, ctx: ActionContext) -> ActionResult: ...

    def escrow_put_many(self, location: str, item: str, members: dict[str, Replacement],
                        ctx: ActionContext) -> ActionResult: ...

    def escrow_holds(self, location: str, item: str) -> set[str]: ...

    @classmethod
    def irreversible_reason(cls, verb: str, node: Node, lookups: GraphLookups) -> str | None: ...

    @classmethod
    def keeps_replacement_secret(cls, node_id: str) -> bool: ...

    @classmethod
    def manual_reason(cls, node: Node) -> str | None: ...

    def probe(self, node: Node) -> ProbeResult: ...

    def probe_many(self, nodes: list[Node]) -> list[ProbeResult]: ...

    def confirm(self, verb: str, node: Node) -> ProbeResult: ...

    def close(self) -> None: ...


class BaseConnector:
    """Defaults for the optional parts of the protocol: everything unsupported says so.

    A subclass declares `table` (its actions) and `operations` (permissions of its other calls);
    `actions` and `permissions` are derived once, when the class is defined.
    """

    name: ClassVar[str] = ""
    options_model: ClassVar[type[ConnectorOptions]] = ConnectorOptions
    table: ClassVar[ActionTable] = ActionTable()
    operations: ClassVar[dict[str, list[str]]] = {}
    actions: ClassVar[dict[NodeKind, frozenset[str]]] = {}
    permissions: ClassVar[dict[str, list[str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "table" in cls.__dict__:
            cls.actions = cls.table.verbs_by_kind()
            cls.permissions = {**cls.operations, **cls.table.permissions()}

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def remember_created(self, node_ids: set[str]) -> None:
        return None

    def _unsupported(self, call: str, node: str | None = None) -> Unsupported:
        return Unsupported(self.name, call, node)

    def spec_for(self, action: str, node: Node) -> ActionSpec:
        spec = self.table.find(node_type(node.id), action)
        if spec is None:
            raise self._unsupported(action, node.id)
        return spec

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        spec = self.spec_for(action, node)
        if ctx.dry_run:
            return ActionResult(node.id, action, ok=True, changed=False, detail=f"dry run: would {action}")
        return spec.handler(self, node, ctx)

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        raise self._unsupported("create_replacement", node.id)

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        raise self._unsupported("discard_replacement", new_id)

    def siblings(self, node: Node) -> set[str]:
        return set()

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        raise self._unsupported("write_store", store.id)

    def store_holds(self, store: Node) -> set[str]:
        raise self._unsupported("store_holds", store.id)

    def escrow_put(self, location: str, item: str, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        raise Unsupported(self.name, "escrow_put", replacement.old_id, "this connector cannot hold an escrow")

    def escrow_put_many(self, location: str, item: str, members: dict[str, Replacement],
                        ctx: ActionContext) -> ActionResult:
        raise Unsupported(self.name, "escrow_put_many", item, "this connector cannot batch escrow items")

    def escrow_holds(self, location: str, item: str) -> set[str]:
        raise Unsupported(self.name, "escrow_holds", None, "this connector cannot hold an escrow")

    @classmethod
    def irreversible_reason(cls, verb: str, node: Node, lookups: GraphLookups) -> str | None:
        spec = declared(cls, node.id, verb)  # type: ignore[arg-type]
        if spec is None or spec.reversible:
            return None
        return f"{cls.name or 'the connector'} declares {verb} final for {node_type(node.id) or node.kind.value} nodes"

    @classmethod
    def keeps_replacement_secret(cls, node_id: str) -> bool:
        return False

    @classmethod
    def manual_reason(cls, node: Node) -> str | None:
        return None

    def probe(self, node: Node) -> ProbeResult:
        return ProbeResult(node.id, None, "no probe for this kind")

    def probe_many(self, nodes: list[Node]) -> list[ProbeResult]:
        """Probe several nodes; a connector may batch (one list call instead of one read each).
        The default probes them concurrently, each on its own."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(self.probe, nodes))

    def confirm(self, verb: str, node: Node) -> ProbeResult:
        """Read back whether the effect of `verb` on `node` still holds, for actions declared with
        probe="readback" (live=False: it holds; True: undone out of band; None: cannot tell)."""
        raise self._unsupported(f"confirm {verb}", node.id)

    def close(self) -> None:
        return None


def declared(cls: type[Connector], node_id: str, verb: str) -> ActionSpec | None:
    """The connector's declaration of `verb` for this node (a CA retirement is its revoke)."""
    return cls.table.find(node_type(node_id), "revoke" if verb == "retire_ca" else verb)


def holds_escrow(cls: type[Connector]) -> bool:
    """Whether a connector can keep an escrow (it implements escrow_put)."""
    return getattr(cls, "escrow_put", None) is not BaseConnector.escrow_put


def batches_escrow(cls: type[Connector]) -> bool:
    """Whether a connector's escrow can hold several replacements in one item (escrow_put_many)."""
    return getattr(cls, "escrow_put_many", None) is not BaseConnector.escrow_put_many


def writes_stores(cls: type[Connector]) -> bool:
    """Whether a connector owns stores a replacement can be written to (it implements write_store)."""
    return getattr(cls, "write_store", None) is not BaseConnector.write_store
