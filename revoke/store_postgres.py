"""The Postgres store (`--store postgresql://...`, extra `revoke[postgres]`): the SQLite store's
schema, snapshot swap, compiled graph and journal, for several responders and workers at once.

Every caller speaks the SQLite dialect (`?` placeholders, `instr`, `rowid`, sqlite3's exception
classes): `PgConnection` translates the few differences, so the journal, the run lock and the
planner run unchanged on either store. Writing transactions are serialised store-wide by a
transaction-level advisory lock, as SQLite's `BEGIN IMMEDIATE` serialises them: a journal append
reads the chain's head and writes the next record inside one such transaction, so two writers on
two machines cannot fork the chain (and (incident, seq) is a primary key besides).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from revoke.errors import StoreError
from revoke.store_schema import POSTGRES_SCHEMA, SCHEMA_VERSION, upgrade, write_transaction

# pg_advisory_xact_lock key of the store-wide writer lock ("revoke" in ASCII)
WRITER_LOCK = 0x7265766F6B65
# session advisory locks of the single-runner lock: (RUNNER_SPACE, hashtext(incident))
RUNNER_SPACE = 0x7276
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?|%|\binstr\(", re.IGNORECASE)
_translated: dict[str, str] = {}


def translate(sql: str) -> str:
    """SQLite dialect to psycopg's: `?` -> `%s`, a literal `%` -> `%%`, `instr(` -> `strpos(`
    (same argument order), leaving quoted literals' `?` alone."""
    out = _translated.get(sql)
    if out is None:
        def swap(m: re.Match[str]) -> str:
            tok = m.group(0)
            if tok == "?":
                return "%s"
            if tok == "%":
                return "%%"
            if tok.lower() == "instr(":
                return "strpos("
            return tok.replace("%", "%%")
        out = _translated[sql] = _TOKEN.sub(swap, sql)
    return out


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(postgresql://[^:/@]*:)[^@]*@", r"\1***@", url)


def _as_sqlite_error(exc: Exception) -> Exception:
    """psycopg's error as sqlite3's class of the same meaning: callers written for the default
    store (`except sqlite3.IntegrityError`) keep working."""
    import psycopg

    if isinstance(exc, psycopg.IntegrityError):
        return sqlite3.IntegrityError(str(exc))
    if isinstance(exc, psycopg.OperationalError):
        return sqlite3.OperationalError(str(exc))
    return sqlite3.DatabaseError(str(exc))


class PgConnection:
    """The part of sqlite3.Connection the store's callers use, over one psycopg connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        import psycopg

        try:
            return self.conn.execute(translate(sql), tuple(params))
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc

    def executemany(self, sql: str, rows: Any) -> Any:
        import psycopg

        try:
            with self.conn.cursor() as cur:
                cur.executemany(translate(sql), rows)
                return cur
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc

    def close(self) -> None:
        self.conn.close()


def connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError("a postgresql:// store needs psycopg: pip install 'revoke[postgres]'") from None
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=15)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot open store {redact(url)}: {first}") from None


class PostgresBackend:
    """What differs from SQLite: connecting, the schema, transactions, upserts, the run lock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.RLock()
        self.db = PgConnection(connect(url))
        self._runner: dict[str, Any] = {}  # incident -> the connection holding its session lock
        try:  # a store already set up is opened without the writer lock: a reader never waits for a collect
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is not None and row[0] == str(SCHEMA_VERSION):
            return
        with self.transaction() as db:
            for statement in POSTGRES_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?) ON CONFLICT DO NOTHING", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                upgrade(db, row[0], "postgres", redact(url))

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        begin = ("BEGIN", f"SELECT pg_advisory_xact_lock({WRITER_LOCK})")
        with write_transaction(self.lock, self.db, begin, redact(self.url)) as db:
            yield db

    def upsert_snapshot(self, db: PgConnection, row: tuple[Any, ...]) -> None:
        db.execute("INSERT INTO snapshots VALUES (?,?,?,?,?,?,?,NULL,NULL) ON CONFLICT (name) DO UPDATE SET "
                   "type=excluded.type, taken_at=excluded.taken_at, nodes=excluded.nodes, edges=excluded.edges, "
                   "meta=excluded.meta, findings=excluded.findings, last_error=NULL, last_error_at=NULL", row)

    def bulk_insert(self, db: PgConnection, table: str, columns: tuple[str, ...], rows: Any) -> None:
        """COPY: Postgres's bulk path (executemany would be one round trip per row)."""
        with db.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    # -- the single-runner lock ---------------------------------------------------------------------
    def runner_lock(self, incident: str) -> bool:
        """Take the incident's session advisory lock on a connection of its own; False when another
        session holds it. A process that dies loses its connection and so the lock, at once."""
        if incident in self._runner:
            return True
        conn = connect(self.url)
        got = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (RUNNER_SPACE, incident)).fetchone()[0]
        if not got:
            conn.close()
            return False
        self._runner[incident] = conn
        return True

    def runner_unlock(self, incident: str) -> None:
        conn = self._runner.pop(incident, None)
        if conn is None:
            return
        # released before the close returns: a session's end is processed by the server after it,
        # so the next acquire could still find the lock held (a broken connection: its end does it)
        with contextlib.suppress(Exception):
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (RUNNER_SPACE, incident))
        conn.close()

    def close(self) -> None:
        for incident in list(self._runner):
            self.runner_unlock(incident)
        self.db.close()
