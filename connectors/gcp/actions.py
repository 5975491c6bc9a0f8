"""Actions, rotation helpers and probes of the GCP connector: plain functions over the client.

Every action reads the current state first, so a repeat reports `changed=False`, and a
`NOT_FOUND` on the mutating call (deleted in between) counts as already done. With
`ctx.dry_run` nothing is changed: the result says what would be.

`keys` (a `collect.KeyNames`) turns a key node into its resource name.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.gcp.collect import USER_MANAGED, KeyNames
from connectors.gcp.transform import (
    NO_EXPIRY_YEAR,
    PROVIDER,
    account_id,
    account_resource,
    email_from_key_name,
    key_id_from_name,
    key_node_id,
)
from revoke.connector import ActionContext, ActionResult, ConnectorError, ProbeResult, Replacement, Secret
from revoke.errors import RevokeError
from revoke.model import Node, NodeKind

if TYPE_CHECKING:
    from connectors.gcp.client import GcpClient


def account_node_resource(node: Node) -> str:
    email = node.id.removeprefix(account_id(""))
    return str(node.attrs.get("resource") or account_resource(email))


def _get_or_none(client: GcpClient, rpc: str, name: str, node: str) -> Any | None:
    """The key's or account's public metadata, or None when it no longer exists."""
    try:
        return client.call(rpc, name, {"name": name}, read=True, node=node)
    except ConnectorError as err:
        if err.code == "NOT_FOUND":
            return None
        raise


def _mutate(client: GcpClient, rpc: str, name: str, node: Node) -> bool:
    """Run one idempotent mutation; False when the resource vanished meanwhile."""
    try:
        client.call(rpc, name, {"name": name}, read=False, node=node.id)
    except ConnectorError as err:
        if err.code == "NOT_FOUND":
            return False
        raise
    return True


def _result(node: Node, action: str, changed: bool, detail: str, ctx: ActionContext, **data: object) -> ActionResult:
    if ctx.dry_run and changed:
        return ActionResult(node.id, action, ok=True, changed=False, detail=f"dry run: would {detail}",
                            data={"dry_run": True, **data})
    return ActionResult(node.id, action, ok=True, changed=changed, detail=detail, data=dict(data))


# -- keys ---------------------------------------------------------------------------------------

def disable_key(client: GcpClient, keys: KeyNames, node: Node, ctx: ActionContext, *, action: str) -> ActionResult:
    """`disable`, `revoke` and the last step of `rotate` all disable the old key now; `revoke`
    leaves the deletion to `finalize`."""
    name = keys.name(node)
    key = _get_or_none(client, "GetServiceAccountKey", name, node.id)
    finalize = {"finalize": "delete the key"} if action == "revoke" else {}
    if key is None:
        return _result(node, action, False, "key already deleted", ctx, key=name)
    if key.disabled:
        return _result(node, action, False, "key already disabled", ctx, key=name, **finalize)
    if ctx.dry_run:
        return _result(node, action, True, "disable the key", ctx, key=name, **finalize)
    changed = _mutate(client, "DisableServiceAccountKey", name, node)
    return _result(node, action, changed, "key disabled" if changed else "key already deleted", ctx,
                   key=name, **finalize)


def enable_key(client: GcpClient, keys: KeyNames, node: Node, ctx: ActionContext) -> ActionResult:
    """`rollback`: a disabled key comes back; a deleted (finalized) one cannot."""
    action = "rollback"
    name = keys.name(node)
    key = _get_or_none(client, "GetServiceAccountKey", name, node.id)
    if key is None:
        raise ConnectorError(PROVIDER, action, "cannot roll back: the key was deleted (finalized); "
                             "create a new key instead", node=node.id)
    if not key.disabled:
        return _result(node, action, False, "key already enabled", ctx, key=name)
    if ctx.dry_run:
        return _result(node, action, True, "enable the key", ctx, key=name)
    if not _mutate(client, "EnableServiceAccountKey", name, node):
        raise ConnectorError(PROVIDER, action, "cannot roll back: the key was deleted", node=node.id)
    return _result(node, action, True, "key enabled", ctx, key=name)


def delete_key(client: GcpClient, keys: KeyNames, node: Node, ctx: ActionContext, *, action: str) -> ActionResult:
    """Irreversible: used by `finalize` (after revoke) and `discard_replacement`."""
    name = keys.locate(node)
    if name is None:
        return _result(node, action, False, "key not found in any configured project", ctx)
    if ctx.dry_run:
        exists = _get_or_none(client, "GetServiceAccountKey", name, node.id) is not None
        return _result(node, action, exists, "delete the key" if exists else "key already deleted", ctx, key=name)
    changed = _mutate(client, "DeleteServiceAccountKey", name, node)
    return _result(node, action, changed, "key deleted" if changed else "key already deleted", ctx, key=name)


def create_key(client: GcpClient, keys: KeyNames, node: Node, ctx: ActionContext) -> Replacement:
    """A new user-managed key for the same account. Its key-file JSON goes into `Secret` only."""
    if ctx.dry_run:
        raise ConnectorError(PROVIDER, "create_replacement", "dry run: no key created", node=node.id)
    account = keys.name(node).rsplit("/keys/", 1)[0]
    created = client.call("CreateServiceAccountKey", account, {"name": account}, read=False, node=node.id)
    new_key_id = key_id_from_name(created.name)
    key_json = bytes(created.private_key_data).decode()
    try:
        file_key_id = json.loads(key_json).get("private_key_id", "")
    except ValueError:
        file_key_id = ""
    if file_key_id and file_key_id != new_key_id:
        raise ConnectorError(PROVIDER, "CreateServiceAccountKey",
                             f"key file id does not match key name ({new_key_id})", node=node.id)
    new_name = str(created.name)
    del created  # the response holds the private key: drop it as soon as it is copied
    keys.remember([new_name])
    return Replacement(
        old_id=node.id, new_id=key_node_id(new_key_id), kind=NodeKind.SERVICE_ACCOUNT_KEY,
        material=Secret({"key_json": key_json, "private_key_id": new_key_id}),
        attrs={"service_account": email_from_key_name(new_name), "resource": new_name},
    )


def sibling_keys(client: GcpClient, keys: KeyNames, node: Node) -> set[str]:
    """The other user-managed keys of the same service account."""
    account = keys.name(node).rsplit("/keys/", 1)[0]
    listed = client.call("ListServiceAccountKeys", account, {"name": account, "key_types": [USER_MANAGED]},
                         read=True, node=node.id)
    names = [k.name for k in listed.keys]
    keys.remember(names)
    return {key_node_id(key_id_from_name(n)) for n in names} - {node.id}


def replacement_node(new_id: str, ctx: ActionContext) -> Node:
    """A replacement is rarely in the graph; the key it replaced names the same account."""
    def lookup(node_id: str) -> Node | None:
        try:
            return ctx.get_node(node_id)
        except (KeyError, LookupError, RevokeError):
            return None

    known = lookup(new_id)
    if known is not None:
        return known
    for old_id, nid in ctx.replacements.items():
        old = lookup(old_id) if nid == new_id else None
        email = (old.owner or old.attrs.get("service_account")) if old is not None else None
        if email:
            return Node(new_id, NodeKind.SERVICE_ACCOUNT_KEY, PROVIDER, owner=str(email))
    return Node(new_id, NodeKind.SERVICE_ACCOUNT_KEY, PROVIDER)


# -- service accounts ---------------------------------------------------------------------------

def set_account_disabled(client: GcpClient, node: Node, ctx: ActionContext, *, action: str) -> ActionResult:
    """`disable` disables the account (none of its keys works then); `rollback` enables it."""
    resource = account_node_resource(node)
    acct = _get_or_none(client, "GetServiceAccount", resource, node.id)
    if acct is None:
        if action == "rollback":
            raise ConnectorError(PROVIDER, "rollback", "cannot roll back: the service account was deleted",
                                 node=node.id)
        return _result(node, action, False, "service account already deleted", ctx, account=resource)
    want_disabled = action == "disable"
    if bool(acct.disabled) == want_disabled:
        state = "disabled" if want_disabled else "enabled"
        return _result(node, action, False, f"service account already {state}", ctx, account=resource)
    verb = "disable" if want_disabled else "enable"
    if ctx.dry_run:
        return _result(node, action, True, f"{verb} the service account", ctx, account=resource)
    rpc = "DisableServiceAccount" if want_disabled else "EnableServiceAccount"
    if not _mutate(client, rpc, resource, node):
        if action == "rollback":
            raise ConnectorError(PROVIDER, "rollback", "cannot roll back: the service account was deleted",
                                 node=node.id)
        return _result(node, action, False, "service account already deleted", ctx, account=resource)
    return _result(node, action, True, f"service account {verb}d", ctx, account=resource)


def keep_account(node: Node, ctx: ActionContext) -> ActionResult:
    """`finalize` of an account: nothing to do, accounts are left disabled."""
    return _result(node, "finalize", False, "service accounts are left disabled, never deleted", ctx)


# -- probes -------------------------------------------------------------------------------------

def probe_key(client: GcpClient, keys: KeyNames, node: Node) -> ProbeResult:
    """A key is dead if it is gone, disabled or expired, or if its account is gone or disabled (a
    disabled account still lists its keys as enabled: both are read)."""
    name = keys.name(node)
    account = name.rsplit("/keys/", 1)[0]
    key = _get_or_none(client, "GetServiceAccountKey", name, node.id)
    acct = _get_or_none(client, "GetServiceAccount", account, node.id)
    dead: list[str] = []
    if key is None:
        dead.append("GetServiceAccountKey: NOT_FOUND (key deleted)")
    elif key.disabled:
        dead.append("GetServiceAccountKey: disabled=True")
    else:
        before = key.valid_before_time
        if before is not None and before.year < NO_EXPIRY_YEAR and before <= datetime.now(UTC):
            dead.append(f"GetServiceAccountKey: expired at {before.isoformat()}")
    if acct is None:
        dead.append("GetServiceAccount: NOT_FOUND (account deleted)")
    elif acct.disabled:
        dead.append("GetServiceAccount: disabled=True (no key of a disabled account works)")
    if dead:
        return ProbeResult(node.id, False, "; ".join(dead))
    return ProbeResult(node.id, True, "GetServiceAccountKey: disabled=False; GetServiceAccount: disabled=False")


def probe_account(client: GcpClient, keys: KeyNames, node: Node) -> ProbeResult:
    acct = _get_or_none(client, "GetServiceAccount", account_node_resource(node), node.id)
    if acct is None:
        return ProbeResult(node.id, False, "GetServiceAccount: NOT_FOUND (account deleted)")
    if acct.disabled:
        return ProbeResult(node.id, False, "GetServiceAccount: disabled=True")
    return ProbeResult(node.id, True, "GetServiceAccount: disabled=False")

