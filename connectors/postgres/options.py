"""The options of a `type: postgres` block in revoke.yaml, validated before any connector runs.

The connection string is named by environment variable only (`dsn_env`), never given inline: it
may carry the operator's password. TLS: `sslmode` defaults to `verify-full` for a server reached
over the network and to libpq's `prefer` for a Unix socket or loopback; a weaker mode to a remote
host must be asked for by name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError

from connectors.postgres.ids import PROVIDER
from revoke.connector import ConnectorError, ConnectorOptions

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


def parse_options(config: dict[str, Any]) -> PostgresOptions:
    """The block's own keys (the loader's `type` and `name` are not options), or a ConnectorError
    naming the field, for callers that build the connector without `revoke.config`."""
    try:
        return PostgresOptions.model_validate({k: v for k, v in config.items() if k not in ("type", "name")})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(connector)"
        raise ConnectorError(PROVIDER, "config", f"field {where}: {err['msg']}") from None
