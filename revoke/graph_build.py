"""Merge and compile in one go for what `collect` just gathered: `resolve` + `CompiledGraph.build`
with the per-edge work (id lookups, duplicate edges) done on integer columns in numpy. A million
edges cost ~1 s this way against ~5 s through a dict keyed by (src, rel, dst) per edge. The
result is the same graph `CompiledGraph.build(*resolve(...))` compiles; references to
fingerprints (`fp:`), rare, take that path."""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

import numpy as np

from revoke.graph import REL_CODE, RELS, CompiledGraph, edge_times, merged_nodes, resolve, stub_node
from revoke.model import Edge, Node


def compile_graph(nodes: Iterable[Node], edges: list[Edge]) -> tuple[CompiledGraph, list[str]]:
    """The compiled graph and the fingerprint references nothing resolved. Merges duplicate nodes
    and duplicate edges in place, as `resolve` does."""
    merged = merged_nodes(nodes)
    srcs = list(map(attrgetter("src"), edges))
    dsts = list(map(attrgetter("dst"), edges))
    ends = set(srcs)
    ends.update(dsts)
    if any(end.startswith("fp:") for end in ends):
        del srcs, dsts, ends
        resolved = resolve(merged.values(), edges)
        return CompiledGraph.build(resolved.nodes, resolved.edges), resolved.unresolved
    if not ends <= merged.keys():
        # a stub for each end no snapshot declares, its kind hinted by the first edge naming it
        for edge in edges:
            if edge.src not in merged:
                merged[edge.src] = stub_node(edge.src, edge.attrs.get("src_kind"))
            if edge.dst not in merged:
                merged[edge.dst] = stub_node(edge.dst, edge.attrs.get("dst_kind"))
    del ends
    ids = sorted(merged)
    index = {nid: i for i, nid in enumerate(ids)}
    n, m = len(ids), len(edges)
    src = np.fromiter(map(index.__getitem__, srcs), dtype=np.int64, count=m)
    dst = np.fromiter(map(index.__getitem__, dsts), dtype=np.int64, count=m)
    del srcs, dsts, index
    rel = np.fromiter(map(REL_CODE.__getitem__, map(attrgetter("rel"), edges)), dtype=np.uint8, count=m)
    key = (src * max(n, 1) + dst) * len(RELS) + rel
    ordered = np.sort(key)
    repeated = ordered[1:] == ordered[:-1]
    del ordered
    if repeated.any():  # rare: only then the map from each edge to the first of its kind
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        keep = np.zeros(m, dtype=bool)
        keep[first] = True
        kept_at = first[inverse.reshape(-1)]
        for k in np.flatnonzero(~keep).tolist():  # in input order, as `resolve` merges them
            _merge_edge(edges[int(kept_at[k])], edges[k])
        at = np.flatnonzero(keep)  # the first of each (src, rel, dst), in input order
        edges = [edges[k] for k in at.tolist()]
        src, dst, rel = src[at], dst[at], rel[at]
    del key, repeated
    since, until = edge_times(edges)
    return CompiledGraph.from_columns(ids, merged, src, dst.astype(np.int32), rel, since, until), []


def _merge_edge(kept: Edge, edge: Edge) -> None:
    """A later duplicate of `kept`: the union of validity (earliest since, open or latest until)."""
    if kept is edge:
        return
    if kept.since is not None and (edge.since is None or edge.since < kept.since):
        kept.since = edge.since
    if kept.until is not None and (edge.until is None or edge.until > kept.until):
        kept.until = edge.until
    kept.attrs.update(edge.attrs)
