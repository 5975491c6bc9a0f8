"""The options of a `type: postgres` block in revoke.yaml, validated before any connector runs.

The connection string is named by environment variable only (`dsn_env`), never given inline: it
may carry the operator's password. TLS: `sslmode` defaults to `verify-full` for a server reached
over the network and to libpq's `prefer` for a Unix socket or loopback; a weaker mode to a remote
host must be asked for by name.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from revoke.connector import ConnectorOptions

Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=63)]
EnvName = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class PostgresOptions(ConnectorOptions):
    """The `type: postgres` block (see `connectors/postgres/connector.py`)."""

    dsn_env: EnvName
    # the name stores use for this server (`db.internal:5432`): part of every node id, so a
    # password found in a store (`host: db.internal`) links to this server's roles
    server: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255,
                                             pattern=r"^[^/\s]+$")] | None = None
    # databases whose CONNECT privilege is recorded on each role; the first one also receives
    # the login checks (default: the DSN's database)
    databases: list[Name] | None = Field(default=None, min_length=1)
    sslmode: SslMode | None = None
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    connect_timeout: float = Field(default=10, gt=0, le=300)

