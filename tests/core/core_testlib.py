"""Helpers for the core tests: small graphs from tuples, radius summaries, inventory and config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from revoke.blast import BlastRadius, Window, blast_radius
from revoke.graph import CREDENTIAL_MASK, CompiledGraph, resolve
from revoke.model import Edge, Node, NodeKind, Relation, infer_kind, parse_time

USER = "aws:user:arn:aws:iam::123456789012:user/ci-deployer"
ROLE = "aws:role:arn:aws:iam::123456789012:role/deploy-role"
W = Window.parse("2026-03-31T10:00Z/2026-03-31T13:00Z")


def t(text: str) -> Any:
    return parse_time(text)


def node(node_id: str, kind: str | None = None, **kw: Any) -> Node:
    created = kw.pop("created", None)
    return Node(node_id, NodeKind(kind) if kind else infer_kind(node_id, NodeKind.HOST),
                created=t(created) if created else None, **kw)


def edge(src: str, rel: str, dst: str, since: str | None = None, until: str | None = None) -> Edge:
    return Edge(src, dst, Relation(rel), since=t(since) if since else None, until=t(until) if until else None)


def build(nodes: list[Node], edges: list[Edge]) -> CompiledGraph:
    resolved = resolve(nodes, edges)
    return CompiledGraph.build(resolved.nodes, resolved.edges)


def chain_graph(edges: list[tuple[str, str, str]], kinds: dict[str, str] | None = None) -> CompiledGraph:
    """A graph from (from, rel, to) tuples; node kinds from `kinds`, else inferred from the id."""
    kinds = kinds or {}
    ids = sorted({e[0] for e in edges} | {e[2] for e in edges} | set(kinds))
    return build([node(i, kinds.get(i)) for i in ids], [edge(a, r, b) for a, r, b in edges])


def radius(graph: CompiledGraph, sources: list[str], *, window: Window | None = None,
           blocked: np.ndarray | None = None) -> BlastRadius:
    idx = [graph.lookup(s) for s in sources]
    assert None not in idx, sources
    return blast_radius(graph, idx, window=window, blocked=blocked)  # type: ignore[arg-type]


def reached(r: BlastRadius) -> dict[str, int]:
    """id -> depth of everything in the radius, sources included (depth 0)."""
    data = r.to_json()
    return {e["id"]: e["depth"] for e in data["credentials"] + data["holders"]}


def paths(r: BlastRadius) -> dict[str, tuple[str, ...]]:
    data = r.to_json()
    return {e["id"]: tuple(e["path"]) for e in data["credentials"] + data["holders"]}


def dead_credentials(graph: CompiledGraph) -> np.ndarray:
    return ~graph.live & CREDENTIAL_MASK[graph.kind]


def write_yaml_inventory(path: Path, nodes: list[str], edges: list[str]) -> Path:
    """Flow-style YAML lines, so tests know the line number of each entry (nodes start at line 2)."""
    lines = ["nodes:", *(f"  - {n}" for n in nodes), "edges:", *(f"  - {e}" for e in edges)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(path: Path, *connectors: str) -> Path:
    path.write_text("connectors:\n" + "".join(f"  - {c}\n" for c in connectors))
    return path


def file_state(path: Path) -> tuple[bytes, int, set[str]]:
    """Bytes, mtime and the set of sibling files, to prove a command changed nothing."""
    siblings = {p.name for p in path.parent.iterdir()}
    return path.read_bytes(), path.stat().st_mtime_ns, siblings
