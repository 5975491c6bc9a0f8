"""The Postgres client: one admin connection, one `query` per statement, every failure a `ConnectorError`.

The only module of the package that imports `psycopg`; the connector imports it when it is
instantiated, so `revoke --help`, config validation and `revoke permissions` load no driver.

Nothing here formats a connection string or a password into a message or a log line: errors
carry the SQLSTATE (`code`) and the server's primary message, which names roles, never values.
Login checks take the password as a keyword argument and keep it in memory only.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from connectors.postgres.ids import PROVIDER, server_name
from connectors.postgres.options import PostgresOptions
from revoke.connector import ConnectorError

# connection trouble, shutdown, serialization failures and deadlocks: worth a retry
RETRYABLE_CLASSES = ("08", "53", "57P", "40")
# what libpq says when the server refused a login (the server sends no SQLSTATE before auth)
REFUSED = ("password authentication failed", "is not permitted to log in", "no pg_hba.conf entry",
           "password is expired", "authentication failed")


def is_local(host: str) -> bool:
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def one_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc) or type(exc).__name__
    return " ".join(text.split())[:300]


def wrap(exc: BaseException, call: str, node: str | None = None) -> ConnectorError:
    code = getattr(exc, "sqlstate", None)
    retryable = isinstance(exc, psycopg.OperationalError) and not any(r in str(exc) for r in REFUSED)
    if code:
        retryable = code.startswith(RETRYABLE_CLASSES)
    elif isinstance(exc, psycopg.InterfaceError):
        retryable = True
    if code == "42501":
        message = f"permission denied ({one_line(exc)}): grant the connector's role what `revoke permissions` lists"
    else:
        message = one_line(exc)
    return ConnectorError(PROVIDER, call, message, node=node, retryable=retryable,
                          code=code or type(exc).__name__)


class PgClient:
    """The admin connection (autocommit, made on first use, remade after a failure) plus login checks."""

    def __init__(self, opts: PostgresOptions) -> None:
        dsn = os.environ.get(opts.dsn_env)
        if not dsn:
            raise ConnectorError(PROVIDER, "config", f"environment variable {opts.dsn_env} (dsn_env) is not set")
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            # the parser's message may quote the string, which may hold a password
            raise ConnectorError(PROVIDER, "config", f"the connection string in {opts.dsn_env} cannot be parsed") from None
        host = str(params.get("host") or os.environ.get("PGHOST") or "")
        port = params.get("port") or os.environ.get("PGPORT")
        self.server = opts.server or server_name(host, port)
        self.host = host.split(",", 1)[0]
        mode = opts.sslmode or ("prefer" if is_local(self.host) else "verify-full")
        extra: dict[str, Any] = {"sslmode": mode, "connect_timeout": max(1, round(opts.connect_timeout)),
                                 "application_name": "revoke"}
        for name in ("sslrootcert", "sslcert", "sslkey"):
            if getattr(opts, name):
                extra[name] = getattr(opts, name)
        self._params = {**params, **extra}
        self.database = (opts.databases or [str(params.get("dbname") or params.get("user") or "postgres")])[0]
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(**self._params, autocommit=True)
            except psycopg.Error as exc:
                raise wrap(exc, "connect") from None
        return self._conn

    def query(self, statement: str | sql.Composed, params: Sequence[Any] | None = None, *, call: str,
              node: str | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; the rows it returns (none for a utility statement)."""
        with self._lock:
            conn = self._connection()
            try:
                cur = conn.execute(statement, params)
                return list(cur.fetchall()) if cur.description is not None else []
            except psycopg.Error as exc:
                if conn.broken:
                    self._conn = None
                raise wrap(exc, call, node) from None

    def login(self, role: str, password: str) -> tuple[bool | None, str]:
        """Whether `role` can log in with `password` right now: (True, ...) accepted, (False, why)
        refused, (None, why) when the attempt could not tell. Nothing of the password leaves here."""
        params = {k: v for k, v in self._params.items() if k not in ("user", "password", "passfile", "dbname")}
        try:
            psycopg.connect(**params, user=role, password=password, dbname=self.database,
                            passfile=os.devnull, autocommit=True).close()
        except psycopg.OperationalError as exc:
            text = str(exc)
            for marker in REFUSED:
                if marker in text:
                    return False, f"login refused: {marker}"
            if ('database "' in text and "does not exist" in text) or "permission denied for database" in text:
                return True, "login accepted (then refused the database)"
            return None, f"login attempt failed: {one_line(exc)}"
        except psycopg.Error as exc:
            return None, f"login attempt failed: {one_line(exc)}"
        return True, "login accepted"

    @staticmethod
    def ident(name: str) -> sql.Identifier:
        return sql.Identifier(name)

    @staticmethod
    def literal(value: Any) -> sql.Literal:
        return sql.Literal(value)

    @staticmethod
    def compose(template: str, *parts: Any) -> sql.Composed:
        return sql.SQL(template).format(*parts)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
