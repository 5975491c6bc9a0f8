"""The store's contract on SQLite and on Postgres alike: the compiled graph's round trip, atomic
snapshot swaps, the merge on compile (from memory or read back: the same graph), the journal's
hash chain under concurrent writers."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import numpy as np
import pytest

from revoke.errors import StoreError
from revoke.journal import Journal
from revoke.model import Node, NodeKind
from revoke.store import Store
from tests.core.core_testlib import W, build, edge, node, paths, radius, t

COLUMNS = ("kind", "live", "created", "provider", "indptr", "indices", "rel", "since", "until", "died", "status")


def _graph():
    nodes = [node("host:h"), Node("aws:access_key:A", NodeKind.ACCESS_KEY, "aws", status="inactive"),
             Node("vault:token:t", NodeKind.TOKEN, "vault", created=t("2026-01-01")), node("aws:user:u")]
    edges = [edge("host:h", "stores", "aws:access_key:A", since="2026-03-31T09:00Z", until="2026-04-01T00:00Z"),
             edge("host:h", "stores", "vault:token:t"), edge("aws:access_key:A", "authenticates_as", "aws:user:u"),
             edge("vault:token:t", "can_read", "aws:user:u")]
    return build(nodes, edges)


def _same(g, h) -> None:
    assert h.ids == g.ids and h.providers == g.providers and h.statuses == g.statuses
    for name in COLUMNS:
        a, b = getattr(g, name), getattr(h, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name


def test_compiled_graph_round_trip(open_store: Callable[..., Store]) -> None:
    g = _graph()
    open_store().save_compiled(g, unresolved=["fp:sha256:00"])
    h = open_store(create=False).load_compiled()
    _same(g, h)
    assert h.indices.dtype == np.int32 and h.indptr.dtype == np.int32
    assert paths(radius(h, ["host:h"], window=W)) == paths(radius(g, ["host:h"], window=W))


def test_failed_snapshot_swap_keeps_the_previous_snapshot(open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.replace_snapshot("aws", "aws", [node("aws:user:u"), node("aws:access_key:A")],
                           [edge("aws:access_key:A", "authenticates_as", "aws:user:u")], {"account": "1"}, [])
    before = store.snapshots()[0]
    with pytest.raises(AttributeError):
        store.replace_snapshot("aws", "aws", [node("aws:user:v"), "not a node"], [], {}, [])  # type: ignore[list-item]
    nodes, edges = store.load_nodes_edges()
    assert {n.id for n in nodes} == {"aws:user:u", "aws:access_key:A"}
    assert {e.key for e in edges} == {("aws:access_key:A", "authenticates_as", "aws:user:u")}
    store.record_failure("aws", "aws", "throttled")
    store.record_failure("gcp", "gcp", "boom")
    assert [(s.name, s.taken_at, s.nodes, s.last_error) for s in store.snapshots()] == [
        ("aws", before.taken_at, 2, "throttled"), ("gcp", "never", 0, "boom")]
    # a later successful swap clears the error
    store.replace_snapshot("aws", "aws", [node("aws:user:u")], [], {}, [])
    assert store.snapshots()[0].last_error is None


def test_compile_from_memory_equals_compile_from_the_store(open_store: Callable[..., Store]) -> None:
    store = open_store()
    inv_nodes = [node("host:h"), Node("aws:access_key:A", NodeKind.ACCESS_KEY, owner="ci")]
    inv_edges = [edge("host:h", "stores", "aws:access_key:A"), edge("host:h", "stores", "vault:token:t")]
    aws_nodes = [Node("aws:access_key:A", NodeKind.ACCESS_KEY, "aws", status="inactive",
                      attrs={"died_at": "2026-01-02T00:00:00+00:00"})]
    aws_edges = [edge("aws:access_key:A", "authenticates_as", "aws:user:not-collected")]
    store.replace_snapshot("vault", "vault", [Node("vault:token:t", NodeKind.TOKEN, status="")],
                           [edge("vault:token:t", "can_read", "aws:user:not-collected")], {}, [])
    store.replace_snapshot("inventory", "inventory", inv_nodes, inv_edges, {}, [])
    store.replace_snapshot("aws", "aws", aws_nodes, aws_edges, {}, [])
    from_memory = store.compile({"inventory": (inv_nodes, inv_edges), "aws": (aws_nodes, aws_edges)})
    read_back = open_store(create=False).compile()
    _same(read_back, from_memory)
    assert from_memory.ids == ["aws:access_key:A", "aws:user:not-collected", "host:h", "vault:token:t"]
    assert not from_memory.live[from_memory.lookup("aws:access_key:A")]
    assert from_memory.providers == ["", "aws", "vault"]  # the provider comes from the id, as a stored row gives it
    assert open_store(create=False).load_nodes(["aws:access_key:A"])["aws:access_key:A"].owner == "ci"
    _same(from_memory, open_store(create=False).load_compiled())


def test_empty_store_has_no_graph(open_store: Callable[..., Store]) -> None:
    with pytest.raises(StoreError, match="holds no graph yet"):
        open_store().load_compiled()


def test_corrupt_compiled_blob_is_a_store_error(open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.save_compiled(_graph())
    store.db.execute("UPDATE compiled SET value=? WHERE key='indices'", (b"\x93NUMPY garbage",))
    with pytest.raises(StoreError, match="compiled graph is corrupt"):
        store.load_compiled()


def test_concurrent_journal_writers_cannot_fork_the_chain(open_store: Callable[..., Store]) -> None:
    """Two stores (two connections, as two machines would have) append to one incident at once:
    one chain, seq 1..N without gaps or twins, every hash checks."""
    first = Journal(open_store(), "i1")
    first.declare("pb.yaml", "pb", "sha256:00", ["host:h"], {})
    writers = [Journal(open_store(create=False), "i1") for _ in range(4)]
    errors: list[BaseException] = []

    def write(j: Journal, k: int) -> None:
        try:
            for n in range(15):
                j.append("progress", node=f"host:h{k}", data={"event": "probe", "n": n})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(j, k)) for k, j in enumerate(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    records = Journal(open_store(create=False), "i1").records()
    assert [r.seq for r in records] == list(range(1, 2 + 4 * 15))
    assert all(r.prev == p.hash for p, r in itertools.pairwise(records))
    intact, message, _ = Journal(open_store(create=False), "i1").check_chain()
    assert intact, message


def test_edited_journal_record_breaks_the_chain(open_store: Callable[..., Store]) -> None:
    j = Journal(open_store(), "i1")
    j.declare("pb.yaml", "pb", "sha256:00", ["host:h"], {})
    j.append("progress", node="host:h", data={"event": "probe", "ok": True})
    j.store.db.execute("UPDATE journal SET data = replace(data, 'true', 'false') WHERE incident='i1' AND seq=2")
    intact, message, _ = Journal(open_store(create=False), "i1").check_chain()
    assert not intact and "2" in message


def test_a_postgres_url_password_is_never_shown(revoke_cli, tmp_path) -> None:
    url = f"postgresql://responder:s3cret-pw@/nowhere?host={tmp_path}/no-socket-here"
    with pytest.raises(StoreError) as err:
        Store(url)
    assert "s3cret-pw" not in str(err.value) and "***" in str(err.value)
    res = revoke_cli("blast-radius", "host:h", cwd=tmp_path, store=url, in_process=True)
    assert res.returncode == 2 and "s3cret-pw" not in res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_readers_do_not_wait_for_a_writer(open_store: Callable[..., Store]) -> None:
    """A long write (a collection's snapshot swap) holds the store's writer lock; another process
    opening the store to read (`blast-radius`, `verify`'s walk) neither waits for it nor sees it
    half-done."""
    writer, g = open_store(), _graph()
    writer.save_compiled(g)
    opened: list[Store] = []
    with writer.transaction() as db:
        db.execute("DELETE FROM compiled")
        reader = threading.Thread(target=lambda: opened.append(open_store(create=False)))
        reader.start()
        reader.join(timeout=10)
        assert opened, "opening the store waited for the writer"
        _same(g, opened[0].load_compiled())


def test_commands_on_an_empty_store_say_so(revoke_cli, open_store: Callable[..., Store], store_url: str,
                                            tmp_path) -> None:
    open_store().close()
    (tmp_path / "revoke.yaml").write_text("connectors: []\n")
    for argv in (["export", "--format", "json"], ["sweep"], ["blast-radius", "host:h"]):
        res = revoke_cli(*argv, cwd=tmp_path, store=store_url, in_process=True)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and "holds no graph yet" in lines[0], (argv, res.stderr)
