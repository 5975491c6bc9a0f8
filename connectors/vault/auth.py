"""AppRole secret-ids and leases: destroy or revoke them, probe them.

Ids: `vault:secret_id:<mount>/<role>/<accessor>`, `vault:lease:<lease id>` (connectors.vault.ids).
Destroying a secret-id does not revoke the tokens its logins minted, so `destroy_with_logins`
revokes those too.
"""

from __future__ import annotations

from typing import Any

from connectors.vault.client import VaultApi
from connectors.vault.collect import get_token_lookups, lookup_lease, lookup_secret_id
from connectors.vault.ids import native, split_secret_id, token_node_id
from connectors.vault.transform import role_tokens
from revoke.connector import ProbeResult
from revoke.model import Node

# ---------------------------------------------------------------------------------------------
# AppRole secret-ids


def destroy_secret_id(api: VaultApi, node_id: str) -> tuple[bool, str]:
    mount, role, acc = split_secret_id(node_id)
    # a second destroy is a 500 on the real server: look it up first
    if lookup_secret_id(api, mount, role, acc) is None:
        return False, "secret-id already gone"
    api.post(f"auth/{mount}/role/{role}/secret-id-accessor/destroy", {"secret_id_accessor": acc}, node=node_id)
    return True, "secret-id destroyed"


def destroy_with_logins(api: VaultApi, node_id: str) -> tuple[bool, str, dict[str, Any]]:
    """Destroy the secret-id, then revoke every live login token of its role: login tokens do not
    say which secret-id minted them, and destroying a secret-id leaves them alive."""
    mount, role, _ = split_secret_id(node_id)
    changed, detail = destroy_secret_id(api, node_id)
    revoked = []
    for acc in role_tokens(get_token_lookups(api), mount, role):
        api.post("auth/token/revoke-accessor", {"accessor": acc}, node=token_node_id(acc))
        revoked.append(token_node_id(acc))
    if revoked:
        detail += f"; revoked {len(revoked)} login token(s) of role {role}"
    return changed or bool(revoked), detail, {"revoked_tokens": revoked}


def probe_secret_id(api: VaultApi, node: Node) -> ProbeResult:
    mount, role, acc = split_secret_id(node.id)
    if lookup_secret_id(api, mount, role, acc) is None:
        return ProbeResult(node.id, False, "secret-id-accessor lookup: not found")
    return ProbeResult(node.id, True, "secret-id-accessor lookup: present")


# ---------------------------------------------------------------------------------------------
# Leases


def revoke_lease(api: VaultApi, node_id: str, *, prefix: bool = False) -> tuple[bool, str]:
    lid = native(node_id)
    if prefix:
        pfx = lid.rsplit("/", 1)[0]
        if not api.list_keys(f"sys/leases/lookup/{pfx}/"):
            return False, f"no leases left under {pfx}/"
        api.post(f"sys/leases/revoke-prefix/{pfx}", {}, node=node_id)
        return True, f"leases under {pfx}/ revoked"
    if lookup_lease(api, lid) is None:
        return False, "lease already revoked or expired"
    api.post("sys/leases/revoke", {"lease_id": lid}, node=node_id)
    return True, "lease revoked"


def probe_lease(api: VaultApi, node: Node) -> ProbeResult:
    if lookup_lease(api, native(node.id)) is None:
        return ProbeResult(node.id, False, "sys/leases/lookup: 400 invalid lease")
    return ProbeResult(node.id, True, "sys/leases/lookup: present")
