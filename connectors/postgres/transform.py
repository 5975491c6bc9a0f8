"""Postgres collection, the pure half: one server's catalog payload (`collect.get_server`) to nodes
and edges. No driver, no I/O: unit-tested on recorded payloads.

- `postgres:role:<server>/<name>` (role) for every role, login or group; attributes say what the
  catalog says (`login`, `superuser`, `createrole`, `valid_until`, `databases` it may CONNECT to)
  and, where `pg_authid` was readable, the password's `method` and revoke's `password_tag`.
- `can_assume` member -> role for each membership that gives the member the role's privileges
  (`SET ROLE`, inheritance, or ADMIN OPTION, with which a member can grant itself the rest).
- `can_mint` -> role for whoever may set the role's password: a superuser for every other role;
  a CREATEROLE role for the roles it holds ADMIN OPTION on that are not superusers (Postgres 16 and
  later), or for every role that is not a superuser (before 16).
Passwords are not listed here: the catalog never shows one. A store holding a role's password
links it (`connectors.recognize`): `postgres:password:<server>/<name>@<tag>` -> `authenticates_as`.
"""

from __future__ import annotations

from typing import Any

from connectors.postgres.ids import PROVIDER, role_id
from revoke.connector import Collected
from revoke.model import Edge, Node, NodeKind, Relation, parse_time

SCOPED_CREATEROLE = 160000  # from Postgres 16, CREATEROLE reaches only roles held WITH ADMIN OPTION


def role_nodes(server: str, payload: dict[str, Any]) -> list[Node]:
    verifiers = payload.get("verifiers")
    connect = payload.get("connect") or {}
    ident = (payload.get("info") or {}).get("system_identifier") or ""
    members = {name for m in payload["members"] for name in (m["role"], m["member"])}
    out = []
    for r in payload["roles"]:
        if r["name"].startswith("pg_") and r["name"] not in members:
            continue  # a predefined role matters only through its members (pg_read_all_data, ...)
        attrs: dict[str, Any] = {
            "server": server, "role": r["name"], "login": r["login"], "superuser": r["superuser"],
            "createrole": r["createrole"], "inherit": r["inherit"], "replication": r["replication"],
            "bypassrls": r["bypassrls"], "valid_until": r["valid_until"],
            "databases": sorted(connect.get(r["name"], [])), "predefined": r["name"].startswith("pg_"),
        }
        if ident:
            attrs["system_identifier"] = ident
        if verifiers is not None:
            seen = verifiers.get(r["name"], {"method": "none", "tag": ""})
            attrs["password"] = seen["method"]
            if seen.get("tag"):
                attrs["password_tag"] = seen["tag"]
        out.append(Node(role_id(server, r["name"]), NodeKind.ROLE, PROVIDER, name=r["name"],
                        status="active" if r["login"] else "nologin", attrs=attrs,
                        expires=None))
    return out


def membership_edges(server: str, payload: dict[str, Any]) -> list[Edge]:
    out = []
    for m in payload["members"]:
        grants = {k: m[k] for k in ("admin_option", "inherit_option", "set_option") if k in m}
        if grants and not any(grants.values()):
            continue
        out.append(Edge(role_id(server, m["member"]), role_id(server, m["role"]), Relation.CAN_ASSUME,
                        attrs={"via": "membership", **grants}))
    return out


def mint_edges(server: str, payload: dict[str, Any]) -> list[Edge]:
    roles = {r["name"]: r for r in payload["roles"] if not r["name"].startswith("pg_")}  # predefined: no password
    version = int((payload.get("info") or {}).get("version") or 0)
    admin_of: dict[str, set[str]] = {}
    for m in payload["members"]:
        if m.get("admin_option"):
            admin_of.setdefault(m["member"], set()).add(m["role"])
    out: list[Edge] = []
    for name, r in sorted(roles.items()):
        if r["superuser"]:  # may set any role's password but its own (a role always may set its own)
            targets, via = [t for t in roles if t != name], "superuser"
        elif r["createrole"] and version >= SCOPED_CREATEROLE:
            targets, via = [t for t in sorted(admin_of.get(name, ())) if t in roles and not roles[t]["superuser"]], \
                "createrole with admin option"
        elif r["createrole"]:
            targets, via = [t for t in roles if t != name and not roles[t]["superuser"]], "createrole"
        else:
            continue
        out.extend(Edge(role_id(server, name), role_id(server, t), Relation.CAN_MINT, attrs={"via": via})
                   for t in sorted(targets))
    return out


def transform_server(payload: dict[str, Any]) -> Collected:
    server = payload["server"]
    nodes = role_nodes(server, payload)
    edges = membership_edges(server, payload) + mint_edges(server, payload)
    info = payload.get("info") or {}
    meta = {"server": server, "version": info.get("version"), "connected_as": info.get("user"),
            "roles": len(nodes), "pg_authid": payload.get("verifiers") is not None}
    return Collected(nodes=nodes, edges=edges, meta=meta)


def valid_until(node: Node) -> Any:
    value = node.attrs.get("valid_until")
    return parse_time(value) if value else None
