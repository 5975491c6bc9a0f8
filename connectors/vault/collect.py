"""Vault reads (the "get" of get -> transform): each function calls the API and returns the
payload as Vault gave it, for `connectors.vault.transform` and `transform_material` to turn into
nodes and edges.

Secret values are read here (raw token entries, KV data) only so the transform can fingerprint
them and recognise credentials inside; the transform keeps no value. The `lookup_*` reads answer
None for something gone (revoked, expired, destroyed): actions and probes use them too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from connectors.recognize import recognize
from connectors.vault.client import VaultApi
from connectors.vault.ids import (
    cert_node_id,
    issuer_node_id,
    lease_node_id,
    role_node_id,
    secret_id_node_id,
    secret_node_id,
    token_node_id,
)
from connectors.vault.transform import AppRolePayload, mount_table
from connectors.vault.transform_material import KvSecret, PkiPayload
from revoke.connector import ConnectorError
from revoke.model import NodeKind, fingerprint

# ---------------------------------------------------------------------------------------------
# Tokens


def lookup_accessor(api: VaultApi, accessor: str) -> dict[str, Any] | None:
    """lookup-accessor data, or None for "invalid accessor" (400: revoked, expired or never existed)."""
    try:
        body = api.post("auth/token/lookup-accessor", {"accessor": accessor}, node=token_node_id(accessor))
    except ConnectorError as exc:
        if exc.code == "400":
            return None
        raise
    return (body or {}).get("data") or {}


def get_token_lookups(api: VaultApi) -> dict[str, dict[str, Any]]:
    """accessor -> lookup-accessor data, for every token with an accessor (a token revoked or
    expired between the list and the lookup is left out)."""
    out: dict[str, dict[str, Any]] = {}
    for acc in api.list_keys("auth/token/accessors"):
        data = lookup_accessor(api, acc)
        if data is not None:
            out[acc] = data
    return out


def get_raw_token_entries(api: VaultApi) -> list[dict[str, Any]]:
    """Token store entries from `sys/raw` (they hold token values: transform at once, keep none)."""
    entries = []
    for key in api.list_keys("sys/raw/sys/token/id/"):
        body = api.get(f"sys/raw/sys/token/id/{key}") or {}
        value = (body.get("data") or {}).get("value")
        if value:
            entries.append(json.loads(value))
    return entries


def get_audit_devices(api: VaultApi) -> dict[str, dict[str, Any]]:
    """Enabled file audit devices: name -> settings (`options.file_path`)."""
    return {k: v for k, v in mount_table(api.get("sys/audit") or {}).items() if v.get("type") == "file"}


def get_audit_hashes(api: VaultApi, device: str, accessors: Iterable[str]) -> dict[str, str]:
    """HMAC (as the audit device writes it) -> accessor."""
    out = {}
    for acc in accessors:
        body = api.post(f"sys/audit-hash/{device}", {"input": acc}, node=token_node_id(acc)) or {}
        digest = (body.get("data") or {}).get("hash") or body.get("hash")
        if digest:
            out[digest] = acc
    return out


# ---------------------------------------------------------------------------------------------
# Policies and mounts


def get_policies(api: VaultApi) -> dict[str, str]:
    out = {}
    for name in api.list_keys("sys/policies/acl"):
        body = api.get(f"sys/policies/acl/{name}") or {}
        out[name] = str((body.get("data") or {}).get("policy") or "")
    return out


def get_mounts(api: VaultApi) -> dict[str, dict[str, Any]]:
    return mount_table(api.get("sys/mounts") or {})


def get_auth_mounts(api: VaultApi) -> dict[str, dict[str, Any]]:
    return mount_table(api.get("sys/auth") or {})


# ---------------------------------------------------------------------------------------------
# KV v2


def get_kv_paths(api: VaultApi, mount: str, page: int) -> list[str]:
    """Every secret path under a KV v2 mount, listing folders recursively, page by page."""
    out: list[str] = []
    todo = [""]
    while todo:
        prefix = todo.pop()
        for key in api.list_keys(f"{mount}/metadata/{prefix}", page=page):
            (todo if key.endswith("/") else out).append(prefix + key)
    return sorted(out)


def get_kv_secret(api: VaultApi, mount: str, path: str) -> KvSecret:
    node = secret_node_id(mount, path)
    meta = (api.get(f"{mount}/metadata/{path}", node=node) or {}).get("data") or {}
    versions = meta.get("versions") or {}
    live = sorted(int(v) for v, info in versions.items() if not info.get("destroyed") and not info.get("deletion_time"))
    current = int(meta.get("current_version") or 0)
    data = None
    if current in live:
        body = api.get(f"{mount}/data/{path}", node=node) or {}
        data = ((body.get("data") or {}).get("data")) or {}
    return KvSecret(mount, path, data, current, str(meta.get("updated_time") or ""), live)


def get_stored_token_fps(api: VaultApi, secrets: list[KvSecret], known: dict[str, str]) -> dict[str, str]:
    """accessor -> fingerprint for live tokens found by value in KV secrets, looked up by value
    (`auth/token/lookup` takes it in the body), so the secret links to the accessor node
    whatever the parent source. Dead tokens (403/400) keep their `fp:` reference."""
    seen = set(known.values())
    out: dict[str, str] = {}
    for s in secrets:
        for item in recognize(s.data or {}):
            # only values shaped like Vault tokens (`fp:` refs): a GitHub or PyPI token must never
            # be sent to Vault's lookup endpoint
            if item.kind is not NodeKind.TOKEN or not item.ref.startswith("fp:") or item.fingerprint in seen:
                continue
            seen.add(item.fingerprint)
            value = _field(s.data or {}, item.fields[0])
            try:
                body = api.post("auth/token/lookup", {"token": value}, node=secret_node_id(s.mount, s.path)) or {}
            except ConnectorError as exc:
                if exc.code in ("400", "403"):
                    continue
                raise
            acc = (body.get("data") or {}).get("accessor")
            if acc:
                out[acc] = item.fingerprint
    return out


def _field(data: dict[str, Any], dotted: str) -> str:
    cursor: Any = data
    for part in dotted.split(".") if dotted else []:
        cursor = cursor[part]
    return str(cursor).strip()


# ---------------------------------------------------------------------------------------------
# Capabilities


def get_capabilities(api: VaultApi, lookups: dict[str, dict[str, Any]], paths: list[str]
                     ) -> dict[str, dict[str, list[str]]]:
    """accessor -> path -> capabilities. Raises ConnectorError (403 for a non-root collector).

    Capabilities depend only on a token's policies, entity (identity policies), inline policy
    and namespace, so one representative per distinct combination is asked: 200 CI tokens with
    the same policy cost one call, not 200 (each call over ~100 paths takes ~25 ms).
    """
    out: dict[str, dict[str, list[str]]] = {}
    if not paths:
        return out
    groups: dict[tuple[Any, ...], list[str]] = {}
    for acc, data in sorted(lookups.items()):
        key = (tuple(sorted(data.get("policies") or [])), data.get("entity_id") or "",
               fingerprint(str(data.get("inline_policy") or "")), data.get("namespace_path") or "")
        groups.setdefault(key, []).append(acc)
    for members in groups.values():
        rep = members[0]
        body = api.post("sys/capabilities-accessor", {"accessor": rep, "paths": paths}, node=token_node_id(rep)) or {}
        data = body.get("data") or body
        caps = {p: list(data.get(p) or []) for p in paths}
        for acc in members:
            out[acc] = caps
    return out


# ---------------------------------------------------------------------------------------------
# AppRole and leases


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
        if exc.code in ("400", "404"):
            return None
        raise
    return (body or {}).get("data") if body else None


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
    """Lease data, or None for "invalid lease" (400: revoked or expired)."""
    try:
        body = api.post("sys/leases/lookup", {"lease_id": lease_id}, node=lease_node_id(lease_id))
    except ConnectorError as exc:
        if exc.code == "400":
            return None
        raise
    return (body or {}).get("data") or {}


# ---------------------------------------------------------------------------------------------
# PKI


def get_pki(api: VaultApi, mount: str) -> PkiPayload:
    issuers = {}
    for iid in api.list_keys(f"{mount}/issuers"):
        issuers[iid] = (api.get(f"{mount}/issuer/{iid}", node=issuer_node_id(mount, iid)) or {}).get("data") or {}
    certs = {}
    for serial in api.list_keys(f"{mount}/certs"):
        certs[serial] = (api.get(f"{mount}/cert/{serial}", node=cert_node_id(mount, serial)) or {}).get("data") or {}
    return PkiPayload(mount, issuers, certs, default_issuer(api, mount) if issuers else "")


def default_issuer(api: VaultApi, mount: str) -> str:
    """The mount's default issuer id ('' when none is set)."""
    return str(((api.get(f"{mount}/config/issuers") or {}).get("data") or {}).get("default") or "")
