"""Helpers for the Postgres tests: unique role names on the session's server (roles are server-wide,
so each test names its own), a connector built on the admin connection, and login checks that are
the judge of every rotation."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

SERVER = "db.internal:5432"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def run_sql(lab: Any, *statements: str) -> None:
    with lab.admin() as conn:
        for statement in statements:
            conn.execute(statement)  # test fixtures only: names are generated, never user input


def can_login(lab: Any, role: str, password: str) -> bool:
    """A real login with the password: the judge of a rotation."""
    try:
        psycopg.connect(lab.uri(user=role, password=password)).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc) or "not permitted to log in" in str(exc), str(exc)
        return False
    return True


def connector(lab: Any, monkeypatch: Any, *, user: str = "postgres", password: str | None = None,
              env: str = "REVOKE_TEST_PG_DSN", **options: Any) -> Any:
    from connectors.postgres import PostgresConnector

    monkeypatch.setenv(env, lab.uri(user=user, password=password))
    return PostgresConnector({"dsn_env": env, "server": SERVER, **options})
