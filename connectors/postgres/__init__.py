"""Postgres: roles, who can become whom, who can set whose password, and rotation of a role's
password found in a store (psycopg 3).

Graph (see `transform` and `ids`):
- `postgres:role:<server>/<name>` (role) for every role; `<server>` is the name stores use for the
  server (`host:port`), so two servers never share an id.
- `can_assume` member -> role (memberships); `can_mint` -> role from whoever may set its password
  (superusers; CREATEROLE roles, with ADMIN OPTION from Postgres 16).
- `postgres:password:<server>/<name>@<tag>` (password): one password as a store holds it, linked by
  `connectors.recognize` from the store's fields (`postgres://user@host/db` URIs, PGUSER/PGPASSWORD,
  host/username/password) with `authenticates_as` -> its role, without any login attempt.

Modules: `client` (the only psycopg import, loaded when the connector is instantiated; errors with
`code` = SQLSTATE), `collect` (get), `transform` (pure), `scram` (verifiers computed client-side),
`actions` (actions, rotation, probes), `options`, `connector` (the action table, the class),
`ids` and `logins` (pure: ids, and logins read from stored values for `connectors.recognize`).
The package itself loads lazily: `connectors.recognize` uses `ids` and `logins` without the rest.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PostgresConnector", "PostgresOptions"]


def __getattr__(name: str) -> Any:
    if name == "PostgresConnector":
        from connectors.postgres.connector import PostgresConnector

        return PostgresConnector
    if name == "PostgresOptions":
        from connectors.postgres.options import PostgresOptions

        return PostgresOptions
    raise AttributeError(name)
