"""The report's blast radius: the recorded plan's sources, credentials and holders, with the
relations along each explanation path looked up in the store's compiled graph."""

from __future__ import annotations

import itertools
from typing import Any

from revoke.blast import ELIDED
from revoke.errors import StoreError
from revoke.plan_model import Plan
from revoke.store import Store


class Relations:
    """Relations along explanation paths, looked up in the store's compiled graph when it still has
    both ends (a re-collection may have dropped a revoked token: the hop is then shown without one)."""

    def __init__(self, store: Store) -> None:
        from revoke.graph import RELS

        self.rels = RELS
        try:
            self.graph: Any = store.load_compiled()
        except StoreError:
            self.graph = None
        self.cache: dict[tuple[str, str], str | None] = {}

    def __call__(self, a: str, b: str) -> str | None:
        if self.graph is None:
            return None
        key = (a, b)
        if key not in self.cache:
            i, j = self.graph.lookup(a), self.graph.lookup(b)
            e = self.graph.edge_between(i, j) if i is not None and j is not None else None
            self.cache[key] = self.rels[self.graph.rel[e]].value if e is not None else None
        return self.cache[key]

    def along(self, path: list[str]) -> list[str | None]:
        return [self(a, b) for a, b in itertools.pairwise(path)]


def blast_radius(plan: Plan, steps: list[dict[str, Any]], by_node: dict[str, list[dict[str, Any]]],
                 kinds: dict[str, tuple[str, str]], rels: Relations) -> dict[str, Any]:
    """Sources, credentials and holders of the recorded plan: every step's node, and every node on
    an explanation path (holders with no action appear only there)."""
    from revoke.model import CREDENTIAL_KINDS, NodeKind

    cred_kinds = {k.value for k in CREDENTIAL_KINDS}
    depth: dict[str, int] = {s: 0 for s in plan.sources}
    path_of: dict[str, list[str]] = {s: [s] for s in plan.sources}
    for e in steps:
        # a long path is recorded shortened (head, "…", tail): only its head's positions are depths
        head = e["path"][: e["path"].index(ELIDED)] if ELIDED in e["path"] else e["path"]
        for i, nid in enumerate(head):
            if i < depth.get(nid, 1 << 30):
                depth[nid], path_of[nid] = i, e["path"][: i + 1]
        if e["node"] not in depth:
            depth[e["node"]], path_of[e["node"]] = e["depth"], e["path"]
    creds: list[dict[str, Any]] = []
    holders: list[dict[str, Any]] = []
    for nid in sorted(depth, key=lambda n: (depth[n], n)):
        if nid in plan.sources:
            continue
        node_steps = by_node.get(nid, [])
        kind, provider = kinds.get(nid, (node_steps[0]["kind"] if node_steps else NodeKind.HOST.value, ""))
        entry = {"id": nid, "kind": kind, "provider": provider or (node_steps[0]["provider"] if node_steps else ""),
                 "depth": depth[nid], "path": path_of[nid], "rels": rels.along(path_of[nid]),
                 "verbs": [s["verb"] for s in node_steps], "statuses": [s["status"] for s in node_steps],
                 "result": _combine([s["result"] for s in node_steps])}
        (creds if kind in cred_kinds else holders).append(entry)
    return {"sources": [{"id": s, "kind": kinds.get(s, ("host", ""))[0]} for s in plan.sources],
            "credentials": creds, "holders": holders,
            "edges": sorted({(p[i], p[i + 1]) for e in [*creds, *holders] for p in [e["path"]] for i in range(len(p) - 1)
                             if ELIDED not in (p[i], p[i + 1])})}


def _combine(results: list[str]) -> str | None:
    """One colour for a node with several steps (a CA's create + retire, a store's distribute task)."""
    if not results:
        return None
    for worst in ("failed", "manual-open", "pending", "skipped", "manual-attested", "covered", "done"):
        if worst in results:
            return worst
    return results[0]
