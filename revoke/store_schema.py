"""What both store backends share: the tables, in SQLite's and Postgres's dialects (one schema:
the same tables, columns and column order, so `INSERT INTO t VALUES (...)` means the same on
both), and the shape of a write transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from revoke.errors import StoreError


@contextmanager
def write_transaction(lock: AbstractContextManager[Any], db: Any, begin: tuple[str, ...], where: str) -> Iterator[Any]:
    """One writer at a time in this process (`lock`) and across processes (the `begin` statements:
    SQLite's BEGIN IMMEDIATE, Postgres's BEGIN and its advisory lock); rolled back on any exit
    but a normal one. A store that cannot begin is a StoreError naming `where`."""
    with lock:
        try:
            for statement in begin:
                db.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {where}: {exc}") from exc
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

SCHEMA_VERSION = 2

# each snapshot's compiled part (revoke/graph_parts.py), a BLOB per column: the graph compile of
# an unchanged snapshot reads these instead of its rows; `taken_at` ties it to the rows it was made of
PARTS_SQLITE = ("CREATE TABLE IF NOT EXISTS parts (snapshot TEXT NOT NULL, key TEXT NOT NULL, taken_at TEXT NOT NULL, "
                "data BLOB NOT NULL, PRIMARY KEY (snapshot, key))")
PARTS_POSTGRES = PARTS_SQLITE.replace("BLOB", "BYTEA")
# version -> what brings a store of the version before it up to it, per dialect
MIGRATIONS: dict[int, dict[str, tuple[str, ...]]] = {
    2: {"sqlite": (PARTS_SQLITE,), "postgres": (PARTS_POSTGRES,)},
}


def upgrade(db: Any, found: str, dialect: str, where: str) -> None:
    """Bring a store of an older schema up to SCHEMA_VERSION, inside the caller's write transaction
    (every step is additive: what an older revoke wrote stays valid). A newer or unknown schema is
    refused: this revoke does not know what it holds."""
    version = int(found) if found.isdigit() else 0
    if not 1 <= version <= SCHEMA_VERSION:
        raise StoreError(f"store {where} has schema {found}, this revoke expects {SCHEMA_VERSION}")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[step][dialect]:
            db.execute(statement)
    db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
  name TEXT PRIMARY KEY, type TEXT NOT NULL, taken_at TEXT NOT NULL,
  nodes INTEGER NOT NULL, edges INTEGER NOT NULL, meta TEXT NOT NULL, findings TEXT NOT NULL,
  last_error TEXT, last_error_at TEXT);
CREATE TABLE IF NOT EXISTS nodes (snapshot TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_id ON nodes (id);
CREATE INDEX IF NOT EXISTS nodes_snapshot ON nodes (snapshot);
CREATE TABLE IF NOT EXISTS edges (snapshot TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS edges_snapshot ON edges (snapshot);
CREATE TABLE IF NOT EXISTS compiled (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS parts (snapshot TEXT NOT NULL, key TEXT NOT NULL, taken_at TEXT NOT NULL,
  data BLOB NOT NULL, PRIMARY KEY (snapshot, key));
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY, created_at TEXT NOT NULL, playbook TEXT NOT NULL, playbook_name TEXT NOT NULL,
  playbook_digest TEXT NOT NULL, sources TEXT NOT NULL, options TEXT NOT NULL,
  lock_owner TEXT, lock_at TEXT);
CREATE TABLE IF NOT EXISTS journal (
  incident TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, type TEXT NOT NULL,
  action TEXT, node TEXT, data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY (incident, seq));
"""

# SQLite's implicit `rowid` (insertion order) is an explicit identity column here, last, so the
# positional inserts of the SQLite dialect fill the same columns. `jobs` is the worker queue
# (revoke/jobs.py): Postgres only, claimed with FOR UPDATE SKIP LOCKED.
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
  name TEXT PRIMARY KEY, type TEXT NOT NULL, taken_at TEXT NOT NULL,
  nodes INTEGER NOT NULL, edges INTEGER NOT NULL, meta TEXT NOT NULL, findings TEXT NOT NULL,
  last_error TEXT, last_error_at TEXT);
CREATE TABLE IF NOT EXISTS nodes (snapshot TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
  rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX IF NOT EXISTS nodes_id ON nodes (id);
CREATE INDEX IF NOT EXISTS nodes_snapshot ON nodes (snapshot);
CREATE TABLE IF NOT EXISTS edges (snapshot TEXT NOT NULL, data TEXT NOT NULL,
  rowid BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX IF NOT EXISTS edges_snapshot ON edges (snapshot);
CREATE TABLE IF NOT EXISTS compiled (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS parts (snapshot TEXT NOT NULL, key TEXT NOT NULL, taken_at TEXT NOT NULL,
  data BYTEA NOT NULL, PRIMARY KEY (snapshot, key));
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY, created_at TEXT NOT NULL, playbook TEXT NOT NULL, playbook_name TEXT NOT NULL,
  playbook_digest TEXT NOT NULL, sources TEXT NOT NULL, options TEXT NOT NULL,
  lock_owner TEXT, lock_at TEXT);
CREATE TABLE IF NOT EXISTS journal (
  incident TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, type TEXT NOT NULL,
  action TEXT, node TEXT, data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL,
  PRIMARY KEY (incident, seq));
CREATE INDEX IF NOT EXISTS journal_node ON journal (node);
CREATE TABLE IF NOT EXISTS jobs (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, batch TEXT NOT NULL, kind TEXT NOT NULL,
  payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
  claimed_by TEXT, claimed_until TIMESTAMPTZ, result TEXT, error TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), done_at TIMESTAMPTZ);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch);
-- the SQLite JSON functions the journal index and the observed-use reader call, for text columns
-- (`IS JSON` needs Postgres 16, and a bad record reads as NULL, as in SQLite)
CREATE OR REPLACE FUNCTION json_valid(t text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT t IS JSON';
CREATE OR REPLACE FUNCTION json_extract(t text, path text) RETURNS text LANGUAGE sql IMMUTABLE
  AS 'SELECT CASE WHEN t IS JSON THEN (t::jsonb) #>> string_to_array(substr(path, 3), ''.'') END'
"""
