"""The demo's database, for `revoke demo`: the Postgres role whose password the runner's Vault KV
secret `secret/ci/db` holds (`{"host": "db.internal", "username": "ci", "password": ...}`, written by
`vault_lab.seed_demo`), so that password is rotated by the Postgres connector instead of staying a
manual task.

`seed_demo(pg, db_password)` takes a running `postgres_lab.PostgresLab` and the same password the
demo gives `vault_lab.seed_demo`; it creates the role (and a group it belongs to, so the blast radius
shows what the role could become), points `PG_DSN_ENV` at the lab's superuser connection, and
returns the `type: postgres` block for revoke.yaml. The server is named `db.internal:5432`, the host
the secret names, so the secret's password links to this server's role.
"""

from __future__ import annotations

import os
from typing import Any

PG_DSN_ENV = "REVOKE_LAB_PG_DSN"  # the demo restores it with its other variables
DEMO_HOST = "db.internal"        # as `vault_lab.seed_demo` writes `secret/ci/db`
DEMO_ROLE = "ci"
DEMO_GROUP = "app_writers"
DEMO_DATABASE = "app"


def seed_demo(pg: Any, db_password: str, *, role: str = DEMO_ROLE) -> dict[str, Any]:
    """Create the demo's role with `db_password` and return the connector block (see the module docstring)."""
    from psycopg import sql  # the lab's other modules load no driver until a server is asked for

    with pg.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(DEMO_GROUP)))
        # sent as a literal once, at seeding, as an application's DBA would have set it
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(role), sql.Literal(db_password), sql.Identifier(DEMO_GROUP)))
    os.environ[PG_DSN_ENV] = pg.uri()
    return {"type": "postgres", "dsn_env": PG_DSN_ENV, "server": f"{DEMO_HOST}:5432",
            "databases": [DEMO_DATABASE]}
