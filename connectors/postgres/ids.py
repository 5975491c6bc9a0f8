"""Postgres node ids, `postgres:<type>:<native id>`: made and taken apart here only.

    postgres:role:<server>/<role>              a role (login or group), on one server
    postgres:password:<server>/<role>@<tag>    one password of a role, as a store holds it

`<server>` is the name stores use for the server, `host:port` (port 5432 unless given; a Unix
socket directory is percent-quoted so the server part never holds a `/`): two servers never
share an id. `<tag>` is the first 16 hex digits of the password's SHA-256 fingerprint, so each
password a role ever had is its own credential: a store holding the replacement no longer holds
the old id, and verify can tell them apart without ever seeing a value.

Pure and import-free, so `connectors.recognize` links a DSN found in a store to these ids.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

PROVIDER = "postgres"
DEFAULT_PORT = 5432
TAG_HEX = 16


def server_name(host: str | None, port: int | str | None = None) -> str:
    """`db.internal:5432`; a socket directory `/run/pg` becomes `%2Frun%2Fpg:5432`; no host is
    the local server (`localhost`), as libpq's default."""
    name = (host or "localhost").strip()
    if "," in name:  # a multi-host DSN: its first host names the server
        name = name.split(",", 1)[0]
    name = quote(name, safe="") if name.startswith("/") else name.lower().strip("[]")
    try:
        number = int(str(port).split(",", 1)[0]) if port not in (None, "") else DEFAULT_PORT
    except ValueError:
        number = DEFAULT_PORT
    return f"{name}:{number}"


def role_id(server: str, role: str) -> str:
    return f"{PROVIDER}:role:{server}/{role}"


def password_tag(fingerprint: str) -> str:
    """The id's tag from a `sha256:<hex>` fingerprint of the password."""
    return fingerprint.removeprefix("sha256:")[:TAG_HEX]


def password_id(server: str, role: str, fingerprint: str) -> str:
    return f"{PROVIDER}:password:{server}/{role}@{password_tag(fingerprint)}"


def split_role(node_id: str) -> tuple[str, str]:
    """(server, role) of a role id or a password id; ValueError for anything else."""
    parts = node_id.split(":", 2)
    if len(parts) != 3 or parts[0] != PROVIDER or parts[1] not in ("role", "password"):
        raise ValueError(f"not a Postgres role or password id: {node_id}")
    server, sep, rest = parts[2].partition("/")
    if not sep or not rest:
        raise ValueError(f"not a Postgres role or password id: {node_id}")
    if parts[1] == "password":
        rest, at, tag = rest.rpartition("@")
        if not at or not rest or len(tag) != TAG_HEX:
            raise ValueError(f"not a Postgres password id: {node_id}")
    return server, rest


def tag_of(node_id: str) -> str:
    """The password tag of a password id ('' for a role id)."""
    return node_id.rpartition("@")[2] if node_id.startswith(f"{PROVIDER}:password:") else ""


def socket_dir(server: str) -> str | None:
    """The socket directory a server name stands for, or None for a TCP host."""
    host = server.rpartition(":")[0]
    return unquote(host) if host.startswith("%2F") else None
