"""The connector interface: the protocol, its plain dataclasses, its error and the registry.

A connector is a small class registered by name (`@register("aws")`). The core only ever
talks to connectors through this file, so no provider SDK is imported by `revoke/`.

Secret material crosses this boundary only inside `Secret`, whose repr is redacted and
which is never serialised: new material goes from the owning provider straight to the
store connectors that write it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from revoke.errors import RevokeError
from revoke.model import Edge, Node, NodeKind, fingerprint


class ConnectorError(RevokeError):
    """A provider call failed. Names the provider, the call and the node; keeps the cause chained.

    `retryable` marks throttling, 429, 5xx and connection errors: the executor backs off
    and retries those, and gives up on the rest at once.
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
    ) -> None:
        self.provider = provider
        self.call = call
        self.node = node
        self.retryable = retryable
        on = f" on {node}" if node else ""
        super().__init__(f"{provider}: {call}{on} failed: {message}")


class Secret:
    """Secret fields held in memory only. `repr`/`str` never show them.

    Canonical field names by credential kind, so any store connector can write any
    provider's replacement while keeping the store's own shape:
      aws access_key:          access_key_id, secret_access_key
      gcp service_account_key: key_json (the key file JSON), private_key_id
      vault token:             token
      x509 certificate / key:  certificate_pem, private_key_pem
      password / api_key:      password / api_key
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = dict(fields)

    def reveal(self) -> dict[str, str]:
        return dict(self._fields)

    def get(self, name: str) -> str | None:
        return self._fields.get(name)

    @property
    def fingerprint(self) -> str:
        joined = "\x00".join(f"{k}={self._fields[k]}" for k in sorted(self._fields))
        return fingerprint(joined)

    def __repr__(self) -> str:
        return f"Secret(<redacted {len(self._fields)} fields>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # refuse pickling: material must not reach disk
        raise TypeError("Secret material cannot be pickled")


@dataclass
class Finding:
    """Something a connector noticed but could not model (an encrypted file, a 403 on an API)."""

    code: str
    message: str
    node: str | None = None
    severity: str = "warning"
    source: str | None = None


@dataclass
class Collected:
    """One connector's snapshot: nodes and edges, plus non-secret metadata about how it was taken.

    Edges may point at nodes another connector owns (a Vault KV secret storing
    `aws:access_key:AKIA...`): the graph joins them up whichever connector ran first.
    """

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeResult:
    """Whether a credential still works, decided from live provider state.

    `signal` says which observation decided it (e.g. "list_access_keys: Inactive",
    "lookup-accessor: 400 invalid accessor", "crl: serial present").
    `live=None` means the probe could not decide: verify treats that as a failure.
    """

    node_id: str
    live: bool | None
    signal: str
    detail: str = ""


@dataclass
class ActionResult:
    """Outcome of one action. `changed=False` means it was already in the desired state.

    `data` is journaled: identifiers only (new key id, policy name), never material.
    """

    node_id: str
    action: str
    ok: bool = True
    changed: bool = True
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Replacement:
    """A new credential created to replace `old_id`; `material` goes to the stores, nowhere else."""

    old_id: str
    new_id: str
    kind: NodeKind
    material: Secret
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return self.material.fingerprint


@dataclass
class ActionContext:
    """What an action may need beyond its node. Built by the executor."""

    incident: str
    dry_run: bool = True
    emergency: bool = False
    # old node id -> new node id for replacements made earlier in this incident (e.g. a new CA)
    replacements: dict[str, str] = field(default_factory=dict)
    # graph neighbourhood lookups, so a connector needs no store access of its own
    get_node: Callable[[str], Node | None] = lambda _id: None
    predecessors: Callable[[str, str], list[str]] = lambda _id, _rel: []
    successors: Callable[[str, str], list[str]] = lambda _id, _rel: []
    options: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None


@runtime_checkable
class Connector(Protocol):
    """What every connector implements. Unsupported operations raise `ConnectorError`.

    - `collect()` is get -> transform (pure) -> return; the core stores the snapshot.
    - `actions` declares, per credential kind, the actions this connector can run; the
      plan turns any other reachable credential into a manual task.
    - `act()` runs one action (revoke, disable, revoke_sessions, revoke_orphan, destroy,
      finalize, rollback, ...). It must be idempotent: a second call reports changed=False.
    - `create_replacement()` / `discard_replacement()` / `siblings()` implement rotation and
      reissue, and let a resumed run delete a replacement whose material was lost in a crash.
    - `write_store()` puts a replacement into a store this connector owns (a KV secret, a
      Secrets Manager secret), keeping the store's shape; `store_holds()` reads it back.
    - `probe()` reads live provider state; it never trusts the journal.
    """

    name: ClassVar[str]
    actions: ClassVar[dict[NodeKind, frozenset[str]]]
    # action (and "collect") -> provider permissions it needs, for `revoke permissions`
    permissions: ClassVar[dict[str, list[str]]]

    def collect(self) -> Collected: ...

    def owns(self, node: Node) -> bool: ...

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult: ...

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement: ...

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult: ...

    def siblings(self, node: Node) -> set[str]: ...

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult: ...

    def store_holds(self, store: Node) -> set[str]: ...

    def probe(self, node: Node) -> ProbeResult: ...

    def probe_many(self, nodes: list[Node]) -> list[ProbeResult]: ...

    def close(self) -> None: ...


class BaseConnector:
    """Defaults for the optional parts of the protocol: everything unsupported says so."""

    name: ClassVar[str] = ""
    actions: ClassVar[dict[NodeKind, frozenset[str]]] = {}
    permissions: ClassVar[dict[str, list[str]]] = {}

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def owns(self, node: Node) -> bool:
        return node.provider == self.name

    def _unsupported(self, call: str, node: str | None = None) -> ConnectorError:
        return ConnectorError(self.name, call, "not supported by this connector", node=node)

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        raise self._unsupported(action, node.id)

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

    def probe(self, node: Node) -> ProbeResult:
        return ProbeResult(node.id, None, "no probe for this kind")

    def probe_many(self, nodes: list[Node]) -> list[ProbeResult]:
        """Probe several nodes; a connector may batch (one list call instead of one read each).
        The default probes them concurrently, each on its own."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(self.probe, nodes))

    def close(self) -> None:
        return None


_REGISTRY: dict[str, str] = {
    # name -> module; modules are imported only when a config names them (lazy SDK imports)
    "inventory": "connectors.inventory",
    "x509": "connectors.x509",
    "vault": "connectors.vault",
    "aws": "connectors.aws",
    "gcp": "connectors.gcp",
}
_CLASSES: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        cls.name = name  # type: ignore[attr-defined]
        _CLASSES[name] = cls
        return cls

    return deco


def connector_class(name: str) -> type:
    if name not in _CLASSES:
        module = _REGISTRY.get(name)
        if module is None:
            raise RevokeError(f"unknown connector type {name!r}; known: {', '.join(sorted(_REGISTRY))}")
        import importlib

        importlib.import_module(module)
    return _CLASSES[name]


def known_connectors() -> Iterable[str]:
    return sorted(_REGISTRY)
