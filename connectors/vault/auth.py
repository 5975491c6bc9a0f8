"""Vault AppRole roles and secret-ids, and leases: collect, act, probe.

AppRole login tokens are orphans that carry `meta.role_name`; that is how a role is linked
to the tokens it minted (`can_mint`). Destroying a secret-id does not revoke those tokens,
so the destroy action revokes them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.vault.client import PROVIDER, VaultApi, status_of
from connectors.vault.collect import _ts, token_id
from revoke.connector import ConnectorError, ProbeResult
from revoke.model import Edge, Node, NodeKind, Relation

P = PROVIDER


def role_node_id(mount: str, role: str) -> str:
    return f"vault:approle:{mount}/{role}"


def secret_id_node_id(mount: str, role: str, accessor: str) -> str:
    return f"vault:secret_id:{mount}/{role}/{accessor}"


def split_secret_id(node_id: str) -> tuple[str, str, str]:
    rest = node_id.split(":", 2)[2]
    head, _, accessor = rest.rpartition("/")
    mount, _, role = head.rpartition("/")
    return mount, role, accessor


def approle_mounts(auth_mounts: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(m for m, v in auth_mounts.items() if v.get("type") == "approle")


def get_auth_mounts(api: VaultApi) -> dict[str, dict[str, Any]]:
    body = api.get("sys/auth") or {}
    data = body.get("data") or {k: v for k, v in body.items() if k.endswith("/")}
    return {k.rstrip("/"): v for k, v in data.items() if isinstance(v, dict)}


@dataclass
class AppRolePayload:
    mount: str
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret_ids: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # role -> accessor -> data


def get_approle(api: VaultApi, mount: str) -> AppRolePayload:
    out = AppRolePayload(mount)
    for role in api.list_keys(f"auth/{mount}/role"):
        out.roles[role] = (api.get(f"auth/{mount}/role/{role}", node=role_node_id(mount, role)) or {}).get("data") or {}
        out.secret_ids[role] = {}
        for acc in api.list_keys(f"auth/{mount}/role/{role}/secret-id"):
            data = lookup_secret_id(api, mount, role, acc)
            if data is not None:
                out.secret_ids[role][acc] = data
    return out


def lookup_secret_id(api: VaultApi, mount: str, role: str, acc: str) -> dict[str, Any] | None:
    """Secret-id metadata, or None when it is gone (404 on the real server)."""
    try:
        body = api.post(f"auth/{mount}/role/{role}/secret-id-accessor/lookup", {"secret_id_accessor": acc},
                        node=secret_id_node_id(mount, role, acc))
    except ConnectorError as exc:
        if status_of(exc) in (400, 404):
            return None
        raise
    return (body or {}).get("data") if body else None


def transform_approle(payload: AppRolePayload, token_lookups: dict[str, dict[str, Any]]) -> tuple[list[Node], list[Edge]]:
    nodes: list[Node] = []
    edges: list[Edge] = []
    m = payload.mount
    for role, data in sorted(payload.roles.items()):
        rid = role_node_id(m, role)
        nodes.append(Node(rid, NodeKind.ROLE, P, name=role,
                          attrs={"mount": m, "token_policies": sorted(data.get("token_policies") or []),
                                 "token_ttl": data.get("token_ttl") or 0}))
        for pol in sorted(data.get("token_policies") or []):
            edges.append(Edge(rid, f"vault:policy:{pol}", Relation.AUTHENTICATES_AS))
        for acc, sid in sorted(payload.secret_ids.get(role, {}).items()):
            nid = secret_id_node_id(m, role, acc)
            nodes.append(Node(nid, NodeKind.TOKEN, P, name=f"{role} secret-id",
                              created=_ts(sid.get("creation_time")), expires=_ts(sid.get("expiration_time")),
                              attrs={"mount": m, "role": role, "accessor": acc,
                                     "num_uses": sid.get("secret_id_num_uses") or 0,
                                     "metadata_keys": sorted((sid.get("metadata") or {}).keys())}))
            edges.append(Edge(nid, rid, Relation.AUTHENTICATES_AS))
        for acc in role_tokens(token_lookups, m, role):
            edges.append(Edge(rid, token_id(acc), Relation.CAN_MINT, attrs={"role_name": role}))
    return nodes, edges


def role_tokens(lookups: dict[str, dict[str, Any]], mount: str, role: str) -> list[str]:
    """Accessors of live tokens this role's logins minted."""
    return sorted(
        acc for acc, data in lookups.items()
        if (data.get("meta") or {}).get("role_name") == role and str(data.get("path") or "").startswith(
            f"auth/{mount}/login")
    )


def secret_id_paths(payloads: list[AppRolePayload]) -> dict[str, str]:
    """API path that mints secret-ids -> role node id (for `can_mint` token -> role)."""
    return {f"auth/{p.mount}/role/{r}/secret-id": role_node_id(p.mount, r) for p in payloads for r in p.roles}


def destroy_secret_id(api: VaultApi, node_id: str) -> tuple[bool, str]:
    mount, role, acc = split_secret_id(node_id)
    # a second destroy is a 500 on the real server: look it up first
    if lookup_secret_id(api, mount, role, acc) is None:
        return False, "secret-id already gone"
    api.post(f"auth/{mount}/role/{role}/secret-id-accessor/destroy", {"secret_id_accessor": acc}, node=node_id)
    return True, "secret-id destroyed"


def probe_secret_id(api: VaultApi, node: Node) -> ProbeResult:
    mount, role, acc = split_secret_id(node.id)
    if lookup_secret_id(api, mount, role, acc) is None:
        return ProbeResult(node.id, False, "secret-id-accessor lookup: not found")
    return ProbeResult(node.id, True, "secret-id-accessor lookup: present")


# ---------------------------------------------------------------------------------------------
# Leases


def lease_node_id(lease_id: str) -> str:
    return f"vault:lease:{lease_id}"


def get_leases(api: VaultApi) -> dict[str, dict[str, Any]]:
    """lease id -> lookup data, for every lease outside `auth/` (token leases are tokens)."""
    out: dict[str, dict[str, Any]] = {}
    todo = [""]
    while todo:
        prefix = todo.pop()
        for key in api.list_keys(f"sys/leases/lookup/{prefix}"):
            full = prefix + key
            if key.endswith("/"):
                if full != "auth/":
                    todo.append(full)
                continue
            data = lookup_lease(api, full)
            if data is not None:
                out[full] = data
    return out


def lookup_lease(api: VaultApi, lease_id: str) -> dict[str, Any] | None:
    try:
        body = api.post("sys/leases/lookup", {"lease_id": lease_id}, node=lease_node_id(lease_id))
    except ConnectorError as exc:
        if status_of(exc) == 400:  # "invalid lease": revoked or expired
            return None
        raise
    return (body or {}).get("data") or {}


def transform_leases(leases: dict[str, dict[str, Any]]) -> list[Node]:
    return [
        Node(lease_node_id(lid), NodeKind.TOKEN, P, name=lid.rsplit("/", 1)[0],
             created=_ts(data.get("issue_time")), expires=_ts(data.get("expire_time")),
             attrs={"renewable": bool(data.get("renewable")), "prefix": lid.rsplit("/", 1)[0]})
        for lid, data in sorted(leases.items())
    ]


def revoke_lease(api: VaultApi, node_id: str, *, prefix: bool = False) -> tuple[bool, str]:
    lid = node_id.split(":", 2)[2]
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
    lid = node.id.split(":", 2)[2]
    if lookup_lease(api, lid) is None:
        return ProbeResult(node.id, False, "sys/leases/lookup: 400 invalid lease")
    return ProbeResult(node.id, True, "sys/leases/lookup: present")
