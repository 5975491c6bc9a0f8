"""The Vault collect sequence: which sources were used, what fell back, and why (findings)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.vault import auth, pki
from connectors.vault import collect as vc
from connectors.vault.client import status_of
from revoke.connector import Collected, CollectFinding, ConnectorError

if TYPE_CHECKING:
    from connectors.vault.connector import VaultConnector

DENIED = (401, 403)


def _finding(code: str, message: str, severity: str = "warning", node: str | None = None) -> CollectFinding:
    return CollectFinding(code=f"vault.{code}", message=message, severity=severity, node=node, source="vault")


def run_collect(conn: VaultConnector) -> Collected:
    api = conn.api
    start = time.monotonic()
    out = Collected()
    self_data = (api.get("auth/token/lookup-self") or {}).get("data") or {}
    collector = str(self_data.get("accessor") or "")  # only the accessor: `id` is the token value
    del self_data
    lookups = vc.get_token_lookups(api)
    if not lookups:
        out.findings.append(_finding("no_tokens", "no token accessors listed; the collector token should at "
                                     "least see itself: check its `sudo` on auth/token/accessors", "error"))

    pairs, fps, source = _parents(conn, lookups, out)

    try:
        out.nodes += vc.transform_policies(vc.get_policies(api))
    except ConnectorError as exc:
        _denied_or_raise(exc, out, "policies_unreadable", "policy nodes not collected")

    read_paths: dict[str, str] = {}
    secrets: list[vc.KvSecret] = []
    try:
        mounts = vc.get_mounts(api)
    except ConnectorError as exc:
        _denied_or_raise(exc, out, "mounts_unreadable", "KV and PKI mounts not collected")
        mounts = {}
    for mount in vc.kv2_mounts(mounts):
        try:
            for path in vc.get_kv_paths(api, mount, conn.kv_page_size):
                secrets.append(vc.get_kv_secret(api, mount, path))
                read_paths[f"{mount}/data/{path}"] = vc.secret_id(mount, path)
        except ConnectorError as exc:
            _denied_or_raise(exc, out, "kv_unreadable", f"KV mount {mount} not fully collected")
    fps.update(vc.get_stored_token_fps(api, secrets, fps))
    nodes, edges = vc.transform_tokens(lookups, fps, collector)
    out.nodes += nodes
    out.edges += edges + vc.transform_parents(pairs, lookups, source)
    kv_nodes, kv_edges = vc.transform_kv(secrets, fps)
    out.nodes += kv_nodes
    out.edges += kv_edges

    for mount in pki.pki_mounts(mounts):
        try:
            p_nodes, p_edges = pki.transform_pki(pki.get_pki(api, mount))
        except ConnectorError as exc:
            _denied_or_raise(exc, out, "pki_unreadable", f"PKI mount {mount} not collected")
            continue
        out.nodes += p_nodes
        out.edges += p_edges

    approles: list[auth.AppRolePayload] = []
    try:
        auth_mounts = auth.get_auth_mounts(api)
    except ConnectorError as exc:
        _denied_or_raise(exc, out, "auth_unreadable", "AppRole roles not collected")
        auth_mounts = {}
    for mount in auth.approle_mounts(auth_mounts):
        try:
            payload = auth.get_approle(api, mount)
        except ConnectorError as exc:
            _denied_or_raise(exc, out, "approle_unreadable", f"AppRole mount {mount} not collected")
            continue
        approles.append(payload)
        a_nodes, a_edges = auth.transform_approle(payload, lookups)
        out.nodes += a_nodes
        out.edges += a_edges

    try:
        out.nodes += auth.transform_leases(auth.get_leases(api))
        lease_source = "sys/leases/lookup"
    except ConnectorError as exc:
        _denied_or_raise(exc, out, "leases_unlistable", "leases not collected (listing needs sudo)")
        lease_source = "none"

    mint_paths = auth.secret_id_paths(approles)
    caps_source = _capabilities(conn, lookups, read_paths, mint_paths, out)

    out.meta = {
        "url": api.url,
        "collector_accessor": collector,
        "parent_source": source,
        "capabilities_source": caps_source,
        "lease_source": lease_source,
        "counts": {"tokens": len(lookups), "secrets": len(secrets), "parent_edges": len(pairs)},
        "duration_s": round(time.monotonic() - start, 4),
    }
    conn.log.info("vault.collect", nodes=len(out.nodes), edges=len(out.edges), parent_source=source,
                  capabilities_source=caps_source, duration_s=out.meta["duration_s"])
    return out


def _denied_or_raise(exc: ConnectorError, out: Collected, code: str, what: str) -> None:
    """A 401/403 on one area becomes a finding; anything else (sealed, 5xx, 429) stops collect."""
    if status_of(exc) not in DENIED:
        raise exc
    out.findings.append(_finding(code, f"{what}: {exc}"))


def _parents(conn: VaultConnector, lookups: dict[str, dict[str, Any]], out: Collected
             ) -> tuple[set[tuple[str, str]], dict[str, str], str]:
    """Parent pairs, token fingerprints and the source used: raw, then audit, then none."""
    api = conn.api
    mode = conn.parent_source
    if mode in ("auto", "raw"):
        try:
            pairs, fps = vc.transform_raw_tokens(vc.get_raw_token_entries(api))
            return pairs, fps, "raw"
        except ConnectorError as exc:
            if status_of(exc) not in (*DENIED, 404, 405, 400) or mode == "raw":
                raise
            out.findings.append(_finding("raw_unavailable", f"raw storage unavailable ({exc}); "
                                         "enable raw_storage_endpoint or configure a file audit log"))
    if mode in ("auto", "audit") and conn.audit_log:
        device = conn.audit_device or _find_audit_device(conn)
        if device:
            hashes = vc.get_audit_hashes(api, device, lookups)
            lines = Path(conn.audit_log).read_text(encoding="utf-8", errors="replace").splitlines()
            return vc.transform_audit_parents(lines, hashes), {}, f"audit:{device}"
        out.findings.append(_finding("audit_device_unknown", f"no file audit device writes {conn.audit_log}; "
                                     "set audit_device"))
    elif mode == "audit":
        raise ConnectorError("vault", "configure", "parent_source is audit but no audit_log is configured")
    out.findings.append(_finding(
        "no_parent_source", "parent_of edges not collected (no raw storage, no audit log): declare token "
        "parents in the inventory, or revoking a parent will surprise you with its children", "error"))
    return set(), {}, "none"


def _find_audit_device(conn: VaultConnector) -> str | None:
    body = conn.api.get("sys/audit") or {}
    data = body.get("data") or {k: v for k, v in body.items() if k.endswith("/")}
    target = str(Path(str(conn.audit_log)).resolve())
    files = {k.rstrip("/"): v for k, v in data.items() if isinstance(v, dict) and v.get("type") == "file"}
    for name, dev in files.items():
        if str(Path(str((dev.get("options") or {}).get("file_path") or "")).resolve()) == target:
            return name
    return next(iter(files)) if len(files) == 1 else None


def _capabilities(conn: VaultConnector, lookups: dict[str, dict[str, Any]], read_paths: dict[str, str],
                  mint_paths: dict[str, str], out: Collected) -> str:
    from revoke.model import Edge, Relation

    paths = sorted(read_paths) + sorted(mint_paths)
    try:
        caps = vc.get_capabilities(conn.api, lookups, paths)
    except ConnectorError as exc:
        if status_of(exc) not in DENIED:
            raise
        from connectors.vault.acl import fallback_capabilities

        caps, note = fallback_capabilities(conn.api, lookups, paths)
        out.findings.append(_finding(
            "capabilities_accessor_forbidden",
            f"sys/capabilities-accessor refused ({exc}); can_read/can_mint edges were computed from the "
            f"policies' ACL rules instead ({note}); identity-group and Sentinel policies are not seen that way",
            "warning"))
        source = "acl-fallback" if caps else "none"
    else:
        source = "sys/capabilities-accessor"
    out.edges += vc.transform_can_read(caps, read_paths)
    for acc, by_path in sorted(caps.items()):
        for path, role_id in sorted(mint_paths.items()):
            if vc.can(by_path.get(path, []), "update", "create"):
                out.edges.append(Edge(vc.token_id(acc), role_id, Relation.CAN_MINT))
    return source
