"""What crosses the connector interface besides nodes and edges: collection results, action
results and contexts, replacements and the `Secret` that carries their material (revoke/connector.py
re-exports every name here; import them from there)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from revoke.model import Edge, Node, NodeKind, fingerprint


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
class CollectFinding:
    """Something a connector noticed but could not model (an encrypted file, a 403 on an API)."""

    code: str
    message: str
    node: str | None = None
    severity: str = "warning"
    source: str | None = None

    def __post_init__(self) -> None:
        # a provider's error text may span lines (Vault's does): a finding is one line
        self.message = " ".join(str(self.message).split())


# `Collected.meta[REFERENCES]`: node ids a connector's input names without declaring them
# ([{node, where, line}]); `revoke collect` resolves them against the whole collection
REFERENCES = "references"


@dataclass
class Collected:
    """One connector's snapshot: nodes and edges, plus non-secret metadata about how it was taken.

    Edges may point at nodes another connector owns (a Vault KV secret storing
    `aws:access_key:AKIA...`): the graph joins them up whichever connector ran first.
    """

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    findings: list[CollectFinding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    edge_ends: EdgeEnds | None = None  # when the connector numbered the ends anyway (the inventory)


@dataclass
class EdgeEnds:
    """Each edge's ends as numbers into `[n.id for n in nodes] + extra` (the ends no node declares,
    numbered as first met: every `src`, then every `dst`), as `revoke/graph_parts.py` numbers them.
    A connector that had to look every end up anyway hands them over, and the compile skips a dict
    lookup per end (10M at 5M edges). Used only while the snapshot still has `nodes` nodes and as
    many edges as `src` has entries (a tombstone added since makes them stale)."""

    src: Any  # int32 numpy arrays
    dst: Any
    extra: list[str]
    nodes: int


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


# `Replacement.attrs[DELETED]`: the node id of a credential deleted to make room for the
# replacement (the old one itself, or another key at a provider's limit): journaled with the
# replacement, so the report says "deleted" and rollback knows it cannot bring it back
DELETED = "deleted"
# ConnectorError.code of a `create_replacement` whose credential no longer exists at its provider
# (a database role dropped since the collection): nothing to rotate, once a probe agrees it is dead
GONE = "gone"


@dataclass
class Replacement:
    """A new credential created to replace `old_id`; `material` goes to the stores (or the
    escrow), nowhere else."""

    old_id: str
    new_id: str
    kind: NodeKind
    material: Secret
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return self.material.fingerprint


def escrow_item(old_id: str) -> str:
    """The escrow item name for the replacement of `old_id`: decided when the plan is made (so a
    manual task can name it) and the same on every retry; safe as a KV path segment and as a
    Secrets Manager name (letters, digits and `._+=@-`)."""
    return re.sub(r"[^A-Za-z0-9._+=@-]+", "-", old_id).strip("-")[:200] or "item"


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
    options: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None


@dataclass
class GraphLookups:
    """Read-only views of the collected graph for the plan-time hooks (no provider calls):
    `predecessors(id, rel)` / `successors(id, rel)` are node ids, `get_node` a collected record."""

    get_node: Callable[[str], Node | None] = lambda _id: None
    predecessors: Callable[[str, str], list[str]] = lambda _id, _rel: []
    successors: Callable[[str, str], list[str]] = lambda _id, _rel: []
