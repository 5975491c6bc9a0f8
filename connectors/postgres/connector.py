"""The Postgres connector class: its options, its action table, and collect/probe over the client.

Config (`revoke.yaml`):
    - type: postgres
      dsn_env: REVOKE_PG_DSN        # env var holding the admin connection string (never inline)
      server: db.internal:5432      # optional: the name stores use for this server (default: the DSN's host:port)
      databases: [app]              # optional: CONNECT privileges recorded on roles; the first receives login checks
      sslmode: verify-full          # optional; default verify-full remote, prefer on a socket or loopback
      sslrootcert: /etc/ssl/pg-ca.pem   # optional; also sslcert, sslkey for a client certificate
      connect_timeout: 10           # optional (s)

Actions on a role's password (`postgres:password:...`): `rotate` (the executor calls
`create_replacement`, which sets the new password as a SCRAM verifier and checks a login with it,
then writes the stores, then retires the old one: the sessions opened before the change end),
`disable` / `revoke` (NOLOGIN and end the sessions, or only end them after a rotation), `expire`
(VALID UNTIL now), `rollback` (LOGIN). On a role: `disable`, `rollback`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from connectors.postgres import actions
from connectors.postgres.collect import get_server
from connectors.postgres.ids import PROVIDER
from connectors.postgres.options import PostgresOptions
from connectors.postgres.transform import transform_server
from revoke.connector import (
    ActionContext,
    ActionResult,
    ActionTable,
    BaseConnector,
    Collected,
    ConnectorError,
    ProbeResult,
    Replacement,
)
from revoke.model import Node, NodeKind

if TYPE_CHECKING:
    from connectors.postgres.client import PgClient

log = structlog.get_logger()

PASSWORDS, PASSWORD_KINDS = ("password",), (NodeKind.PASSWORD,)
ROLES, ROLE_KINDS = ("role",), (NodeKind.ROLE,)
ALTER = "ALTER ROLE on the role (superuser, or CREATEROLE with ADMIN OPTION on it)"
SIGNAL = "pg_signal_backend membership (end other roles' sessions)"
READ_ROLES = "SELECT on pg_roles"


class PostgresConnector(BaseConnector):
    name = PROVIDER
    options_model = PostgresOptions
    operations = {
        "collect": [READ_ROLES, "SELECT on pg_auth_members, pg_database",
                    "SELECT on pg_authid (optional: which password is current; else verify cannot tell)"],
        "probe": [READ_ROLES, "SELECT on pg_authid"],
        "create_replacement": [ALTER, "CONNECT on the login-check database for the role"],
    }
    table = ActionTable()

    def __init__(self, config: dict[str, Any]) -> None:
        from connectors.postgres.client import PgClient

        super().__init__(config)
        self.opts = PostgresOptions.parse(config, PROVIDER)
        self.client: PgClient = PgClient(self.opts)
        # role -> when this process replaced its password: the sessions opened before it end
        self.changed_at: dict[str, datetime] = {}

    def close(self) -> None:
        self.client.close()

    # -- collect ---------------------------------------------------------------------------

    def collect(self) -> Collected:
        started = time.perf_counter()
        payload, findings = get_server(self.client, list(self.opts.databases or [self.client.database]))
        out = transform_server(payload)
        out.findings.extend(findings)
        out.meta["seconds"] = round(time.perf_counter() - started, 3)
        log.info("postgres.collect", server=self.client.server, roles=len(out.nodes), edges=len(out.edges))
        return out

    # -- actions ---------------------------------------------------------------------------

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        result = self.spec_for(action, node).handler(self, node, ctx)
        log.info("postgres.action", node=node.id, action=action, changed=result.changed, ok=result.ok,
                 dry_run=ctx.dry_run, incident=ctx.incident)
        return result

    # the executor's last step of a rotate (and a drifted rotate re-applied) retires the old password
    @table.action("rotate", types=PASSWORDS, kinds=PASSWORD_KINDS, undo=False, permissions=[ALTER, SIGNAL])
    def _rotate(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.contain(self.client, node, ctx, action="rotate", changed_at=self.changed_at)

    @table.action("disable", types=PASSWORDS, kinds=PASSWORD_KINDS, undo=True, permissions=[ALTER, SIGNAL])
    def _disable(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.contain(self.client, node, ctx, action="disable", changed_at=self.changed_at)

    @table.action("revoke", types=PASSWORDS, kinds=PASSWORD_KINDS, undo=True, permissions=[ALTER, SIGNAL])
    def _revoke(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.contain(self.client, node, ctx, action="revoke", changed_at=self.changed_at)

    @table.action("expire", types=PASSWORDS, kinds=PASSWORD_KINDS, undo=False, permissions=[ALTER])
    def _expire(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.expire(self.client, node, ctx)

    @table.action("rollback", types=PASSWORDS, kinds=PASSWORD_KINDS, probe="none", permissions=[ALTER])
    def _rollback(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.allow_login(self.client, node, ctx)

    @table.action("disable", types=ROLES, kinds=ROLE_KINDS, undo=True, permissions=[ALTER, SIGNAL])
    def _disable_role(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.contain(self.client, node, ctx, action="disable", changed_at=self.changed_at)

    @table.action("rollback", types=ROLES, kinds=ROLE_KINDS, probe="none", permissions=[ALTER])
    def _rollback_role(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.allow_login(self.client, node, ctx)

    # -- rotation --------------------------------------------------------------------------

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        if node.kind is not NodeKind.PASSWORD:
            raise self._unsupported("create_replacement", node.id)
        rep = actions.rotate_password(self.client, node, ctx, self.changed_at)
        log.info("postgres.replacement.created", node=node.id, new=rep.new_id, incident=ctx.incident)
        return rep

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        """A password whose value was lost in a crash: nobody holds it, and the next rotation replaces
        it (a role has one password), so there is nothing to delete."""
        return ActionResult(new_id, "discard_replacement", changed=False,
                            detail="a role has one password: the next one replaces it")

    # -- probe -----------------------------------------------------------------------------

    def probe(self, node: Node) -> ProbeResult:
        try:
            return actions.probe(self.client, node)
        except ConnectorError as err:
            return ProbeResult(node.id, None, f"probe failed: {err}")

    def probe_many(self, nodes: list[Node]) -> list[ProbeResult]:
        return [self.probe(n) for n in nodes]  # one connection: reads are quick and serialised anyway
