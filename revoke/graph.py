"""The trust graph: merge snapshots into one graph, compile it to CSR arrays, walk it fast.

networkx stays the modelling API (`TrustGraph.to_networkx()` for export and analysis), but no
query builds a networkx graph: at a million nodes that costs ~25 s and 1.4 GiB before the first
answer. Queries run on a compiled CSR snapshot (int32 indices, float64 data, as csgraph wants
them) that the store keeps as BLOBs and loads in milliseconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from revoke.model import (
    CREDENTIAL_KINDS,
    NOT_WALKED,
    Edge,
    Node,
    NodeKind,
    Relation,
    infer_kind,
    provider_of,
)

if TYPE_CHECKING:
    import networkx

KINDS: list[NodeKind] = list(NodeKind)
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
RELS: list[Relation] = list(Relation)
REL_CODE = {r: i for i, r in enumerate(RELS)}
CREDENTIAL_MASK = np.array([k in CREDENTIAL_KINDS for k in KINDS], dtype=bool)
UNKNOWN_STATUS = "unknown"
# by relation code: whether the walk follows it (`trusts`, `holds_public` record facts only)
WALKED_MASK = np.array([r not in NOT_WALKED for r in RELS], dtype=bool)


def merge_nodes(first: Node, second: Node) -> Node:
    """Two snapshots describe the same node: keep what each knows; later non-empty values win."""
    for name in ("provider", "name", "created", "expires", "last_used", "owner", "fingerprint"):
        value = getattr(second, name)
        if value:
            setattr(first, name, value)
    if second.status and not second.attrs.get("stub"):
        first.status = second.status
    if first.attrs.get("stub") and not second.attrs.get("stub"):
        first.kind = second.kind
        first.attrs.pop("stub", None)
    first.labels.update(second.labels)
    first.attrs.update({k: v for k, v in second.attrs.items() if k != "stub"})
    return first


def stub_node(node_id: str, kind_hint: str | None = None) -> Node:
    """A node seen only as a reference: kept, so nothing reachable is dropped for lack of a connector."""
    kind = NodeKind(kind_hint) if kind_hint is not None and kind_hint in NodeKind.__members__.values() else infer_kind(node_id)
    return Node(id=node_id, kind=kind, provider=provider_of(node_id), attrs={"stub": True})


@dataclass
class Resolved:
    nodes: dict[str, Node]
    edges: list[Edge]
    unresolved: list[str] = field(default_factory=list)


def merged_nodes(nodes: Iterable[Node]) -> dict[str, Node]:
    """id -> node, the records of one id merged into its first (`merge_nodes`)."""
    merged: dict[str, Node] = {}
    for node in nodes:
        if node.id in merged:
            merge_nodes(merged[node.id], node)
        else:
            merged[node.id] = node
    return merged


def resolve(nodes: Iterable[Node], edges: Iterable[Edge]) -> Resolved:
    """Merge duplicate nodes, resolve `fp:` references, add stubs for references, dedupe edges."""
    merged = merged_nodes(nodes)
    by_fp: dict[str, str] = {n.fingerprint: n.id for n in merged.values() if n.fingerprint}
    out: dict[tuple[str, str, str], Edge] = {}
    unresolved: list[str] = []
    for edge in edges:
        src, dst = edge.src, edge.dst
        if src.startswith("fp:") or dst.startswith("fp:"):
            for end in ("src", "dst"):
                ref = getattr(edge, end)
                if ref.startswith("fp:"):
                    target = by_fp.get(ref[3:])
                    if target is not None:
                        setattr(edge, end, target)
                    else:
                        unresolved.append(ref)
            src, dst = edge.src, edge.dst
        if src not in merged:
            merged[src] = stub_node(src, edge.attrs.get("src_kind"))
        if dst not in merged:
            merged[dst] = stub_node(dst, edge.attrs.get("dst_kind"))
        key = (src, str(edge.rel), dst)
        kept = out.get(key)
        if kept is None:
            out[key] = edge
        elif kept is not edge:
            # the union of validity: earliest since, open or latest until
            if kept.since is not None and (edge.since is None or edge.since < kept.since):
                kept.since = edge.since
            if kept.until is not None and (edge.until is None or edge.until > kept.until):
                kept.until = edge.until
            kept.attrs.update(edge.attrs)
    return Resolved(merged, list(out.values()), sorted(set(unresolved)))


def _ts(value: Any) -> float:
    return value.timestamp() if value is not None else math.nan


def _died(node: Node, now: float) -> float:
    if node.is_live:
        return math.inf
    at = node.died_at
    return at.timestamp() if at is not None else now


def edge_times(edges: list[Edge]) -> tuple[np.ndarray, np.ndarray]:
    """(since, until) of each edge in epoch seconds, NaN where open; Python time only for the
    few edges that carry a time."""
    m = len(edges)
    since = np.full(m, math.nan)
    until = np.full(m, math.nan)
    if not any(map(attrgetter("since"), edges)) and not any(map(attrgetter("until"), edges)):
        return since, until  # a datetime is always true: any() stops at the first timed edge
    sinces = list(map(attrgetter("since"), edges))
    untils = list(map(attrgetter("until"), edges))
    for k in [k for k, (a, b) in enumerate(zip(sinces, untils, strict=True)) if a is not None or b is not None]:
        since[k], until[k] = _ts(sinces[k]), _ts(untils[k])
    return since, until


class CompiledGraph:
    """CSR adjacency plus per-node and per-edge columns. Node i is `ids[i]`."""

    def __init__(
        self,
        ids: list[str],
        kind: np.ndarray,
        live: np.ndarray,
        created: np.ndarray,
        indptr: np.ndarray,
        indices: np.ndarray,
        rel: np.ndarray,
        since: np.ndarray,
        until: np.ndarray,
        providers: list[str],
        provider: np.ndarray,
        died: np.ndarray | None = None,
        statuses: list[str] | None = None,
        status: np.ndarray | None = None,
    ) -> None:
        self.ids = ids
        self.kind = kind
        self.live = live
        self.created = created
        self.indptr = indptr
        self.indices = indices
        self.rel = rel
        self.since = since
        self.until = until
        self.providers = providers
        self.provider = provider
        # when each node stopped working (epoch seconds): +inf while live
        self.died = died if died is not None else np.where(live, np.inf, -np.inf)
        self.statuses = statuses or ["active"]
        self.status = status if status is not None else np.zeros(len(ids), dtype=np.uint16)
        self._index: dict[str, int] | None = None
        self._csr: Any = None
        self._walk: tuple[np.ndarray, np.ndarray] | None = None

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def build(cls, nodes: dict[str, Node], edges: list[Edge]) -> CompiledGraph:
        ids = sorted(nodes)
        index = {nid: i for i, nid in enumerate(ids)}
        m = len(edges)
        # map() over attrgetter stays in C: no Python frame per edge
        src = np.fromiter(map(index.__getitem__, map(attrgetter("src"), edges)), dtype=np.int64, count=m)
        dst = np.fromiter(map(index.__getitem__, map(attrgetter("dst"), edges)), dtype=np.int32, count=m)
        rel = np.fromiter(map(REL_CODE.__getitem__, map(attrgetter("rel"), edges)), dtype=np.uint8, count=m)
        since, until = edge_times(edges)
        return cls.from_columns(ids, nodes, src, dst, rel, since, until)

    @classmethod
    def from_columns(cls, ids: list[str], nodes: dict[str, Node], src: np.ndarray, dst: np.ndarray, rel: np.ndarray,
                     since: np.ndarray, until: np.ndarray) -> CompiledGraph:
        """The graph of `nodes` (`ids`: their sorted ids) and edges given as index columns."""
        n = len(ids)
        ordered = [nodes[i] for i in ids]
        providers = sorted({node.provider for node in ordered})
        pcode = {p: i for i, p in enumerate(providers)}
        kind = np.fromiter((KIND_CODE[node.kind] for node in ordered), dtype=np.uint8, count=n)
        live = np.fromiter((node.is_live for node in ordered), dtype=bool, count=n)
        created = np.fromiter((_ts(node.created) for node in ordered), dtype=np.float64, count=n)
        provider = np.fromiter((pcode[node.provider] for node in ordered), dtype=np.uint16, count=n)
        # a dead node whose death time nobody recorded died at the latest now (the conservative end)
        now = time.time()
        died = np.fromiter((math.inf if alive else _died(node, now) for alive, node in zip(live.tolist(), ordered,
                                                                                           strict=True)),
                           dtype=np.float64, count=n)
        # a stub (known only by reference) has no status of its own: its liveness is unknown
        named = [UNKNOWN_STATUS if node.attrs.get("stub") else node.status for node in ordered]
        del ordered
        statuses = sorted(set(named) | {"active"})
        scode = {st: k for k, st in enumerate(statuses)}
        status = np.fromiter((scode[st] for st in named), dtype=np.uint16, count=n)
        graph = cls.from_arrays(ids, kind, live, created, providers, provider, src, dst, rel, since, until)
        graph.died, graph.statuses, graph.status = died, statuses, status
        return graph

    @classmethod
    def from_arrays(
        cls,
        ids: list[str],
        kind: np.ndarray,
        live: np.ndarray,
        created: np.ndarray,
        providers: list[str],
        provider: np.ndarray,
        src: np.ndarray,
        dst: np.ndarray,
        rel: np.ndarray,
        since: np.ndarray,
        until: np.ndarray,
    ) -> CompiledGraph:
        order = np.argsort(src, kind="stable")
        counts = np.bincount(src, minlength=len(ids))
        indptr = np.zeros(len(ids) + 1, dtype=np.int32)
        np.cumsum(counts, out=indptr[1:])
        return cls(
            ids, kind, live, created,
            indptr, dst[order].astype(np.int32, copy=False), rel[order], since[order], until[order],
            providers, provider,
        )

    # -- lookups --------------------------------------------------------------------------------
    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {nid: i for i, nid in enumerate(self.ids)}
        return self._index

    def lookup(self, node_id: str) -> int | None:
        """Binary search over the sorted ids: no 1M-entry dict for a handful of lookups."""
        if self._index is not None:
            return self._index.get(node_id)
        import bisect

        i = bisect.bisect_left(self.ids, node_id)
        return i if i < len(self.ids) and self.ids[i] == node_id else None

    @property
    def n_nodes(self) -> int:
        return len(self.ids)

    @property
    def n_edges(self) -> int:
        return int(self.indices.shape[0])

    def is_credential(self, i: int) -> bool:
        return bool(CREDENTIAL_MASK[self.kind[i]])

    def out_edges(self, i: int) -> range:
        return range(int(self.indptr[i]), int(self.indptr[i + 1]))

    def edge_between(self, a: int, b: int) -> int | None:
        """An edge a -> b, a walked one when there is one (that is the hop a path took)."""
        found = None
        for e in self.out_edges(a):
            if self.indices[e] == b:
                if WALKED_MASK[self.rel[e]]:
                    return e
                found = e
        return found

    def status_of(self, i: int) -> str:
        return self.statuses[int(self.status[i])]

    def liveness(self, i: int) -> bool | None:
        """True / False, or None when no connector reported the node (a stub)."""
        return None if self.status_of(i) == UNKNOWN_STATUS else bool(self.live[i])

    def walk_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, indices) of the edges the walk follows: the same arrays when every relation
        is walked, else a filtered copy made once."""
        if self._walk is None:
            walked = WALKED_MASK[self.rel]
            if walked.all():
                self._walk = (self.indptr, self.indices)
            else:
                row = np.repeat(np.arange(self.n_nodes, dtype=np.int32), np.diff(self.indptr))
                counts = np.bincount(row[walked], minlength=self.n_nodes)
                indptr = np.zeros(self.n_nodes + 1, dtype=np.int32)
                np.cumsum(counts, out=indptr[1:])
                self._walk = (indptr, self.indices[walked])
        return self._walk

    def csr(self) -> Any:
        """scipy CSR over the walked edges (no copy when all are); data are ones, csgraph only
        needs structure."""
        if self._csr is None:
            from scipy.sparse import csr_matrix

            n = self.n_nodes
            indptr, indices = self.walk_arrays()
            data = np.ones(indices.shape[0], dtype=np.float64)
            self._csr = csr_matrix((data, indices, indptr), shape=(n, n))
        return self._csr

    # -- networkx, for modelling and export -----------------------------------------------------
    def to_networkx(self) -> networkx.MultiDiGraph:
        import networkx as nx

        g = nx.MultiDiGraph()
        for i, nid in enumerate(self.ids):
            g.add_node(nid, kind=KINDS[self.kind[i]].value, provider=self.providers[self.provider[i]])
        for i in range(self.n_nodes):
            for e in self.out_edges(i):
                g.add_edge(self.ids[i], self.ids[self.indices[e]], rel=RELS[self.rel[e]].value)
        return g


def reverse_index(graph: CompiledGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-edges for every node: (indptr, source node, edge index), built once per plan."""
    n = graph.n_nodes
    src = np.repeat(np.arange(n, dtype=np.int32), np.diff(graph.indptr))
    order = np.argsort(graph.indices, kind="stable")
    counts = np.bincount(graph.indices, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, src[order], order


class GraphView:
    """Neighbours by relation in both directions over the compiled graph."""

    def __init__(self, graph: CompiledGraph) -> None:
        self.g = graph
        self.rev = reverse_index(graph)

    def preds(self, node_id: str, rel: Relation | str) -> list[str]:
        i = self.g.lookup(node_id)
        if i is None:
            return []
        indptr, src, eidx = self.rev
        code = REL_CODE[Relation(rel)]
        return [self.g.ids[int(src[k])] for k in range(int(indptr[i]), int(indptr[i + 1])) if self.g.rel[eidx[k]] == code]

    def succs(self, node_id: str, rel: Relation | str) -> list[str]:
        i = self.g.lookup(node_id)
        if i is None:
            return []
        code = REL_CODE[Relation(rel)]
        return [self.g.ids[int(self.g.indices[e])] for e in self.g.out_edges(i) if self.g.rel[e] == code]
