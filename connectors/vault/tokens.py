"""Vault tokens, by accessor only (revoke never keeps a token value): revoke one with its
children, make an orphan replacement with the same policies, find replacements made before a
crash, probe.

Ids: `vault:token:<accessor>` (connectors.vault.ids). A replacement carries
`meta.replaces = <old accessor>`: that is how `siblings` finds it again.
"""

from __future__ import annotations

from typing import Any

from connectors.vault.client import PROVIDER, VaultApi
from connectors.vault.collect import get_token_lookups, lookup_accessor
from connectors.vault.ids import native, token_node_id
from revoke.connector import ConnectorError, ProbeResult, Replacement, Secret
from revoke.model import Node, NodeKind


def revoke_token(api: VaultApi, node_id: str) -> tuple[bool, str]:
    acc = native(node_id)
    if lookup_accessor(api, acc) is None:
        return False, "token already revoked or expired"
    api.post("auth/token/revoke-accessor", {"accessor": acc}, node=node_id)
    return True, "token and its child tokens revoked"


def new_token(api: VaultApi, node: Node, incident: str) -> Replacement:
    """An orphan token with the old one's policies, metadata, display name, renewability and TTL."""
    acc = native(node.id)
    old = lookup_accessor(api, acc)
    if old is None:
        raise ConnectorError(PROVIDER, "create_replacement", "the old token is gone; its policies are "
                             "unknown, so no replacement can be made", node=node.id)
    policies = sorted(set(old.get("policies") or []) - {"default"}) or ["default"]
    meta = {**(old.get("meta") or {}), "replaces": acc, "incident": incident}
    body: dict[str, Any] = {"policies": policies, "meta": meta, "display_name": old.get("display_name") or "",
                            "renewable": bool(old.get("renewable", True))}
    if old.get("creation_ttl"):
        body["ttl"] = f"{int(old['creation_ttl'])}s"
    # an orphan, so revoking the compromised token's tree cannot take the replacement with it
    data = api.post("auth/token/create-orphan", body, node=node.id) or {}
    new = data.get("auth") or {}
    return Replacement(old_id=node.id, new_id=token_node_id(new["accessor"]), kind=NodeKind.TOKEN,
                       material=Secret({"token": new["client_token"]}), attrs={"policies": policies})


def replacements_of(api: VaultApi, node_id: str) -> set[str]:
    """Live tokens whose `meta.replaces` names this token's accessor."""
    acc = native(node_id)
    return {token_node_id(a) for a, d in get_token_lookups(api).items() if (d.get("meta") or {}).get("replaces") == acc}


def probe_token(api: VaultApi, node: Node) -> ProbeResult:
    if lookup_accessor(api, native(node.id)) is None:
        return ProbeResult(node.id, False, "lookup-accessor: 400 invalid accessor")
    return ProbeResult(node.id, True, "lookup-accessor: token found")
