"""Postgres collection, the fetching half: catalog reads into one plain payload (`transform` is pure).

Reads: the server (version, identity, who the connector is), `pg_roles`, `pg_auth_members`, the
CONNECT privilege on the chosen databases and, when the connector may read it, `pg_authid`'s
`rolpassword`, of which only the method and revoke's own tag are kept (`scram.read`); the value
never leaves this module. A refused `pg_authid` read becomes a finding: rotation still works,
verify then falls back on what the catalog shows (NOLOGIN, VALID UNTIL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.postgres import scram
from revoke.connector import CollectFinding, ConnectorError
from revoke.model import fingerprint

if TYPE_CHECKING:
    from connectors.postgres.client import PgClient

ROLES = """SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolinherit, rolvaliduntil, rolreplication,
                  rolbypassrls, oid::bigint FROM pg_roles ORDER BY rolname"""
MEMBERS = """SELECT r.rolname, m.rolname, to_jsonb(a) FROM pg_auth_members a
             JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member"""
CONNECT = """SELECT r.rolname, d.datname FROM pg_roles r CROSS JOIN pg_database d
             WHERE d.datallowconn AND d.datname = ANY(%s) AND has_database_privilege(r.oid, d.oid, 'CONNECT')"""
AUTHID = "SELECT rolname, rolpassword FROM pg_authid"


def server_info(client: PgClient) -> dict[str, Any]:
    row = client.query("SELECT current_user, current_setting('server_version_num')::int, "
                       "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)", call="server")[0]
    info: dict[str, Any] = {"user": row[0], "version": int(row[1]), "superuser": bool(row[2])}
    try:
        info["system_identifier"] = str(client.query("SELECT system_identifier FROM pg_control_system()",
                                                     call="pg_control_system")[0][0])
    except ConnectorError:
        info["system_identifier"] = ""  # needs pg_monitor or superuser: the id is an attribute only
    return info


def read_verifiers(client: PgClient) -> dict[str, dict[str, str]] | None:
    """role -> {method, tag, verifier_sha256}; None when `pg_authid` may not be read."""
    try:
        rows = client.query(AUTHID, call="read pg_authid")
    except ConnectorError as err:
        if err.code == "42501":
            return None
        raise
    out: dict[str, dict[str, str]] = {}
    for name, value in rows:
        seen = scram.read(value)
        out[str(name)] = {"method": seen.method, "tag": seen.tag,
                          "verifier_sha256": fingerprint(value) if value else ""}
    return out


def get_server(client: PgClient, databases: list[str]) -> tuple[dict[str, Any], list[CollectFinding]]:
    findings: list[CollectFinding] = []
    info = server_info(client)
    roles = [
        {"name": r[0], "login": bool(r[1]), "superuser": bool(r[2]), "createrole": bool(r[3]),
         "inherit": bool(r[4]), "valid_until": r[5].isoformat() if r[5] is not None else None,
         "replication": bool(r[6]), "bypassrls": bool(r[7]), "oid": int(r[8])}
        for r in client.query(ROLES, call="list pg_roles")
    ]
    members = [{"role": r[0], "member": r[1], **{k: bool(v) for k, v in dict(r[2]).items()
                                                 if k in ("admin_option", "inherit_option", "set_option")}}
               for r in client.query(MEMBERS, call="list pg_auth_members")]
    connect: dict[str, list[str]] = {}
    for role, db in client.query(CONNECT, (databases,), call="has_database_privilege"):
        connect.setdefault(str(role), []).append(str(db))
    verifiers = read_verifiers(client)
    if verifiers is None:
        findings.append(CollectFinding(
            "pg_authid_unreadable",
            f"{client.server}: the connector's role {info['user']} may not read pg_authid: password methods and "
            "revoke's tags are unknown; rotation still works, verify can then only see NOLOGIN and VALID UNTIL "
            "(GRANT SELECT ON pg_authid, or connect as a superuser, to verify rotations)",
            severity="warning", source=client.server))
    payload = {"server": client.server, "info": info, "roles": roles, "members": members,
               "connect": connect, "verifiers": verifiers, "databases": databases}
    return payload, findings
