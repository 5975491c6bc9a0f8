"""Actions and probes of the GCP connector (split from `connectors.gcp` to keep modules small).

Every action reads the current state first, so a repeat reports `changed=False`, and a
`NOT_FOUND` on the mutating call (deleted in between) counts as already done. With
`ctx.dry_run` nothing is changed: the result says what would be.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors import gcp_client as gc
from revoke.connector import ActionContext, ActionResult, ConnectorError, ProbeResult
from revoke.model import Node

if TYPE_CHECKING:
    from connectors.gcp import GcpConnector

_NO_EXPIRY_YEAR = 9999


def _mutate(conn: GcpConnector, call: str, name: str, node: Node) -> bool:
    """Run one idempotent mutation; False when the resource vanished meanwhile."""
    fn = {
        "DisableServiceAccountKey": conn._c().iam.disable_service_account_key,
        "EnableServiceAccountKey": conn._c().iam.enable_service_account_key,
        "DeleteServiceAccountKey": conn._c().iam.delete_service_account_key,
        "DisableServiceAccount": conn._c().iam.disable_service_account,
        "EnableServiceAccount": conn._c().iam.enable_service_account,
    }[call]
    try:
        conn._call(call, name, fn, {"name": name}, read=False, node=node.id)
    except ConnectorError as err:
        if gc.has_status(err, "NOT_FOUND"):
            return False
        raise
    return True


def _result(node: Node, action: str, changed: bool, detail: str, ctx: ActionContext, **data: object) -> ActionResult:
    if ctx.dry_run and changed:
        return ActionResult(node.id, action, ok=True, changed=False, detail=f"dry run: would {detail}",
                            data={"dry_run": True, **data})
    return ActionResult(node.id, action, ok=True, changed=changed, detail=detail, data=dict(data))


def key_action(conn: GcpConnector, action: str, node: Node, ctx: ActionContext) -> ActionResult:
    if action == "finalize":
        return delete_key(conn, node, ctx, action="finalize")
    name = conn._key_name(node)
    key = conn._get_key(name, node.id)
    if action == "rollback":
        if key is None:
            raise ConnectorError("gcp", "rollback", "cannot roll back: the key was deleted (finalized); "
                                 "create a new key instead", node=node.id)
        if not key.disabled:
            return _result(node, action, False, "key already enabled", ctx, key=name)
        if ctx.dry_run:
            return _result(node, action, True, "enable the key", ctx, key=name)
        if not _mutate(conn, "EnableServiceAccountKey", name, node):
            raise ConnectorError("gcp", "rollback", "cannot roll back: the key was deleted", node=node.id)
        return _result(node, action, True, "key enabled", ctx, key=name)
    # disable, revoke and the last step of rotate all disable the old key now
    finalize = {"finalize": "delete the key"} if action == "revoke" else {}
    if key is None:
        return _result(node, action, False, "key already deleted", ctx, key=name)
    if key.disabled:
        return _result(node, action, False, "key already disabled", ctx, key=name, **finalize)
    if ctx.dry_run:
        return _result(node, action, True, "disable the key", ctx, key=name, **finalize)
    changed = _mutate(conn, "DisableServiceAccountKey", name, node)
    return _result(node, action, changed, "key disabled" if changed else "key already deleted", ctx,
                   key=name, **finalize)


def delete_key(conn: GcpConnector, node: Node, ctx: ActionContext, *, action: str) -> ActionResult:
    """Irreversible: used by `finalize` (after revoke) and `discard_replacement`."""
    name = conn._locate_key(node)
    if name is None:
        return _result(node, action, False, "key not found in any configured project", ctx)
    if ctx.dry_run:
        exists = conn._get_key(name, node.id) is not None
        return _result(node, action, exists, "delete the key" if exists else "key already deleted", ctx, key=name)
    changed = _mutate(conn, "DeleteServiceAccountKey", name, node)
    return _result(node, action, changed, "key deleted" if changed else "key already deleted", ctx, key=name)


def account_action(conn: GcpConnector, action: str, node: Node, ctx: ActionContext) -> ActionResult:
    from connectors.gcp import account_node_resource

    resource = account_node_resource(node)
    if action == "finalize":
        return _result(node, action, False, "service accounts are left disabled, never deleted", ctx)
    acct = conn._get_account(resource, node.id)
    if acct is None:
        if action == "rollback":
            raise ConnectorError("gcp", "rollback", "cannot roll back: the service account was deleted",
                                 node=node.id)
        return _result(node, action, False, "service account already deleted", ctx, account=resource)
    want_disabled = action == "disable"
    if bool(acct.disabled) == want_disabled:
        state = "disabled" if want_disabled else "enabled"
        return _result(node, action, False, f"service account already {state}", ctx, account=resource)
    verb = "disable" if want_disabled else "enable"
    if ctx.dry_run:
        return _result(node, action, True, f"{verb} the service account", ctx, account=resource)
    call = "DisableServiceAccount" if want_disabled else "EnableServiceAccount"
    if not _mutate(conn, call, resource, node):
        if action == "rollback":
            raise ConnectorError("gcp", "rollback", "cannot roll back: the service account was deleted",
                                 node=node.id)
        return _result(node, action, False, "service account already deleted", ctx, account=resource)
    return _result(node, action, True, f"service account {verb}d", ctx, account=resource)


def probe_key(conn: GcpConnector, node: Node) -> ProbeResult:
    name = conn._key_name(node)
    account = name.rsplit("/keys/", 1)[0]
    key = conn._get_key(name, node.id)
    acct = conn._get_account(account, node.id)
    dead: list[str] = []
    if key is None:
        dead.append("GetServiceAccountKey: NOT_FOUND (key deleted)")
    elif key.disabled:
        dead.append("GetServiceAccountKey: disabled=True")
    else:
        before = key.valid_before_time
        if before is not None and before.year < _NO_EXPIRY_YEAR and before <= datetime.now(UTC):
            dead.append(f"GetServiceAccountKey: expired at {before.isoformat()}")
    if acct is None:
        dead.append("GetServiceAccount: NOT_FOUND (account deleted)")
    elif acct.disabled:
        dead.append("GetServiceAccount: disabled=True (no key of a disabled account works)")
    if dead:
        return ProbeResult(node.id, False, "; ".join(dead))
    return ProbeResult(node.id, True, "GetServiceAccountKey: disabled=False; GetServiceAccount: disabled=False")


def probe_account(conn: GcpConnector, node: Node) -> ProbeResult:
    from connectors.gcp import account_node_resource

    acct = conn._get_account(account_node_resource(node), node.id)
    if acct is None:
        return ProbeResult(node.id, False, "GetServiceAccount: NOT_FOUND (account deleted)")
    if acct.disabled:
        return ProbeResult(node.id, False, "GetServiceAccount: disabled=True")
    return ProbeResult(node.id, True, "GetServiceAccount: disabled=False")
