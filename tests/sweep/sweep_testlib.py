"""Helpers for the sweep and export tests: nodes with relative dates, stores written through
`Store.replace_snapshot` + `compile` (what `revoke collect` does)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from revoke.model import Edge, Node, NodeKind, Relation
from revoke.store import Store
from revoke.sweep import Finding, SweepContext, builtin_rules, default_config, run_sweep

NOW = datetime.now(UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def ahead(days: float) -> datetime:
    return NOW + timedelta(days=days)


def node(node_id: str, kind: str, **kw: Any) -> Node:
    attrs = kw.pop("attrs", {})
    if "provider" not in kw:
        from revoke.model import provider_of

        kw["provider"] = provider_of(node_id)
    return Node(id=node_id, kind=NodeKind(kind), attrs=dict(attrs), **kw)


def edge(src: str, rel: str, dst: str, **attrs: Any) -> Edge:
    return Edge(src, dst, Relation(rel), attrs=attrs)


def findings_of(rule_id: str, nodes: list[Node], edges: list[Edge] | None = None, **params: Any) -> list[Finding]:
    """Run one rule alone (others disabled) over an in-memory graph."""
    assert rule_id in builtin_rules(), rule_id
    config = default_config()
    for rid, cfg in config.items():
        cfg.enabled = rid == rule_id
    config[rule_id].params.update(params)
    from revoke.graph import resolve

    resolved = resolve(nodes, edges or [])
    return run_sweep(SweepContext(resolved.nodes, resolved.edges), config)


def flagged(rule_id: str, nodes: list[Node], edges: list[Edge] | None = None, **params: Any) -> set[str]:
    return {f.node for f in findings_of(rule_id, nodes, edges, **params)}


def make_store(path: Path, nodes: list[Node], edges: list[Edge]) -> str:
    url = f"sqlite:///{path}"
    store = Store(url)
    store.replace_snapshot("inventory", "inventory", nodes, edges, {}, [])
    store.compile()
    store.close()
    return url
