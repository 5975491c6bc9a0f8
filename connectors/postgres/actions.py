"""Actions, rotation and probes of the Postgres connector: plain functions over the client.

A role has one password, so a rotation is a single `ALTER ROLE ... PASSWORD` with a verifier
computed here (`scram`): the old password stops working at that moment, and the executor then
writes the replacement to every store that held the old one. What the playbook calls retiring
the old password (`disable`, `revoke`, after a rotation) is then ending the sessions that were
opened before the change; without a rotation it is `NOLOGIN` plus ending the sessions.

Every action reads first, so a repeat reports `changed=False`; with `ctx.dry_run` nothing changes.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.postgres import scram
from connectors.postgres.ids import PROVIDER, password_id, password_tag, split_role, tag_of
from revoke.connector import GONE, ActionContext, ActionResult, ConnectorError, ProbeResult, Replacement, Secret
from revoke.model import Node, NodeKind, fingerprint

if TYPE_CHECKING:
    from connectors.postgres.client import PgClient

PASSWORD_BYTES = 18  # 24 URL-safe characters, 144 bits


def target(client: PgClient, node: Node, call: str) -> str:
    """The role a node names, refusing a node of another server (its id says which)."""
    try:
        server, role = split_role(node.id)
    except ValueError as exc:
        raise ConnectorError(PROVIDER, call, str(exc), node=node.id) from None
    if server != client.server:
        raise ConnectorError(PROVIDER, call, f"the node is on server {server}; this connector reaches "
                             f"{client.server} (configure a `type: postgres` block for that server)", node=node.id)
    return role


def read_role(client: PgClient, role: str, node: str) -> dict[str, Any] | None:
    rows = client.query("SELECT rolcanlogin, rolvaliduntil, rolsuper FROM pg_roles WHERE rolname = %s", (role,),
                        call="read pg_roles", node=node)
    if not rows:
        return None
    login, until, sup = rows[0]
    return {"login": bool(login), "valid_until": until, "superuser": bool(sup)}


def read_verifier(client: PgClient, role: str, node: str) -> scram.Verifier | None:
    """The role's password method and tag, or None when `pg_authid` may not be read."""
    try:
        rows = client.query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,),
                            call="read pg_authid", node=node)
    except ConnectorError as err:
        if err.code == "42501":
            return None
        raise
    return scram.read(rows[0][0] if rows else None)


def _result(node: Node, action: str, changed: bool, detail: str, ctx: ActionContext, **data: Any) -> ActionResult:
    if ctx.dry_run and changed:
        return ActionResult(node.id, action, ok=True, changed=False, detail=f"dry run: would {detail}",
                            data={"dry_run": True, **data})
    return ActionResult(node.id, action, ok=True, changed=changed, detail=detail, data=dict(data))


def _gone(node: Node, action: str, ctx: ActionContext, role: str) -> ActionResult:
    return _result(node, action, False, f"role {role} no longer exists", ctx, role=role)


# -- sessions and login -----------------------------------------------------------------------------

def end_sessions(client: PgClient, role: str, node: str, before: datetime | None = None) -> int:
    """`pg_terminate_backend` for the role's sessions (those opened before `before`, when known)."""
    rows = client.query(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE usename = %s AND pid <> pg_backend_pid() AND (%s::timestamptz IS NULL OR backend_start < %s)",
        (role, before, before), call="pg_terminate_backend", node=node)
    return int(rows[0][0] or 0)


def set_login(client: PgClient, role: str, login: bool, node: str) -> None:
    client.query(client.compose("ALTER ROLE {} " + ("LOGIN" if login else "NOLOGIN"), client.ident(role)),
                 call="ALTER ROLE LOGIN" if login else "ALTER ROLE NOLOGIN", node=node)


def contain(client: PgClient, node: Node, ctx: ActionContext, *, action: str,
            changed_at: dict[str, datetime]) -> ActionResult:
    """`disable` / `revoke` of a password or a role. After this incident replaced the password, the
    old one is already dead: only the sessions opened before the change end. Otherwise NOLOGIN
    (the only way to stop a password without replacing it), then every session of the role ends."""
    role = target(client, node, action)
    state = read_role(client, role, node.id)
    if state is None:
        return _gone(node, action, ctx, role)
    if node.id in ctx.replacements:
        if ctx.dry_run:
            return _result(node, action, True, "end the sessions opened with the replaced password", ctx, role=role)
        ended = end_sessions(client, role, node.id, changed_at.get(role))
        return _result(node, action, ended > 0, f"password already replaced; {ended} session(s) ended", ctx,
                       role=role, sessions_ended=ended, replaced_by=ctx.replacements[node.id])
    if action == "rotate":
        raise ConnectorError(PROVIDER, action, "a rotation sets the new password through create_replacement "
                             "first; nothing was replaced yet", node=node.id)
    if not state["login"]:
        return _result(node, action, False, "role already NOLOGIN", ctx, role=role)
    if ctx.dry_run:
        return _result(node, action, True, f"ALTER ROLE {role} NOLOGIN and end its sessions", ctx, role=role)
    set_login(client, role, False, node.id)
    ended = end_sessions(client, role, node.id)
    return _result(node, action, True, f"role set NOLOGIN; {ended} session(s) ended", ctx, role=role,
                   sessions_ended=ended)


def allow_login(client: PgClient, node: Node, ctx: ActionContext) -> ActionResult:
    """`rollback` of a containment: LOGIN again (a replaced password never comes back)."""
    role = target(client, node, "rollback")
    state = read_role(client, role, node.id)
    if state is None:
        raise ConnectorError(PROVIDER, "rollback", f"cannot roll back: role {role} was dropped", node=node.id)
    if state["login"]:
        return _result(node, "rollback", False, "role already LOGIN", ctx, role=role)
    if ctx.dry_run:
        return _result(node, "rollback", True, f"ALTER ROLE {role} LOGIN", ctx, role=role)
    set_login(client, role, True, node.id)
    return _result(node, "rollback", True, "role set LOGIN", ctx, role=role)


def expire(client: PgClient, node: Node, ctx: ActionContext) -> ActionResult:
    """`expire`: VALID UNTIL now, so no new login with the password succeeds; the role stays."""
    role = target(client, node, "expire")
    state = read_role(client, role, node.id)
    if state is None:
        return _gone(node, "expire", ctx, role)
    until = state["valid_until"]
    if until is not None and until <= datetime.now(UTC):
        return _result(node, "expire", False, "password already expired", ctx, role=role)
    if ctx.dry_run:
        return _result(node, "expire", True, f"ALTER ROLE {role} VALID UNTIL now", ctx, role=role)
    now = client.query("SELECT now()", call="now", node=node.id)[0][0]
    client.query(client.compose("ALTER ROLE {} VALID UNTIL {}", client.ident(role), client.literal(now.isoformat())),
                 call="ALTER ROLE VALID UNTIL", node=node.id)
    return _result(node, "expire", True, "password expired (VALID UNTIL now)", ctx, role=role,
                   previous_valid_until=until.isoformat() if until is not None else "infinity")


# -- rotation ---------------------------------------------------------------------------------------

def rotate_password(client: PgClient, node: Node, ctx: ActionContext,
                    changed_at: dict[str, datetime]) -> Replacement:
    """A new password for the node's role, sent as a SCRAM verifier; a login with it must then be
    accepted (checked in memory) before anything is written anywhere."""
    if ctx.dry_run:
        raise ConnectorError(PROVIDER, "create_replacement", "dry run: no password set", node=node.id)
    role = target(client, node, "create_replacement")
    state = read_role(client, role, node.id)
    if state is None:
        raise ConnectorError(PROVIDER, "create_replacement", f"role {role} no longer exists", node=node.id,
                             code=GONE)
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    fp = fingerprint(password)
    tag = password_tag(fp)
    client.query(client.compose("ALTER ROLE {} PASSWORD {}", client.ident(role),
                                client.literal(scram.verifier(password, tag))),
                 call="ALTER ROLE PASSWORD", node=node.id)
    changed_at[role] = client.query("SELECT clock_timestamp()", call="now", node=node.id)[0][0]
    check = "role is NOLOGIN: no login check"
    if state["login"]:
        accepted, check = client.login(role, password)
        if accepted is False:
            raise ConnectorError(PROVIDER, "create_replacement",
                                 f"the new password was set but a login with it was refused ({check})", node=node.id)
    return Replacement(old_id=node.id, new_id=password_id(client.server, role, fp), kind=NodeKind.PASSWORD,
                       material=Secret({"password": password}),
                       attrs={"role": role, "server": client.server, "login_check": check})


# -- probes -----------------------------------------------------------------------------------------

def probe(client: PgClient, node: Node) -> ProbeResult:
    """From the catalog only: a password is dead when its role is gone or NOLOGIN, its VALID UNTIL has
    passed, or `pg_authid` shows another password (one revoke set, whose tag differs). A password set
    outside revoke, or an unreadable `pg_authid`, cannot be told from this one without its value."""
    role = target(client, node, "probe")
    state = read_role(client, role, node.id)
    if state is None:
        return ProbeResult(node.id, False, f"pg_roles: role {role} does not exist")
    if not state["login"]:
        return ProbeResult(node.id, False, "pg_roles: rolcanlogin=false (NOLOGIN)")
    until = state["valid_until"]
    if until is not None and until <= datetime.now(UTC):
        return ProbeResult(node.id, False, f"pg_roles: VALID UNTIL {until.isoformat()} has passed")
    if node.kind is not NodeKind.PASSWORD:
        return ProbeResult(node.id, True, "pg_roles: rolcanlogin=true")
    seen = read_verifier(client, role, node.id)
    if seen is None:
        return ProbeResult(node.id, None, "pg_authid not readable: cannot tell which password is current")
    if seen.method == "none":
        return ProbeResult(node.id, False, "pg_authid: the role has no password")
    tag = tag_of(node.id)
    if seen.tag == tag:
        return ProbeResult(node.id, True, f"pg_authid: the current verifier is this password's (@{tag})")
    if seen.tag:
        return ProbeResult(node.id, False, f"pg_authid: replaced by revoke (current @{seen.tag})")
    return ProbeResult(node.id, None, f"pg_authid: a {seen.method} password set outside revoke; "
                       "whether it is this one cannot be told without its value")
