"""The Vault collect sequence: which sources were used, what fell back, and why (findings).

Token parents are never returned by token lookups; `parent_source` picks where they come from
(`meta.parent_source` in the snapshot says which one was used):
  raw    `sys/raw/sys/token/id/*`: on in dev mode, `raw_storage_endpoint = true` in production,
         and a root (or sudo on sys/raw) collector token. Entries hold token values: only
         accessors, parent links and fingerprints are kept (fingerprints let a token found by
         value in a KV secret resolve to its accessor node).
  audit  a file audit device declared in the server config (the API refuses to enable one),
         `audit_log` readable by revoke, and `update` on `sys/audit-hash/<device>`; token
         creation responses link the requester's accessor HMAC to the new one.
  none   declare parents in the inventory; a finding says so.
`auto` tries raw, then audit (when `audit_log` is set), then none.

`can_read` comes from `sys/capabilities-accessor` (root only on OpenBao); for a non-root
collector it falls back to evaluating the policies' ACL rules (needs read on
sys/policies/acl/*) and says so in a finding. A 401/403 on one area (policies, a mount, leases)
becomes a finding; anything else (sealed, 5xx, 429) stops the collection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.vault import collect as get
from connectors.vault import transform as tf
from connectors.vault import transform_material as mat
from connectors.vault.client import PROVIDER, VaultApi
from connectors.vault.ids import secret_node_id
from connectors.vault.options import VaultOptions
from revoke.connector import Collected, CollectFinding, ConnectorError

DENIED = ("401", "403")


def _finding(code: str, message: str, severity: str = "warning", node: str | None = None) -> CollectFinding:
    return CollectFinding(code=f"vault.{code}", message=message, severity=severity, node=node, source="vault")


def collect_snapshot(api: VaultApi, opts: VaultOptions, log: Any) -> Collected:
    start = time.monotonic()
    out = Collected()
    self_data = (api.get("auth/token/lookup-self") or {}).get("data") or {}
    collector = str(self_data.get("accessor") or "")  # only the accessor: `id` is the token value
    del self_data
    lookups = get.get_token_lookups(api)
    if not lookups:
        out.findings.append(_finding("no_tokens", "no token accessors listed; the collector token should at "
                                     "least see itself: check its `sudo` on auth/token/accessors", "error"))

    pairs, fps, source = _parents(api, opts, lookups, out)

    try:
        out.nodes += tf.transform_policies(get.get_policies(api))
    except ConnectorError as exc:
        _denied_or_raise(exc, out, "policies_unreadable", "policy nodes not collected")

    read_paths: dict[str, str] = {}
    secrets: list[mat.KvSecret] = []
    mounts = _table_or_empty(get.get_mounts, api, out, "mounts_unreadable", "KV and PKI mounts not collected")
    for mount in tf.kv2_mounts(mounts):
        try:
            for path in get.get_kv_paths(api, mount, opts.kv_page_size or 500):
                secrets.append(get.get_kv_secret(api, mount, path))
                read_paths[f"{mount}/data/{path}"] = secret_node_id(mount, path)
        except ConnectorError as exc:
            _denied_or_raise(exc, out, "kv_unreadable", f"KV mount {mount} not fully collected")
    fps.update(get.get_stored_token_fps(api, secrets, fps))
    nodes, edges = tf.transform_tokens(lookups, fps, collector)
    out.nodes += nodes
    out.edges += edges + tf.transform_parents(pairs, lookups, source)
    kv_nodes, kv_edges = mat.transform_kv(secrets, fps)
    out.nodes += kv_nodes
    out.edges += kv_edges

    for mount in tf.pki_mounts(mounts):
        try:
            p_nodes, p_edges = mat.transform_pki(get.get_pki(api, mount))
        except ConnectorError as exc:
            _denied_or_raise(exc, out, "pki_unreadable", f"PKI mount {mount} not collected")
            continue
        out.nodes += p_nodes
        out.edges += p_edges

    approles: list[tf.AppRolePayload] = []
    auth_mounts = _table_or_empty(get.get_auth_mounts, api, out, "auth_unreadable", "AppRole roles not collected")
    for mount in tf.approle_mounts(auth_mounts):
        try:
            payload = get.get_approle(api, mount)
        except ConnectorError as exc:
            _denied_or_raise(exc, out, "approle_unreadable", f"AppRole mount {mount} not collected")
            continue
        approles.append(payload)
        a_nodes, a_edges = tf.transform_approle(payload, lookups)
        out.nodes += a_nodes
        out.edges += a_edges

    try:
        out.nodes += tf.transform_leases(get.get_leases(api))
        lease_source = "sys/leases/lookup"
    except ConnectorError as exc:
        _denied_or_raise(exc, out, "leases_unlistable", "leases not collected (listing needs sudo)")
        lease_source = "none"

    mint_paths = tf.secret_id_paths(approles)
    caps_source = _capabilities(api, lookups, read_paths, mint_paths, out)

    out.meta = {
        "url": api.url,
        "collector_accessor": collector,
        "parent_source": source,
        "capabilities_source": caps_source,
        "lease_source": lease_source,
        "counts": {"tokens": len(lookups), "secrets": len(secrets), "parent_edges": len(pairs)},
        "duration_s": round(time.monotonic() - start, 4),
    }
    if opts.observations:
        from connectors.vault.audit import observe

        observe(api, opts, lookups, read_paths, collector, out)
    log.info("vault.collect", nodes=len(out.nodes), edges=len(out.edges), parent_source=source,
             capabilities_source=caps_source, duration_s=out.meta["duration_s"])
    return out


def _table_or_empty(read: Callable[[VaultApi], dict[str, dict[str, Any]]], api: VaultApi, out: Collected,
                    code: str, what: str) -> dict[str, dict[str, Any]]:
    """A mount table, or none (and a finding) when the collector may not read it."""
    try:
        return read(api)
    except ConnectorError as exc:
        _denied_or_raise(exc, out, code, what)
        return {}


def _denied_or_raise(exc: ConnectorError, out: Collected, code: str, what: str) -> None:
    """A 401/403 on one area becomes a finding; anything else (sealed, 5xx, 429) stops collect."""
    if exc.code not in DENIED:
        raise exc
    out.findings.append(_finding(code, f"{what}: {exc}"))


def _parents(api: VaultApi, opts: VaultOptions, lookups: dict[str, dict[str, Any]], out: Collected
             ) -> tuple[set[tuple[str, str]], dict[str, str], str]:
    """Parent pairs, token fingerprints and the source used: raw, then audit, then none."""
    mode = opts.parent_source
    if mode in ("auto", "raw"):
        try:
            pairs, fps = tf.transform_raw_tokens(get.get_raw_token_entries(api))
            return pairs, fps, "raw"
        except ConnectorError as exc:
            if exc.code not in (*DENIED, "404", "405", "400") or mode == "raw":
                raise
            out.findings.append(_finding("raw_unavailable", f"raw storage unavailable ({exc}); "
                                         "enable raw_storage_endpoint or configure a file audit log"))
    if mode in ("auto", "audit") and opts.audit_log:
        device = opts.audit_device or _find_audit_device(api, opts.audit_log)
        if device:
            hashes = get.get_audit_hashes(api, device, lookups)
            lines = Path(opts.audit_log).read_text(encoding="utf-8", errors="replace").splitlines()
            return tf.transform_audit_parents(lines, hashes), {}, f"audit:{device}"
        out.findings.append(_finding("audit_device_unknown", f"no file audit device writes {opts.audit_log}; "
                                     "set audit_device"))
    elif mode == "audit":
        raise ConnectorError(PROVIDER, "configure", "parent_source is audit but no audit_log is configured")
    out.findings.append(_finding(
        "no_parent_source", "parent_of edges not collected (no raw storage, no audit log): declare token "
        "parents in the inventory, or revoking a parent will surprise you with its children", "error"))
    return set(), {}, "none"


def _find_audit_device(api: VaultApi, audit_log: str) -> str | None:
    files = get.get_audit_devices(api)
    target = str(Path(audit_log).resolve())
    for name, dev in files.items():
        if str(Path(str((dev.get("options") or {}).get("file_path") or "")).resolve()) == target:
            return name
    return next(iter(files)) if len(files) == 1 else None


def _capabilities(api: VaultApi, lookups: dict[str, dict[str, Any]], read_paths: dict[str, str],
                  mint_paths: dict[str, str], out: Collected) -> str:
    """Adds `can_read` and `can_mint` edges; returns where the capabilities came from."""
    paths = sorted(read_paths) + sorted(mint_paths)
    try:
        caps = get.get_capabilities(api, lookups, paths)
    except ConnectorError as exc:
        if exc.code not in DENIED:
            raise
        from connectors.vault.acl import fallback_capabilities

        caps, note = fallback_capabilities(api, lookups, paths)
        out.findings.append(_finding(
            "capabilities_accessor_forbidden",
            f"sys/capabilities-accessor refused ({exc}); can_read/can_mint edges were computed from the "
            f"policies' ACL rules instead ({note}); identity-group and Sentinel policies are not seen that way",
            "warning"))
        source = "acl-fallback" if caps else "none"
    else:
        source = "sys/capabilities-accessor"
    out.edges += tf.transform_can_read(caps, read_paths)
    out.edges += tf.transform_can_mint(caps, mint_paths)
    return source
