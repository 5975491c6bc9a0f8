"""Postgres logins spelled in a stored value: which server, which role, which password; pure.

`connectors.recognize` calls in here and turns each `Login` into the Postgres connector's ids
(`ids.password_id`, `authenticates_as` -> `ids.role_id`), so a role's password in a Vault KV or
Secrets Manager secret is linked to its role with no login attempt. Three shapes:
- a `postgres://` / `postgresql://` URI with a user and a password, in a field or as the value;
- PGUSER / PGPASSWORD (with PGHOST / PGPORT; no host is libpq's local server);
- host + user + password fields side by side (`host`/`DB_HOST`, `username`/`db_user`, ...) when
  nothing names another engine: an `engine`/`driver` field must say postgres, and without one a
  port must be a Postgres port (5432-5439). A host/user/password triple with neither is taken as
  Postgres, the one database revoke rotates (a `type: mysql` would claim `engine: mysql`, 3306).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from connectors.postgres.ids import server_name

_HOST = {"host", "hostname", "dbhost", "dbhostname", "databasehost", "pghost", "postgreshost", "postgresqlhost"}
_USER = {"user", "username", "dbuser", "dbusername", "databaseuser", "databaseusername", "pguser",
         "postgresuser", "postgresqluser", "postgresusername"}
_PASSWORD = {"password", "passwd", "pwd", "dbpassword", "dbpass", "databasepassword", "pgpassword",
             "postgrespassword", "postgresqlpassword"}
_PORT = {"port", "dbport", "databaseport", "pgport", "postgresport"}
_ENGINE = {"engine", "dbengine", "driver", "dialect", "adapter", "scheme", "dbtype", "databasetype"}
_PG_ENGINES = ("pg", "psql", "pgsql")
_PG_PORTS = range(5432, 5440)


@dataclass(frozen=True)
class Login:
    """One login found in a value; `where` is the field its password sits in ('' = the whole value)."""

    server: str
    user: str
    password: str = field(repr=False)
    where: str = ""
    in_uri: bool = False


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.rsplit(".", 1)[-1].lower())


def from_uri(key: str, value: str) -> Login | None:
    """A Postgres URI carrying a user and a password, or None."""
    text = value.strip()
    if not re.match(r"^postgres(?:ql)?://", text, re.I):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if not parts.username or not parts.password:
        return None
    host = parts.hostname or ""
    if not host:  # `postgresql://u:p@/db?host=/run/pg`: the host is a query parameter
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        host = unquote(query.get("host", ""))
    return Login(server_name(host, port), unquote(parts.username), unquote(parts.password), key, in_uri=True)


def with_password(uri: str, password: str) -> str:
    """The URI with its password replaced; everything else as it was."""
    parts = urlsplit(uri.strip())
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{hostport}"))


def from_fields(strings: dict[str, Any]) -> list[Login]:
    """Logins spelled as fields of one mapping (flattened keys: `db.password`), per nesting level."""
    groups: dict[str, dict[str, str]] = {}
    for key, val in strings.items():
        groups.setdefault(key.rsplit(".", 1)[0] if "." in key else "", {})[key] = str(val)
    return [login for fields in groups.values() if (login := _one(fields)) is not None]


def _one(fields: dict[str, str]) -> Login | None:
    by_name: dict[str, str] = {}
    for key in fields:
        by_name.setdefault(_norm(key), key)

    def pick(names: set[str]) -> str | None:
        return next((by_name[n] for n in sorted(names) if n in by_name and fields[by_name[n]].strip()), None)

    pw, user, host, port, engine = pick(_PASSWORD), pick(_USER), pick(_HOST), pick(_PORT), pick(_ENGINE)
    if pw is None or user is None:
        return None
    port_value = fields[port].strip() if port else ""
    if engine is not None:
        kind = fields[engine].strip().lower()
        if "postgres" not in kind and kind not in _PG_ENGINES:
            return None
    elif _norm(pw) != "pgpassword":  # PGPASSWORD is Postgres by name; other names need a host
        pg_port = not port_value or (port_value.isdigit() and int(port_value) in _PG_PORTS)
        if host is None or not pg_port:
            return None
    return Login(server_name(fields[host] if host else None, port_value or None), fields[user].strip(),
                 fields[pw], pw)
