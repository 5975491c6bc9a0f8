"""The graph compiled from what `collect` just gathered (numpy id lookups and duplicate-edge
merging), the bulk snapshot load (indexes rebuilt after the rows, in the same transaction) and
the quick JSON parse: each gives what the plain rules say, checked against expectations computed
here independently."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from revoke import graph as graph_module
from revoke import json_input
from revoke import store as store_module
from revoke.errors import InputError
from revoke.graph import RELS, CompiledGraph
from revoke.model import Edge, Node, NodeKind, Relation
from revoke.store import Store

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HOLDERS = [NodeKind.HOST, NodeKind.ROLE, NodeKind.USER]
CREDS = [NodeKind.ACCESS_KEY, NodeKind.TOKEN, NodeKind.SECRET]


def _estate(seed: int, n: int, m: int, prefix: str = "") -> tuple[list[Node], list[Edge]]:
    """Random nodes (a fifth of the credentials dead) and edges, with duplicates, some timed."""
    rnd = random.Random(seed)
    nodes = []
    for i in range(n):
        kind = rnd.choice(HOLDERS + CREDS)
        status = rnd.choice(["active", "active", "active", "inactive"]) if kind in CREDS else "active"
        nodes.append(Node(f"{prefix}x:{kind}:n{i:05d}", kind, "x", status=status))
    edges = []
    for _ in range(m):
        a, b = rnd.sample(nodes, 2)
        rel = rnd.choice([Relation.STORES, Relation.CAN_READ, Relation.AUTHENTICATES_AS, Relation.TRUSTS])
        since = until = None
        if rnd.random() < 0.2:
            since = T0 + timedelta(days=rnd.randint(0, 30))
            until = since + timedelta(days=rnd.randint(1, 30)) if rnd.random() < 0.5 else None
        edges.append(Edge(a.id, b.id, rel, since, until))
        if rnd.random() < 0.1:  # the same edge again, timed differently
            edges.append(Edge(a.id, b.id, rel, since and since - timedelta(days=1), None if until else T0))
    return nodes, edges


def _expected_edges(edges: list[Edge]) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(src, rel, dst) -> (since, until) epoch seconds, NaN for open: the union of validity."""
    out: dict[tuple[str, str, str], tuple[datetime | None, datetime | None]] = {}
    for e in edges:
        key = (e.src, str(e.rel), e.dst)
        if key not in out:
            out[key] = (e.since, e.until)
            continue
        s, u = out[key]
        s = None if s is None or e.since is None else min(s, e.since)
        u = None if u is None or e.until is None else max(u, e.until)
        out[key] = (s, u)
    nan = float("nan")
    return {k: (s.timestamp() if s else nan, u.timestamp() if u else nan) for k, (s, u) in out.items()}


def _graph_edges(g: CompiledGraph) -> dict[tuple[str, str, str], tuple[float, float]]:
    out = {}
    for i in range(g.n_nodes):
        for e in g.out_edges(i):
            key = (g.ids[i], str(RELS[g.rel[e]]), g.ids[int(g.indices[e])])
            assert key not in out, f"edge {key} compiled twice"
            out[key] = (float(g.since[e]), float(g.until[e]))
    return out


def _same(a: dict, b: dict) -> bool:
    def norm(v: tuple[float, float]) -> tuple[str, str]:
        return tuple("open" if x != x else repr(x) for x in v)  # type: ignore[return-value]
    return a.keys() == b.keys() and all(norm(a[k]) == norm(b[k]) for k in a)


def test_compile_of_fresh_and_stored_snapshots_matches_the_rules(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    nodes_a, edges_a = _estate(1, 400, 3000)
    nodes_b, edges_b = _estate(2, 300, 2000)  # the same ids: the second snapshot re-describes nodes
    store.replace_snapshot("b", "inventory", nodes_b, edges_b, {}, [])
    store.compile({"b": (nodes_b, edges_b)})
    nodes_a2, edges_a2 = _estate(1, 400, 3000)
    store.replace_snapshot("a", "inventory", nodes_a, edges_a, {}, [])
    # "b" is read back from the store, "a" taken from memory
    g = store.compile({"a": (nodes_a2, edges_a2)})
    ids = sorted({n.id for n in nodes_a} | {n.id for n in nodes_b})
    assert g.ids == ids
    # edges in the order their snapshots were written: b's, then a's
    fresh_b, fresh_a = _estate(2, 300, 2000)[1], _estate(1, 400, 3000)[1]
    assert _same(_graph_edges(g), _expected_edges(fresh_b + fresh_a))
    # liveness and status: the later snapshot by name ("b") wins a node both describe
    status = {n.id: n.status for n in _estate(1, 400, 3000)[0]}
    status.update({n.id: n.status for n in _estate(2, 300, 2000)[0]})
    for i, nid in enumerate(g.ids):
        assert g.status_of(i) == status[nid]
        assert bool(g.live[i]) == (status[nid] == "active")
    assert store.load_compiled().n_edges == g.n_edges
    store.close()


def test_a_fresh_collection_compiles_without_the_per_edge_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("resolve() walked every edge in Python")

    monkeypatch.setattr(graph_module, "resolve", refuse)
    import revoke.graph_build as build

    monkeypatch.setattr(build, "resolve", refuse)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    nodes, edges = _estate(3, 200, 1500)
    store.replace_snapshot("inv", "inventory", nodes, edges, {}, [])
    g = store.compile({"inv": (nodes, edges)})
    assert _same(_graph_edges(g), _expected_edges(_estate(3, 200, 1500)[1]))
    store.close()


def _indexes(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"))
    finally:
        db.close()


def test_a_bulk_load_keeps_the_indexes_and_a_failed_one_keeps_the_previous_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "BULK_ROWS", 10)
    path = tmp_path / "s.db"
    store = Store(f"sqlite:///{path}")
    before = _indexes(path)
    nodes, edges = _estate(4, 100, 500)
    store.replace_snapshot("inv", "inventory", nodes, edges, {}, [])
    assert _indexes(path) == before and {"nodes_id", "nodes_snapshot", "edges_snapshot"} <= set(before)
    stored = store.db.execute("SELECT count(*) FROM edges").fetchone()[0]
    assert stored == len(edges)

    class Boom(Exception):
        pass

    def failing() -> object:
        yield from _estate(5, 100, 50)[1]
        raise Boom

    bigger_nodes, _ = _estate(5, 100, 50)
    with pytest.raises(Boom):
        store.replace_snapshot("inv", "inventory", bigger_nodes, _Sized(failing(), 5000), {}, [])  # type: ignore[arg-type]
    assert _indexes(path) == before
    assert store.db.execute("SELECT count(*) FROM edges").fetchone()[0] == stored
    plan = store.db.execute("EXPLAIN QUERY PLAN SELECT data FROM edges WHERE snapshot='inv'").fetchall()
    assert "edges_snapshot" in str(plan)
    store.close()


class _Sized:
    """An edge list that fails part-way through the insert (as a crash would)."""

    def __init__(self, it: object, n: int) -> None:
        self.it, self.n = it, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> object:
        return self.it


@pytest.mark.parametrize("text", ['{"nodes": [], "edges": [], "nodes": []}', '{"nodes" : [], "nodes" :[]}',
                                  '{"nodes":[],\n"edges"\t:[],\n"edges"\n:[]}', '{"a": 12345678901234567890123}',
                                  '{"a": -9223372036854775809}', '{"a": [1e999]}'])
def test_the_quick_json_parse_never_accepts_what_the_careful_one_refuses(text: str) -> None:
    with pytest.raises(InputError):
        json_input.load_json(text)


def test_plain_json_is_parsed_without_the_standard_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"nodes": [{"id": "host:a", "kind": "host", "attrs": {"n": 10**17, "x": -1.5, "s": "a:b"}}],
           "edges": [{"from": "host:a", "to": "host:a", "rel": "stores"}]}

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the standard parser ran")

    monkeypatch.setattr(json_input.json, "loads", refuse)
    assert json_input.load_json(json.dumps(doc, separators=(",", ":"))) == doc


def test_the_inventory_numbers_edge_ends_as_the_compile_would(tmp_path: Path) -> None:
    """A JSON inventory hands its edges' ends over as numbers (it looks every end up anyway): the
    graph `collect` compiles with them equals the compile of every stored row; numbers that no
    longer fit the snapshot (a node added since) are not used."""
    from connectors.inventory import parse_inventory
    from revoke.collect import collect
    from revoke.config import load_config
    from revoke.graph_parts import part_of
    from tests.store_compare import same_graph

    nodes, edges = _estate(5, 300, 2500)
    doc = {"nodes": [{"id": n.id, "kind": str(n.kind), "status": n.status} for n in nodes[:250]],
           "edges": [{"from": e.src, "to": e.dst, "rel": str(e.rel)} for e in edges]}
    doc["edges"].append({"from": nodes[0].id, "to": "aws:access_key:AKIAOTHERINVENTORY", "rel": "stores"})
    (tmp_path / "big.json").write_text(json.dumps(doc))
    (tmp_path / "other.yaml").write_text("nodes:\n  - {id: aws:access_key:AKIAOTHERINVENTORY, kind: access_key}\n"
                                         + "".join(f"  - {{id: '{n.id}', kind: {n.kind}}}\n" for n in nodes[250:]))
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - {type: inventory, name: big, path: big.json}\n"
                                          "  - {type: inventory, name: other, path: other.yaml}\n")
    parsed = parse_inventory(json.loads((tmp_path / "big.json").read_text()), "big.json")
    ends = parsed.edge_ends
    assert ends is not None and ends.nodes == 250 and len(ends.extra) > 1  # the other file's ids, undeclared here
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    collect(load_config(str(tmp_path / "revoke.yaml")), store)
    reference = Store(f"sqlite:///{tmp_path / 'r.db'}")
    collect(load_config(str(tmp_path / "revoke.yaml")), reference)
    reference.compile()  # from every stored row
    same_graph(store, reference)
    stale = part_of([*parsed.nodes, Node("x:host:late", NodeKind.HOST)], parsed.edges, ends)
    looked_up = part_of([*parsed.nodes, Node("x:host:late", NodeKind.HOST)], parsed.edges)
    assert stale.extra == looked_up.extra and (stale.src == looked_up.src).all() and (stale.dst == looked_up.dst).all()
    store.close()
    reference.close()
