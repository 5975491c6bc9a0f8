"""Blast radius: everything reachable from compromised nodes, with depth and one shortest path.

Three walks over the compiled graph:
- plain reachability: scipy csgraph BFS from one virtual super-source (one call for any number
  of sources);
- residual reachability (verify): the same BFS over a graph whose dead credentials keep their
  in-edges but lose their out-edges, so a revoked key blocks every path through it;
- an exposure window: an earliest-exposure walk (a first hop counts only if its edge existed during
  the window; later hops count if the edge still existed when their source was exposed, because
  the attacker keeps what it took).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from revoke.blast_paths import ELIDED as ELIDED
from revoke.blast_paths import PATH_HEAD as PATH_HEAD
from revoke.blast_paths import PATH_TAIL as PATH_TAIL
from revoke.blast_paths import ShortPaths as ShortPaths
from revoke.blast_paths import bfs_depths
from revoke.errors import InputError
from revoke.graph import CREDENTIAL_MASK, KIND_CODE, KINDS, RELS, UNKNOWN_STATUS, WALKED_MASK, CompiledGraph
from revoke.model import NodeKind, parse_time

UNREACHED = -9999
SECRET_CODE = KIND_CODE[NodeKind.SECRET]


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, text: str) -> Window:
        if "/" not in text:
            raise InputError(f"invalid window {text!r}; expected START/END, e.g. 2026-03-31T10:00Z/2026-03-31T13:00Z")
        a, _, b = text.partition("/")
        start = parse_time(a, field_name="window start")
        end = parse_time(b, field_name="window end")
        if start is None or end is None:
            raise InputError(f"invalid window {text!r}; both START and END are required")
        if end < start:
            raise InputError(f"invalid window {text!r}: END is before START")
        return cls(start, end)


class BlastRadius:
    """The result of one walk. `pred[i]` is i's predecessor on a shortest path (-1 for a source).

    Without `reached_depth`, `reached` must be a FIFO breadth-first order with the distinct
    sources first (what csgraph returns); any other walk passes its depths."""

    def __init__(
        self, graph: CompiledGraph, sources: list[int], reached: np.ndarray, pred: np.ndarray,
        pred_edge: np.ndarray | None = None, reached_depth: np.ndarray | None = None,
    ) -> None:
        self.graph = graph
        self.sources = sources
        # node indices in discovery order, sources first; every node comes after its predecessor
        self.reached = reached
        self.pred = pred
        # the edge each node was reached by, when only some edges between two nodes count (a window)
        self.pred_edge = pred_edge
        # depth of reached[k], aligned with `reached`: no array over the whole graph for a small radius
        if reached_depth is None:
            reached_depth = bfs_depths(pred, reached, len(set(sources)))
        self.reached_depth = reached_depth
        self._depth: np.ndarray | None = None

    @property
    def depth(self) -> np.ndarray:
        """Depth by node index (-1 where not reached), built on first use."""
        if self._depth is None:
            depth = np.full(self.graph.n_nodes, -1, dtype=np.int32)
            depth[self.reached] = self.reached_depth
            self._depth = depth
        return self._depth

    def __contains__(self, node_id: str) -> bool:
        i = self.graph.lookup(node_id)
        return i is not None and (i in self.sources or self.pred[i] != UNREACHED)

    def path(self, i: int) -> list[int]:
        out = [i]
        while self.pred[out[-1]] >= 0:
            out.append(int(self.pred[out[-1]]))
        out.reverse()
        return out

    def path_ids(self, node_id: str) -> list[str] | None:
        i = self.graph.lookup(node_id)
        if i is None or node_id not in self:
            return None
        return [self.graph.ids[j] for j in self.path(i)]

    def hops(self, node_id: str) -> list[tuple[str, str, str]] | None:
        """(from, rel, to) for each hop of the explanation path."""
        i = self.graph.lookup(node_id)
        if i is None or node_id not in self:
            return None
        p = self.path(i)
        out = []
        for a, b in itertools.pairwise(p):
            e = int(self.pred_edge[b]) if self.pred_edge is not None else self.graph.edge_between(a, b)
            rel = RELS[self.graph.rel[e]].value if e is not None else "?"
            out.append((self.graph.ids[a], rel, self.graph.ids[b]))
        return out

    def credential_indices(self) -> np.ndarray:
        r = self.reached
        return r[CREDENTIAL_MASK[self.graph.kind[r]]]

    def holder_indices(self) -> np.ndarray:
        r = self.reached
        return r[~CREDENTIAL_MASK[self.graph.kind[r]]]

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md contract; entries sorted by depth, then id. Paths are built once per node
        from its predecessor's (discovery order puts every predecessor first), so the cost is the
        size of the output, with no per-node walk back to the source."""
        import gc

        # hundreds of thousands of small acyclic dicts and lists: without this, the cyclic
        # collector's full passes over a big heap cost ~2x the building itself
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._to_json()
        finally:
            if was_enabled:
                gc.enable()

    def _to_json(self) -> dict[str, Any]:
        g = self.graph
        # ids are sorted, so node index order is id order: one vectorised sort by (depth, id)
        by_depth = np.lexsort((self.reached, self.reached_depth))
        ids, kind_names, providers = g.ids, [k.value for k in KINDS], g.providers
        reached = self.reached.tolist()
        pred = self.pred[self.reached].tolist()
        kinds = g.kind[self.reached].tolist()
        provs = g.provider[self.reached].tolist()
        depth = self.reached_depth.tolist()
        is_cred = CREDENTIAL_MASK.tolist()
        entries: list[dict[str, Any]] = []
        live = g.live[self.reached].tolist()
        status = [g.statuses[c] for c in g.status[self.reached].tolist()]
        paths = ShortPaths(ids)
        for i, p, k, pv, d, lv, st in zip(reached, pred, kinds, provs, depth, live, status, strict=True):
            path, length = paths.add(i, p)
            entry = {"id": ids[i], "kind": kind_names[k], "provider": providers[pv], "depth": d, "path": path}
            if length > len(path):
                entry["path_length"] = length
            if is_cred[k]:
                entry["live"] = None if st == UNKNOWN_STATUS else lv
                entry["status"] = st
            entries.append(entry)
        ordered = [entries[j] for j in by_depth.tolist()]
        return {
            "sources": [ids[s] for s in self.sources],
            "credentials": [e for e, j in zip(ordered, by_depth.tolist(), strict=True) if is_cred[kinds[j]]],
            "holders": [e for e, j in zip(ordered, by_depth.tolist(), strict=True) if not is_cred[kinds[j]]],
        }


def resolve_sources(graph: CompiledGraph, node_ids: list[str]) -> list[int]:
    from revoke.errors import UnknownNodeError

    out: list[int] = []
    for nid in node_ids:
        i = graph.lookup(nid)
        if i is None:
            import difflib

            raise UnknownNodeError(nid, difflib.get_close_matches(nid, _candidates(graph, nid), n=3))
        if i not in out:
            out.append(i)
    return out


def _candidates(graph: CompiledGraph, nid: str) -> list[str]:
    """Ids sharing the prefix up to the last ':' (a bounded candidate set on huge graphs)."""
    import bisect

    prefix = nid.rsplit(":", 1)[0] if ":" in nid else nid[:1]
    lo = bisect.bisect_left(graph.ids, prefix)
    cands = graph.ids[lo : lo + 5000]
    cands = [c for c in cands if c.startswith(prefix)]
    return cands or graph.ids[:5000]


def blast_radius(
    graph: CompiledGraph,
    sources: list[int],
    *,
    window: Window | None = None,
    blocked: np.ndarray | None = None,
) -> BlastRadius:
    """Reachability from `sources` along the walked relations. `blocked[i]` keeps i reachable but
    stops every path through it, a blocked source's own out-edges included. By default the dead
    nodes are blocked (a revoked key opens nothing); with a window, a dead node's edges count only
    while it was live (see `_windowed`)."""
    if window is not None:
        return _windowed(graph, sources, window, blocked)
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order

    if blocked is None:
        blocked = ~graph.live
    n = graph.n_nodes
    indptr, indices = graph.walk_arrays()
    if blocked.any():
        counts = np.diff(indptr)
        keep = np.repeat(~blocked, counts)
        indices = indices[keep]
        new_counts = np.where(blocked, 0, counts)
        indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(new_counts, out=indptr[1:])
    elif len(sources) == 1:
        order, pred = breadth_first_order(graph.csr(), sources[0], directed=True, return_predecessors=True)
        pred[sources[0]] = -1
        return BlastRadius(graph, sources, order, pred)
    # one virtual super-source row n pointing at every source: one BFS for any number of sources
    src = np.asarray(sources, dtype=np.int32)
    ext_indptr = np.concatenate([indptr, np.asarray([indptr[-1] + len(src)], dtype=np.int32)])
    ext_indices = np.concatenate([indices, src])
    data = np.ones(ext_indices.shape[0], dtype=np.float64)
    mat = csr_matrix((data, ext_indices, ext_indptr), shape=(n + 1, n + 1))
    order, pred = breadth_first_order(mat, n, directed=True, return_predecessors=True)
    pred = pred[:n]
    pred[src] = -1  # only the sources hang off the virtual node
    return BlastRadius(graph, sources, order[1:], pred)


def _windowed(graph: CompiledGraph, sources: list[int], window: Window, blocked: np.ndarray | None) -> BlastRadius:
    """Earliest-exposure walk. A node's exposure time t is when the attacker could first hold it:
    sources at the window start; a first hop needs since <= window end and until >= window start
    (no edge predates its target's creation); a later hop from a node exposed at t needs
    until >= t, and exposes its target at max(t, since).

    Each node also carries the end of its usefulness: a credential's material works until it
    died (`graph.died`), and what is reached through something lasts no longer than it (a user
    reached through a key stops when the key does; a secret yields its later values only while
    its reader lives). An edge counts only if it existed before that end (since <= end), so a
    replacement written after the key that could read its store was revoked is not exposed.

    Label-correcting rounds over the whole frontier at once (numpy), not a heap walk: relaxing is
    monotone (a node exposed earlier, or usable longer, can only pass more edges), so the rounds
    reach a fixpoint: the earliest exposure and the latest end of every node (taken over all
    paths, an over-approximation only where the two come from different paths), then the fewest
    hops."""
    ws, we = window.start.timestamp(), window.end.timestamp()
    n = graph.n_nodes
    src = np.unique(np.asarray(sources, dtype=np.int64))
    is_material = CREDENTIAL_MASK[graph.kind] & (graph.kind != SECRET_CODE)
    best = np.full(n, np.inf)
    end = np.full(n, -np.inf)
    depth = np.full(n, np.iinfo(np.int32).max, dtype=np.int64)
    pred = np.full(n, UNREACHED, dtype=np.int64)
    pred_edge = np.full(n, -1, dtype=np.int64)
    is_src = np.zeros(n, dtype=bool)
    is_src[src] = True
    best[src], end[src], depth[src], pred[src] = ws, graph.died[src], 0, -1
    indptr, indices = graph.walk_arrays()
    indptr = indptr.astype(np.int64)
    walked_edge = np.flatnonzero(WALKED_MASK[graph.rel]) if indices.shape[0] != graph.n_edges else None
    frontier = src
    while frontier.size:
        # a blocked node, or one already dead when the attacker got it, is reported but yields nothing
        usable = best[frontier] <= end[frontier]
        if blocked is not None:
            usable &= ~blocked[frontier]
        frontier = frontier[usable]
        counts = indptr[frontier + 1] - indptr[frontier]
        total = int(counts.sum())
        if total == 0:
            break
        owner = np.repeat(frontier, counts)
        offsets = np.repeat(indptr[frontier] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        widx = np.arange(total, dtype=np.int64) + offsets
        eidx = walked_edge[widx] if walked_edge is not None else widx
        dst = indices[widx].astype(np.int64)
        since, until = graph.since[eidx], graph.until[eidx]
        t, e_end = best[owner], end[owner]
        first = is_src[owner]
        # nothing could hold or reach a node before it existed: an edge dates from its target's creation
        since = np.fmax(since, graph.created[dst])
        no_since, no_until = np.isnan(since), np.isnan(until)
        ok = np.where(first, (no_since | (since <= we)) & (no_until | (until >= ws)), no_until | (until >= t))
        ok &= no_since | (since <= e_end)
        tj = np.where(no_since, t, np.maximum(t, np.where(no_since, t, since)))
        ej = np.where(is_material[dst], graph.died[dst], np.minimum(e_end, graph.died[dst]))
        dj = depth[owner] + 1
        dst, tj, ej, dj, owner, eidx = dst[ok], tj[ok], ej[ok], dj[ok], owner[ok], eidx[ok]
        better_end = ej > end[dst]
        better = (tj < best[dst]) | ((tj == best[dst]) & (dj < depth[dst])) | better_end
        dst, tj, ej, dj, owner, eidx = dst[better], tj[better], ej[better], dj[better], owner[better], eidx[better]
        if not dst.size:
            break
        # the latest end over all candidates (and what the node already had) is kept apart from the path
        np.maximum.at(end, dst, ej)
        # one winner per target: earliest exposure, then fewest hops
        order = np.lexsort((dj, tj, dst))
        dst, tj, dj, owner, eidx = dst[order], tj[order], dj[order], owner[order], eidx[order]
        keep = np.ones(dst.size, dtype=bool)
        keep[1:] = dst[1:] != dst[:-1]
        dst, tj, dj, owner, eidx = dst[keep], tj[keep], dj[keep], owner[keep], eidx[keep]
        improve = (tj < best[dst]) | ((tj == best[dst]) & (dj < depth[dst]))
        d2 = dst[improve]
        best[d2], depth[d2], pred[d2], pred_edge[d2] = tj[improve], dj[improve], owner[improve], eidx[improve]
        frontier = dst
    reached = np.flatnonzero(pred != UNREACHED)
    reached = reached[np.argsort(depth[reached], kind="stable")]
    return BlastRadius(graph, [int(x) for x in sources], reached, pred, pred_edge,
                       depth[reached].astype(np.int32))


def live_reachable(graph: CompiledGraph, sources: list[int], dead: list[str]) -> tuple[BlastRadius, np.ndarray]:
    """Residual reachability: walk through live credentials only (the graph's own dead statuses plus
    `dead`, e.g. probed or attested nodes), and return the walk and the live credentials it reaches,
    in node order."""
    blocked = ~graph.live.copy()
    for nid in dead:
        i = graph.lookup(nid)
        if i is not None:
            blocked[i] = True
    radius = blast_radius(graph, sources, blocked=blocked)
    creds = radius.reached[CREDENTIAL_MASK[graph.kind[radius.reached]]]
    return radius, np.sort(creds[~blocked[creds]])
