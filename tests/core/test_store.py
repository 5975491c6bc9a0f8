"""The SQLite store: compiled-graph round trip, atomic snapshot swaps, file modes, corrupt files."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from core_testlib import W, build, edge, file_state, node, paths, radius, t

from revoke.errors import StoreError
from revoke.model import Node, NodeKind
from revoke.store import Store


def _graph():
    nodes = [
        node("host:h"),
        Node("aws:access_key:A", NodeKind.ACCESS_KEY, "aws", status="inactive"),
        Node("vault:token:t", NodeKind.TOKEN, "vault", created=t("2026-01-01")),
        node("aws:user:u"),
    ]
    edges = [
        edge("host:h", "stores", "aws:access_key:A", since="2026-03-31T09:00Z", until="2026-04-01T00:00Z"),
        edge("host:h", "stores", "vault:token:t"),
        edge("aws:access_key:A", "authenticates_as", "aws:user:u"),
        edge("vault:token:t", "can_read", "aws:user:u"),
    ]
    return build(nodes, edges)


def test_compiled_graph_round_trip(tmp_path: Path) -> None:
    g = _graph()
    url = f"sqlite:///{tmp_path}/s.db"
    Store(url).save_compiled(g, unresolved=["fp:sha256:00"])
    h = Store(url, create=False).load_compiled()
    assert h.ids == g.ids and h.providers == g.providers == ["", "aws", "vault"]
    for name in ("kind", "live", "created", "provider", "indptr", "indices", "rel", "since", "until"):
        a, b = getattr(g, name), getattr(h, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    assert h.indices.dtype == np.int32 and h.indptr.dtype == np.int32  # what csgraph wants, no conversion per call
    for window in (None, W):
        assert radius(h, ["host:h"], window=window).to_json() == radius(g, ["host:h"], window=window).to_json()
    assert paths(radius(h, ["host:h"], window=W)) == {
        "host:h": ("host:h",), "aws:access_key:A": ("host:h", "aws:access_key:A"),
        "vault:token:t": ("host:h", "vault:token:t"), "aws:user:u": ("host:h", "aws:access_key:A", "aws:user:u")}


def test_store_file_and_directory_are_private(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/new/dir/s.db")
    store.replace_snapshot("inventory", "inventory", [node("host:h")], [], {}, [])
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700
    for p in (tmp_path / "new" / "dir").iterdir():  # the WAL and shared-memory files too
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
    store.close()


def test_failed_snapshot_swap_keeps_the_previous_snapshot(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    store.replace_snapshot("aws", "aws", [node("aws:user:u"), node("aws:access_key:A")],
                           [edge("aws:access_key:A", "authenticates_as", "aws:user:u")], {"account": "1"}, [])
    before = store.snapshots()[0]
    with pytest.raises(AttributeError):
        # fails half-way through inserting the new nodes
        store.replace_snapshot("aws", "aws", [node("aws:user:v"), "not a node"], [], {}, [])  # type: ignore[list-item]
    nodes, edges = store.load_nodes_edges()
    assert {n.id for n in nodes} == {"aws:user:u", "aws:access_key:A"}
    assert {e.key for e in edges} == {("aws:access_key:A", "authenticates_as", "aws:user:u")}
    store.record_failure("aws", "aws", "aws: list_users failed: throttled")
    after = store.snapshots()[0]
    assert (after.taken_at, after.nodes, after.meta, after.last_error) == (
        before.taken_at, 2, {"account": "1"}, "aws: list_users failed: throttled")
    # a connector that never succeeded is recorded as such
    store.record_failure("gcp", "gcp", "boom")
    assert [(s.name, s.taken_at, s.nodes) for s in store.snapshots()] == [("aws", before.taken_at, 2), ("gcp", "never", 0)]


def test_snapshots_merge_on_compile(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    store.replace_snapshot("inventory", "inventory", [node("host:h"), Node("aws:access_key:A", NodeKind.ACCESS_KEY,
                           owner="ci")], [edge("host:h", "stores", "aws:access_key:A")], {}, [])
    store.replace_snapshot("aws", "aws", [Node("aws:access_key:A", NodeKind.ACCESS_KEY, "aws", status="inactive")],
                           [edge("aws:access_key:A", "authenticates_as", "aws:user:not-collected")], {}, [])
    g = store.compile()
    assert g.ids == ["aws:access_key:A", "aws:user:not-collected", "host:h"]
    assert not g.live[g.lookup("aws:access_key:A")]
    assert Store(store.url, create=False).load_nodes(["aws:access_key:A"])["aws:access_key:A"].owner == "ci"


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        Store(f"sqlite:///{tmp_path}/absent/s.db", create=False)
    assert not (tmp_path / "absent").exists()
    with pytest.raises(StoreError, match="unsupported store URL"):
        Store("postgres://x/y")


def test_empty_store_has_no_graph(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="holds no graph yet"):
        Store(f"sqlite:///{tmp_path}/s.db").load_compiled()


def test_garbage_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"\x00garbage, not a database\xff" * 200)
    before = file_state(path)
    with pytest.raises(StoreError, match="unreadable or corrupt"):
        Store(f"sqlite:///{path}", create=False)
    assert file_state(path) == before


def test_corrupt_compiled_blob_is_a_store_error(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    store.save_compiled(_graph())
    store.db.execute("UPDATE compiled SET value=? WHERE key='indices'", (b"\x93NUMPY garbage",))
    with pytest.raises(StoreError, match="compiled graph is corrupt"):
        store.load_compiled()
