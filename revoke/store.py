"""Persistence: connector snapshots, the compiled graph (as BLOBs) and, via journal.py, incidents.

SQLite by default (`sqlite:///path`). One connector snapshot is replaced in one transaction, so
a failed collection leaves the previous snapshot intact. The store file is created 0600: it holds
no secret values, but it maps where every credential lives.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from revoke.connector_results import EdgeEnds
from revoke.errors import StoreError
from revoke.graph import CompiledGraph
from revoke.model import Edge, Node
from revoke.store_compiled import Fresh, compile_store, load_compiled, save_compiled
from revoke.store_schema import SCHEMA_VERSION, SQLITE_SCHEMA, upgrade, write_transaction

if TYPE_CHECKING:
    from revoke.store_postgres import PostgresBackend

DEFAULT_URL = "sqlite:///./.revoke/revoke.db"
SCHEMA = SQLITE_SCHEMA
POSTGRES_PREFIX = "postgresql://"


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_PREFIX)


def store_exists(url: str) -> bool:
    """Whether the store a URL names exists already (a Postgres database is created by its admin,
    never by revoke: it exists, or opening it fails)."""
    return True if is_postgres(url) else parse_url(url).exists()


def parse_url(url: str) -> Path:
    """The store file a URL names. A URL that cannot keep anything is refused before anything
    runs: an in-memory database (`:memory:`, `mode=memory`) would let `collect` or `run --execute`
    succeed and lose the graph and the journal when the command ends."""
    if not url.startswith("sqlite:///"):
        shown = url.split("@", 1)[-1] if "@" in url else url  # never echo a password
        raise StoreError(f"unsupported store URL {shown!r}; expected sqlite:///PATH or postgresql://...")
    raw = url[len("sqlite:///") :]
    if not raw.strip():
        raise StoreError("store URL names no file; expected sqlite:///PATH")
    if raw.strip() == ":memory:" or raw.startswith("file:") or "?" in raw or "mode=memory" in raw:
        raise StoreError("store URL cannot persist (an in-memory or URI database loses everything when the "
                         "command ends); give a file path: sqlite:///PATH")
    path = Path(raw)
    if path.exists() and not path.is_file():
        raise StoreError(f"store {path} is not a regular file")
    return path


def _refuse_links(path: Path) -> None:
    """A store is never opened or created through a symbolic link: not the file, not SQLite's
    `-wal`/`-shm` beside it, and, for a new store, not the folder it is created in (a link planted
    in a shared workspace would have revoke write, or chmod, whatever it points at)."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.is_symlink():
            raise StoreError(f"store {p} is a symbolic link; revoke never opens a store through one "
                             "(pass --store with the real path)")
    if not path.exists() and path.parent.is_symlink():
        raise StoreError(f"the store's folder {path.parent} is a symbolic link; revoke never creates a store "
                         "through one (pass --store with the real path)")


def _create_file(path: Path) -> None:
    """The missing folders (0700) and an empty store file (0600), each created here or refused:
    `O_EXCL | O_NOFOLLOW` so a link that appears meanwhile is never followed."""
    try:
        missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
        for folder in reversed(missing):
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:  # made by a concurrent run: fine if it is a real folder
                if folder.is_symlink() or not folder.is_dir():
                    raise
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o600))
        except FileExistsError:
            if path.is_symlink():
                raise
    except OSError as exc:
        raise StoreError(f"cannot create store {path}: {exc.strerror}") from exc


@dataclass
class SnapshotInfo:
    name: str
    type: str
    taken_at: str
    nodes: int
    edges: int
    meta: dict[str, Any]
    findings: list[dict[str, Any]]
    last_error: str | None


_ROW_OPTIONS = orjson.OPT_NON_STR_KEYS


def row_text(value: dict[str, Any]) -> str:
    """One stored row's JSON: compact (orjson, no spaces), `str()` for what JSON has no type for.
    A value orjson refuses (an integer beyond 64 bits) takes the standard encoder."""
    try:
        return orjson.dumps(value, default=str, option=_ROW_OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, default=str, separators=(",", ":"))


def edge_text(edge: Edge) -> str:
    """`row_text(edge.to_dict())`, without the intermediate mapping for the common plain edge."""
    if edge.since is None and edge.until is None and not edge.attrs:
        return orjson.dumps({"from": edge.src, "to": edge.dst, "rel": edge.rel}).decode()
    return row_text(edge.to_dict())


# the indexes on snapshot rows (as in SQLITE_SCHEMA), rebuilt after a bulk load
SNAPSHOT_INDEXES = ("nodes_id ON nodes (id)", "nodes_snapshot ON nodes (snapshot)", "edges_snapshot ON edges (snapshot)")
BULK_ROWS = 100_000
BULK_CACHE_KIB = -65536  # SQLite's negative cache_size is in KiB: 64 MiB while a snapshot is written


class Store:
    def __init__(self, url: str = DEFAULT_URL, *, create: bool = True) -> None:
        self.url = url
        self.pg: PostgresBackend | None = None
        # snapshot -> the `taken_at` this Store wrote it with: its compiled part is kept under it
        self.written: dict[str, str] = {}
        if is_postgres(url):
            from revoke.store_postgres import PostgresBackend, redact

            self.where = redact(url)
            self.pg = PostgresBackend(url)
            self.db: Any = self.pg.db
            return
        self.path = parse_url(url)
        self.where = str(self.path)
        if self.path.exists() and self.path.is_file() and self.path.stat().st_size == 0:
            # an empty file where a store should be: truncated or damaged, never silently re-initialised
            raise StoreError(f"store {self.path} is an empty file (truncated?); restore it from a backup or "
                             "remove it to start a new store")
        _refuse_links(self.path)
        if not self.path.exists():
            if not create:
                raise StoreError(f"no store at {self.path}; run `revoke collect` first (or pass --store)")
            _create_file(self.path)
        self._lock = threading.RLock()
        try:
            self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                with self.transaction() as db:  # re-read: another process may have upgraded it meanwhile
                    found = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]
                    if found != str(SCHEMA_VERSION):
                        upgrade(db, found, "sqlite", str(self.path))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {self.path} is unreadable or corrupt ({exc}); it was not modified") from exc
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists() and not p.is_symlink():  # chmod follows links
                os.chmod(p, 0o600)

    def close(self) -> None:
        if self.pg is not None:
            self.pg.close()
        else:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        if self.pg is not None:
            with self.pg.transaction() as db:
                yield db
            return
        with write_transaction(self._lock, self.db, ("BEGIN IMMEDIATE",), str(self.path)) as db:
            yield db

    # -- snapshots -------------------------------------------------------------------------------
    def replace_snapshot(
        self, name: str, type_: str, nodes: list[Node], edges: list[Edge], meta: dict[str, Any], findings: list[dict[str, Any]]
    ) -> None:
        """Swap one connector's snapshot in a single transaction."""
        now = datetime.now(UTC).isoformat()
        with self.transaction() as db:
            db.execute("DELETE FROM nodes WHERE snapshot=?", (name,))
            db.execute("DELETE FROM edges WHERE snapshot=?", (name,))
            db.execute("DELETE FROM parts WHERE snapshot=?", (name,))  # made of the rows replaced
            self.written[name] = now
            node_rows = ((name, n.id, row_text(n.to_dict())) for n in nodes)
            edge_rows = ((name, edge_text(e)) for e in edges)
            snapshot = (name, type_, now, len(nodes), len(edges), json.dumps(meta, default=str), json.dumps(findings))
            if self.pg is not None:
                self.pg.bulk_insert(db, "nodes", ("snapshot", "id", "data"), node_rows)
                self.pg.bulk_insert(db, "edges", ("snapshot", "data"), edge_rows)
                self.pg.upsert_snapshot(db, snapshot)
                return
            # a bulk load into (nearly) empty tables: the indexes are dropped and built again
            # after the rows, in this same transaction (a crash or error rolls the DROP back with
            # the rows; the committed schema is the same). Sorting once beats updating per row.
            rebuild = len(nodes) + len(edges) >= BULK_ROWS and \
                db.execute("SELECT count(*) FROM edges").fetchone()[0] < len(edges)
            db.execute(f"PRAGMA cache_size={BULK_CACHE_KIB}")  # this connection only, reset below
            try:
                if rebuild:
                    for index in SNAPSHOT_INDEXES:
                        db.execute(f"DROP INDEX IF EXISTS {index.split()[0]}")
                db.executemany("INSERT INTO nodes VALUES (?,?,?)", node_rows)
                db.executemany("INSERT INTO edges VALUES (?,?)", edge_rows)
                if rebuild:
                    for index in SNAPSHOT_INDEXES:
                        db.execute(f"CREATE INDEX IF NOT EXISTS {index}")
            finally:
                db.execute("PRAGMA cache_size=-2000")
            db.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?,?,?,?,NULL,NULL)", snapshot)

    def recorded_deaths(self, ids: list[str]) -> dict[str, str]:
        """`died_at` already recorded for these nodes by an earlier collection (any snapshot)."""
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            q = ",".join("?" * len(chunk))
            for nid, data in self.db.execute(
                    f"SELECT id, data FROM nodes WHERE id IN ({q}) AND data LIKE '%\"died_at\"%'", chunk):
                died = (json.loads(data).get("attrs") or {}).get("died_at")
                if died and (nid not in out or str(died) < out[nid]):
                    out[nid] = str(died)
        return out

    def last_known(self, node_id: str, *, snapshot: str) -> Node | None:
        """The last record of a node that is no longer collected: from another snapshot than the one
        asking (or its own tombstone), else a node an incident's journal names (a key revoke itself
        deleted); None if it never existed here."""
        for snap, data in self.db.execute("SELECT snapshot, data FROM nodes WHERE id=? ORDER BY rowid DESC", (node_id,)):
            node = Node.from_dict(json.loads(data))
            if snap != snapshot or node.attrs.get("tombstone"):
                return node
        named = self.db.execute("SELECT 1 FROM journal WHERE node=? LIMIT 1", (node_id,)).fetchone() or \
            self.db.execute("SELECT 1 FROM journal WHERE instr(data, ?) > 0 LIMIT 1", (json.dumps(node_id),)).fetchone()
        if named is None:
            return None
        from revoke.graph import stub_node

        return stub_node(node_id)

    def record_failure(self, name: str, type_: str, error: str) -> None:
        now = datetime.now(UTC).isoformat()
        with self.transaction() as db:
            cur = db.execute("UPDATE snapshots SET last_error=?, last_error_at=? WHERE name=?", (error, now, name))
            if cur.rowcount == 0:
                db.execute(
                    "INSERT INTO snapshots VALUES (?,?,?,0,0,'{}','[]',?,?)", (name, type_, "never", error, now)
                )

    def snapshots(self) -> list[SnapshotInfo]:
        rows = self.db.execute(
            "SELECT name, type, taken_at, nodes, edges, meta, findings, last_error FROM snapshots ORDER BY name"
        ).fetchall()
        return [SnapshotInfo(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), r[7]) for r in rows]

    def load_nodes_edges(self) -> tuple[list[Node], list[Edge]]:
        # inventory first, so provider connectors' richer records win on merge
        order = "CASE WHEN s.type='inventory' THEN 0 ELSE 1 END, s.name"
        nodes = [
            Node.from_dict(json.loads(r[0]))
            for r in self.db.execute(
                f"SELECT n.data FROM nodes n JOIN snapshots s ON s.name=n.snapshot ORDER BY {order}, n.rowid"
            )
        ]
        edges = [Edge.from_dict(json.loads(r[0])) for r in self.db.execute("SELECT data FROM edges ORDER BY rowid")]
        return nodes, edges

    def load_nodes(self, ids: list[str]) -> dict[str, Node]:
        """Full records of a few nodes, merged across snapshots."""
        from revoke.graph import merge_nodes, stub_node

        out: dict[str, Node] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            q = ",".join("?" * len(chunk))
            for (data,) in self.db.execute(
                f"SELECT n.data FROM nodes n JOIN snapshots s ON s.name=n.snapshot WHERE n.id IN ({q}) "
                "ORDER BY CASE WHEN s.type='inventory' THEN 0 ELSE 1 END, s.name",
                chunk,
            ):
                node = Node.from_dict(json.loads(data))
                out[node.id] = merge_nodes(out[node.id], node) if node.id in out else node
        for nid in ids:
            if nid not in out:
                out[nid] = stub_node(nid)
        return out

    # -- compiled graph (revoke/store_compiled.py) ---------------------------------------------------
    def compile(self, fresh: Fresh | None = None, ends: dict[str, EdgeEnds] | None = None) -> CompiledGraph:
        """Merge every snapshot, compile the graph and save it: `fresh` holds the snapshots just
        written, taken from memory (`ends`: their edges' ends as their connectors numbered them);
        the others are merged from their compiled parts. None: every snapshot's rows are read
        (the reference a compile from parts equals)."""
        return compile_store(self, fresh, ends)

    def save_compiled(self, graph: CompiledGraph, *, unresolved: list[str] | None = None) -> None:
        save_compiled(self, graph, unresolved=unresolved)

    def load_compiled(self) -> CompiledGraph:
        return load_compiled(self)
