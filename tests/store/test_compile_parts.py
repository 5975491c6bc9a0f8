"""A compile that takes unchanged snapshots from their compiled parts gives, array for array, the
graph a compile of every stored row gives: random estates of several snapshots (overlapping node
ids, stubs with kind hints, duplicate edges, timed edges, dead and expired nodes), some snapshots
re-written and the rest kept, on SQLite and on Postgres. A store written before parts existed
compiles right too, and an unusable part is never used."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from revoke.graph import CompiledGraph
from revoke.model import Edge, Node, NodeKind, Relation
from revoke.store import Store

T0 = datetime(2025, 1, 1, tzinfo=UTC)
FUTURE = datetime(2999, 1, 1, tzinfo=UTC)
# (name, type): node merge order puts the inventories first, then by name
SNAPSHOTS = [("hosts", "inventory"), ("keys", "inventory"), ("aws", "aws"), ("vault", "vault")]
KINDS = [NodeKind.HOST, NodeKind.ROLE, NodeKind.USER, NodeKind.ACCESS_KEY, NodeKind.TOKEN, NodeKind.SECRET]
RELS = [Relation.STORES, Relation.CAN_READ, Relation.AUTHENTICATES_AS, Relation.TRUSTS]
ARRAYS = ("kind", "live", "created", "provider", "status", "indptr", "indices", "rel", "since", "until")


def _node(rnd: random.Random, nid: str) -> Node:
    kind = rnd.choice(KINDS)
    node = Node(nid, kind, rnd.choice(["", "aws", "vault"]), status=rnd.choice(["active", "active", "inactive", ""]))
    if rnd.random() < 0.3:
        node.created = T0 + timedelta(days=rnd.randint(0, 99))
    roll = rnd.random()
    if roll < 0.15:
        node.expires = T0 + timedelta(days=rnd.randint(0, 99))  # past: dead now
    elif roll < 0.3:
        node.expires = FUTURE
    if rnd.random() < 0.1:
        node.attrs["died_at"] = (T0 + timedelta(hours=rnd.randint(1, 99))).isoformat()
    if rnd.random() < 0.05:
        node.attrs["died_at"] = "not a time"
    if rnd.random() < 0.05:
        node.attrs["stub"] = True
    if rnd.random() < 0.1:
        node.labels["team"] = rnd.choice(["a", "b"])
    return node


def _snapshot(seed: int, name: str, pool: list[str], size: int) -> tuple[list[Node], list[Edge]]:
    """Nodes from a pool shared with the other snapshots (so ids overlap, and one id may repeat
    within the snapshot), edges to them and to ids nobody declares (stubs)."""
    rnd = random.Random(f"{seed}-{name}")
    nodes = [_node(rnd, rnd.choice(pool)) for _ in range(size)]
    ends = [n.id for n in nodes] + [f"x:stub:{name}-{i}" for i in range(size // 10)] + \
        [f"x:shared-stub:{i}" for i in range(3)]
    edges = []
    for _ in range(size * 3):
        since = until = None
        if rnd.random() < 0.2:
            since = T0 + timedelta(days=rnd.randint(0, 30))
            until = since + timedelta(days=rnd.randint(1, 30)) if rnd.random() < 0.5 else None
        edge = Edge(rnd.choice(ends), rnd.choice(ends), rnd.choice(RELS), since, until)
        if rnd.random() < 0.1:
            edge.attrs["src_kind" if rnd.random() < 0.5 else "dst_kind"] = rnd.choice(["token", "host", "nonsense"])
        edges.append(edge)
        if rnd.random() < 0.1:  # the same edge again, timed otherwise
            edges.append(Edge(edge.src, edge.dst, edge.rel, since and since - timedelta(days=1), None if until else T0))
    return nodes, edges


def _write(store: Store, seed: int, names: list[str], pool: list[str]) -> dict[str, tuple[list[Node], list[Edge]]]:
    """Write these snapshots (new content from `seed`) and return them as fresh: a second copy,
    since a compile merges fresh records in place."""
    types = dict(SNAPSHOTS)
    fresh = {}
    for name in names:
        size = 40 if name != "hosts" else 120
        nodes, edges = _snapshot(seed, name, pool, size)
        store.replace_snapshot(name, types[name], nodes, edges, {}, [])
        fresh[name] = _snapshot(seed, name, pool, size)
    return fresh


def _same_graph(got: CompiledGraph, want: CompiledGraph, window: tuple[float, float]) -> None:
    assert got.ids == want.ids
    assert got.providers == want.providers and got.statuses == want.statuses
    for name in ARRAYS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    # a death no one recorded is "now": the two compiles ran at two moments of `window`
    now = (got.died >= window[0]) & (got.died <= window[1])
    assert np.array_equal(now, (want.died >= window[0]) & (want.died <= window[1]))
    assert np.array_equal(got.died[~now], want.died[~now])


def _unresolved(store: Store) -> bytes:
    return bytes(store.db.execute("SELECT value FROM compiled WHERE key='unresolved'").fetchone()[0])


def _edges_not_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count stored edge rows turned into Edge objects: a kept snapshot's part makes none."""
    read: list[str] = []
    original = Edge.from_dict.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Edge], data: dict) -> Edge:
        read.append(data["from"])
        return original(cls, data)

    monkeypatch.setattr(Edge, "from_dict", classmethod(counted))
    return read


@pytest.mark.parametrize("seed", range(6))
def test_kept_snapshots_compile_from_their_parts_to_the_full_compile(
        open_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rnd = random.Random(seed)
    pool = [f"{rnd.choice(['aws:access_key', 'vault:token', 'host'])}:n{i}" for i in range(150)]
    store = open_store()
    names = [name for name, _ in SNAPSHOTS]
    rnd.shuffle(names)  # the order they are written in is the edges' order
    t0 = time.time()
    first = store.compile(_write(store, seed, names, pool))
    _same_graph(first, store.compile(), (t0, time.time()))
    # some snapshots collected again (new content, or the same), the others kept as they are
    again = rnd.sample(names, rnd.randint(1, 3))
    fresh = _write(store, seed + (100 if rnd.random() < 0.7 else 0), again, pool)
    read = _edges_not_read(monkeypatch)
    t0 = time.time()
    got = store.compile(fresh)
    assert read == [], "a kept snapshot's edges were read row by row"
    unresolved = _unresolved(store)
    monkeypatch.undo()
    want = store.compile()
    _same_graph(got, want, (t0, time.time()))
    assert unresolved == _unresolved(store)
    _same_graph(store.load_compiled(), want, (t0, time.time()))


def test_fingerprint_references_take_the_full_path(open_store: Callable[..., Store]) -> None:
    store = open_store()
    cert = Node("x509:cert:c1", NodeKind.CERTIFICATE, fingerprint="ab12")
    store.replace_snapshot("certs", "x509", [cert], [], {}, [])
    store.compile({"certs": ([Node("x509:cert:c1", NodeKind.CERTIFICATE, fingerprint="ab12")], [])})
    edges = [Edge("host:h", "fp:ab12", Relation.STORES), Edge("host:h", "fp:ffff", Relation.STORES)]
    store.replace_snapshot("hosts", "inventory", [Node("host:h", NodeKind.HOST)], edges, {}, [])
    got = store.compile({"hosts": ([Node("host:h", NodeKind.HOST)],
                                   [Edge("host:h", "fp:ab12", Relation.STORES),
                                    Edge("host:h", "fp:ffff", Relation.STORES)])})
    unresolved = _unresolved(store)
    assert b"fp:ffff" in unresolved
    t0 = time.time()
    _same_graph(got, store.compile(), (t0 - 60, time.time()))
    assert unresolved == _unresolved(store)


def _old_schema(store: Store) -> None:
    """What a revoke from before parts left: no `parts` table, schema 1."""
    with store.transaction() as db:
        db.execute("DROP TABLE parts")
        db.execute("UPDATE meta SET value='1' WHERE key='schema'")


def test_a_store_from_before_parts_compiles_right_and_gains_them(open_store: Callable[..., Store]) -> None:
    pool = [f"vault:token:n{i}" for i in range(100)] + [f"host:n{i}" for i in range(50)]
    store = open_store()
    store.compile(_write(store, 1, ["hosts", "keys", "aws", "vault"], pool))
    _old_schema(store)
    store.close()
    store = open_store(create=False)  # upgraded on open
    assert store.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "2"
    assert store.db.execute("SELECT count(*) FROM parts").fetchone()[0] == 0
    t0 = time.time()
    got = store.compile(_write(store, 2, ["keys"], pool))
    _same_graph(got, store.compile(), (t0, time.time()))
    kept = {name for (name,) in store.db.execute("SELECT snapshot FROM parts")}
    assert kept == {"hosts", "keys", "aws", "vault"}  # made from the rows once, kept for the next compile


def test_a_newer_schema_is_refused(open_store: Callable[..., Store]) -> None:
    from revoke.errors import StoreError

    store = open_store()
    with store.transaction() as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    store.close()
    with pytest.raises(StoreError, match="has schema 99"):
        open_store(create=False)


def test_a_part_that_is_not_of_the_current_rows_is_never_used(open_store: Callable[..., Store]) -> None:
    pool = [f"aws:access_key:n{i}" for i in range(80)] + [f"host:n{i}" for i in range(40)]
    store = open_store()
    store.compile(_write(store, 3, ["hosts", "keys", "aws"], pool))
    old = store.db.execute("SELECT key, taken_at, data FROM parts WHERE snapshot='keys'").fetchall()
    # an older revoke swapped `keys` (as many nodes and edges, each edge turned around) and left
    # its part behind; `aws`'s part is damaged
    nodes, edges = _snapshot(3, "keys", pool, 40)
    turned = [Edge(e.dst, e.src, e.rel, e.since, e.until, e.attrs) for e in edges]
    store.replace_snapshot("keys", "inventory", nodes, turned, {}, [])
    with store.transaction() as db:
        for key, taken_at, data in old:
            db.execute("INSERT INTO parts VALUES ('keys', ?, ?, ?)", (key, taken_at, bytes(data)))
        db.execute("UPDATE parts SET data=? WHERE snapshot='aws' AND key='src'", (b"not a column",))
    t0 = time.time()
    got = store.compile(_write(store, 5, ["hosts"], pool))
    _same_graph(got, store.compile(), (t0, time.time()))
