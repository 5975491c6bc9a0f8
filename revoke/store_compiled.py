"""The compiled graph in the store: compiling it from the snapshots, and keeping it as BLOBs.

`compile` merges every snapshot. The snapshots a collection just wrote (`fresh`) come from memory;
the others from their compiled part (revoke/graph_parts.py), kept beside the snapshot's rows
(table `parts`) so an unchanged snapshot is merged from columns, not re-read row by row. A part is
used only when it was made of the snapshot's current rows (same `taken_at`, same counts; a
snapshot's swap deletes its part in the same transaction); otherwise, in a store written before
parts existed for instance, the part is made again from the rows, and kept for the next time.
Fingerprint references (`fp:`, rare) take the full path through `resolve`.
"""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

from revoke.connector_results import EdgeEnds
from revoke.errors import StoreError
from revoke.graph import CompiledGraph
from revoke.graph_build import compile_graph
from revoke.graph_parts import Part, compile_parts, decode, encode, part_of
from revoke.model import Edge, Node, provider_of

if TYPE_CHECKING:
    from revoke.store import Store

Fresh = dict[str, tuple[list[Node], list[Edge]]]
# snapshots in node merge order: inventory first, so provider connectors' richer records win
SNAPSHOT_ORDER = "CASE WHEN type='inventory' THEN 0 ELSE 1 END, name"


def as_stored(node: Node) -> Node:
    """A node as a store round trip would give it back (`Node.from_dict(node.to_dict())`) where
    the compiled graph can tell: the provider from the id, `active` for no status, UTC times."""
    if not node.provider:
        node.provider = provider_of(node.id)
    if not node.status:
        node.status = "active"
    for name in ("created", "expires", "last_used"):
        value = getattr(node, name)
        if value is not None and value.tzinfo is None:
            setattr(node, name, value.replace(tzinfo=UTC))
    return node


def _edges_as_stored(edges: list[Edge]) -> None:
    if not any(map(attrgetter("since"), edges)) and not any(map(attrgetter("until"), edges)):
        return  # no edge carries a time (a datetime is always true)
    for e in edges:
        if e.since is not None and e.since.tzinfo is None:
            e.since = e.since.replace(tzinfo=UTC)
        if e.until is not None and e.until.tzinfo is None:
            e.until = e.until.replace(tzinfo=UTC)


def compile_store(store: Store, fresh: Fresh | None = None,
                  ends: dict[str, EdgeEnds] | None = None) -> CompiledGraph:
    """Merge every snapshot, compile the graph and save it. `fresh` holds the snapshots just written
    (name -> nodes, edges, in the order they were written); None reads every snapshot's rows (the
    reference the part path must equal). The merge order is the one the stored rows have: nodes
    by snapshot (inventory first, then by name), edges in the order their snapshots were written."""
    if fresh is None:
        nodes, edges = store.load_nodes_edges()
        graph, unresolved = compile_graph(nodes, edges)
    else:
        graph, unresolved = _compile_parts(store, fresh, ends or {})
    save_compiled(store, graph, unresolved=unresolved)
    return graph


def _compile_parts(store: Store, fresh: Fresh, ends: dict[str, EdgeEnds]) -> tuple[CompiledGraph, list[str]]:
    snaps = store.db.execute(f"SELECT name, taken_at, nodes, edges FROM snapshots ORDER BY {SNAPSHOT_ORDER}").fetchall()
    names: list[str] = []
    parts: list[Part] = []
    for name, taken_at, n_nodes, n_edges in snaps:
        if name in fresh:
            nodes, edges = fresh[name]
            for node in nodes:
                as_stored(node)
            _edges_as_stored(edges)
            part = part_of(nodes, edges, ends.get(name))
            written = store.written.get(name)
            if written is not None:
                _save_part(store, name, written, part)
        elif n_nodes or n_edges:
            part = _stored_part(store, name, taken_at, n_nodes, n_edges)
        else:
            continue
        names.append(name)
        parts.append(part)
    known = set(names)
    for name, (_, edges) in fresh.items():  # edges of a snapshot the table does not list (never written)
        if name not in known and edges:
            _edges_as_stored(edges)
            names.append(name)
            parts.append(part_of([], edges))
    if any(p.fp for p in parts):
        nodes, edges = merge_with_stored(store, fresh)
        return compile_graph(nodes, edges)
    kept = [k for k, (name, part) in enumerate(zip(names, parts, strict=True)) if name not in fresh and part.n_edges]
    first = {k: store.db.execute("SELECT MIN(rowid) FROM edges WHERE snapshot=?", (names[k],)).fetchone()[0]
             for k in kept}
    order = sorted(kept, key=lambda k: (first[k] is None, first[k] or 0))
    order += [names.index(name) for name in fresh if name in names and parts[names.index(name)].n_edges]

    def records(k: int, ids: set[str]) -> list[Node]:
        if names[k] in fresh:
            return [n for n in fresh[names[k]][0] if n.id in ids]
        return _stored_records(store, names[k], sorted(ids))

    return compile_parts(parts, order, records), []


def _stored_records(store: Store, name: str, ids: list[str]) -> list[Node]:
    rows: list[tuple[int, str]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        q = ",".join("?" * len(chunk))
        rows += store.db.execute(f"SELECT rowid, data FROM nodes WHERE snapshot=? AND id IN ({q})", [name, *chunk])
    return [Node.from_dict(json.loads(data)) for _, data in sorted(rows)]


def _stored_part(store: Store, name: str, taken_at: str, n_nodes: int, n_edges: int) -> Part:
    """The snapshot's kept part when it was made of its current rows, else one made from the rows
    (and kept: a store from before parts existed pays the row path once)."""
    rows = store.db.execute("SELECT key, taken_at, data FROM parts WHERE snapshot=?", (name,)).fetchall()
    if rows and all(row[1] == taken_at for row in rows):
        try:
            part: Part | None = decode({key: bytes(data) for key, _, data in rows})
        except (ValueError, KeyError, TypeError):
            part = None  # unreadable: made again from the rows, which are the truth
        if part is not None and len(part.ids) == n_nodes and part.n_edges == n_edges:
            return part
    nodes = [Node.from_dict(json.loads(r[0])) for r in store.db.execute(
        "SELECT data FROM nodes WHERE snapshot=? ORDER BY rowid", (name,))]
    edges = [Edge.from_dict(json.loads(r[0])) for r in store.db.execute(
        "SELECT data FROM edges WHERE snapshot=? ORDER BY rowid", (name,))]
    part = part_of(nodes, edges)
    if len(nodes) == n_nodes and len(edges) == n_edges:
        _save_part(store, name, taken_at, part)
    return part


def _save_part(store: Store, name: str, taken_at: str, part: Part) -> None:
    """Keep a snapshot's part, unless the snapshot was swapped meanwhile (its rows are no longer
    the ones the part was made of)."""
    blobs = encode(part)
    with store.transaction() as db:
        now = db.execute("SELECT taken_at, nodes, edges FROM snapshots WHERE name=?", (name,)).fetchone()
        if now is None or tuple(now) != (taken_at, len(part.ids), part.n_edges):
            return
        db.execute("DELETE FROM parts WHERE snapshot=?", (name,))
        for key, blob in blobs.items():
            db.execute("INSERT INTO parts VALUES (?, ?, ?, ?)", (name, key, taken_at, blob))


def merge_with_stored(store: Store, fresh: Fresh) -> tuple[list[Node], list[Edge]]:
    """Every record, the fresh snapshots' from memory and the others' rows, in merge order."""
    nodes: list[Node] = []
    for (name,) in store.db.execute(f"SELECT name FROM snapshots ORDER BY {SNAPSHOT_ORDER}"):
        if name in fresh:
            nodes.extend(as_stored(n) for n in fresh[name][0])
        else:
            nodes.extend(Node.from_dict(json.loads(r[0])) for r in store.db.execute(
                "SELECT data FROM nodes WHERE snapshot=? ORDER BY rowid", (name,)))
    edges: list[Edge] = []
    stored = [name for name, _ in store.db.execute(
        "SELECT snapshot, MIN(rowid) AS first FROM edges GROUP BY snapshot ORDER BY first") if name not in fresh]
    for name in stored:
        edges.extend(Edge.from_dict(json.loads(r[0])) for r in store.db.execute(
            "SELECT data FROM edges WHERE snapshot=? ORDER BY rowid", (name,)))
    for _, snap_edges in fresh.values():
        _edges_as_stored(snap_edges)
        edges.extend(snap_edges)
    return nodes, edges


# -- the compiled graph as BLOBs ---------------------------------------------------------------------
_TEXT_KEYS = ("ids", "providers", "statuses", "unresolved")


def save_compiled(store: Store, graph: CompiledGraph, *, unresolved: list[str] | None = None) -> None:
    arrays = {
        "kind": graph.kind, "live": graph.live, "created": graph.created, "provider": graph.provider,
        "indptr": graph.indptr, "indices": graph.indices, "rel": graph.rel,
        "since": graph.since, "until": graph.until, "died": graph.died, "status": graph.status,
    }
    with store.transaction() as db:
        db.execute("DELETE FROM compiled")
        db.execute("INSERT INTO compiled VALUES ('ids', ?)", ("\n".join(graph.ids).encode(),))
        db.execute("INSERT INTO compiled VALUES ('providers', ?)", (json.dumps(graph.providers).encode(),))
        db.execute("INSERT INTO compiled VALUES ('statuses', ?)", (json.dumps(graph.statuses).encode(),))
        db.execute("INSERT INTO compiled VALUES ('unresolved', ?)", (json.dumps(unresolved or []).encode(),))
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
            db.execute("INSERT INTO compiled VALUES (?, ?)", (key, buf.getvalue()))


def load_compiled(store: Store) -> CompiledGraph:
    try:
        blobs = dict(store.db.execute("SELECT key, value FROM compiled").fetchall())
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"store {store.where} is unreadable or corrupt ({exc})") from exc
    blobs = {k: bytes(v) for k, v in blobs.items()}
    if "ids" not in blobs:
        raise StoreError(f"store {store.where} holds no graph yet; run `revoke collect` first")
    try:
        arr = {k: np.load(io.BytesIO(v), allow_pickle=False) for k, v in blobs.items() if k not in _TEXT_KEYS}
        text = blobs["ids"].decode()
        ids = text.split("\n") if text else []
        graph = CompiledGraph(
            ids, arr["kind"], arr["live"], arr["created"], arr["indptr"], arr["indices"], arr["rel"],
            arr["since"], arr["until"], json.loads(blobs["providers"]), arr["provider"],
            arr["died"], json.loads(blobs["statuses"]), arr["status"],
        )
    except (KeyError, ValueError, OSError) as exc:
        raise StoreError(f"store {store.where}: compiled graph is corrupt ({exc}); re-run `revoke collect`") from exc
    if graph.indptr.shape[0] != len(ids) + 1 or graph.kind.shape[0] != len(ids):
        raise StoreError(f"store {store.where}: compiled graph is inconsistent; re-run `revoke collect`")
    return graph
