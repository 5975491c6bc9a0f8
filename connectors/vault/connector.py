"""The Vault (and OpenBao) connector: tokens, policies, KV v2, PKI, AppRole and leases.

Config block (credentials by reference only):
    {type: vault, url, token_env: VAULT_TOKEN, namespace?, verify?/ca_cert?,
     parent_source?: auto|raw|audit|none, audit_log?: path, audit_device?: name, kv_page_size?: int}

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
sys/policies/acl/*) and says so in a finding. Passwords and API keys found in KV secrets are
nodes no connector manages: the plan makes them manual tasks; `probe` answers `None` for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import structlog
from pydantic import ConfigDict

from connectors.vault import auth, kv, pki
from connectors.vault import collect as vc
from connectors.vault.client import PROVIDER, VaultApi, status_of
from revoke.connector import (
    ActionContext,
    ActionResult,
    BaseConnector,
    Collected,
    ConnectorError,
    ConnectorOptions,
    ProbeResult,
    Replacement,
    Secret,
)
from revoke.model import Node, NodeKind

Handler = Callable[[Node, ActionContext], tuple[bool, str, dict[str, Any]]]


def node_type(node_id: str) -> str:
    parts = node_id.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PROVIDER else ""


class PendingOptions(ConnectorOptions):
    model_config = ConfigDict(extra="allow")


class VaultConnector(BaseConnector):
    options_model = PendingOptions  # replaced by a declared model with the package split
    actions: ClassVar[dict[NodeKind, frozenset[str]]] = {
        NodeKind.TOKEN: frozenset({"revoke", "rotate", "destroy", "revoke_prefix"}),
        NodeKind.SECRET: frozenset({"finalize"}),
        NodeKind.CERTIFICATE: frozenset({"revoke", "reissue"}),
        NodeKind.CA: frozenset({"revoke", "reissue"}),
    }
    permissions: ClassVar[dict[str, list[str]]] = {
        "collect": [
            "sudo,list auth/token/accessors", "update auth/token/lookup-accessor", "read sys/raw/sys/token/*",
            "update sys/audit-hash/*", "list,read sys/policies/acl/*", "read sys/mounts", "read sys/auth",
            "list,read <kv>/metadata/*", "read <kv>/data/*", "update sys/capabilities-accessor",
            "list,read <pki>/issuers, <pki>/certs, <pki>/cert/*", "list,read auth/<approle>/role/*",
            "sudo,list sys/leases/lookup/*",
        ],
        "revoke": ["update auth/token/revoke-accessor", "update <pki>/revoke", "update sys/leases/revoke"],
        "rotate": ["sudo,update auth/token/create-orphan", "create,update <kv>/data/*"],
        "destroy": ["update auth/<approle>/role/*/secret-id-accessor/destroy"],
        "finalize": ["update <kv>/destroy/*"],
        "reissue": ["update <pki>/issuer/*/sign-verbatim", "sudo,update <pki>/root/generate/internal"],
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.api = VaultApi(config)
        self.parent_source = str(config.get("parent_source") or "auto")
        if self.parent_source not in ("auto", "raw", "audit", "none"):
            raise ConnectorError(PROVIDER, "configure", f"parent_source {self.parent_source!r}: expected "
                                 "auto, raw, audit or none")
        self.audit_log = config.get("audit_log")
        self.audit_device = config.get("audit_device")
        self.kv_page_size = int(config.get("kv_page_size") or 500)
        self.log = structlog.get_logger().bind(connector=PROVIDER)

    def close(self) -> None:
        self.api.close()

    # ------------------------------------------------------------------------------------------
    # collect

    def collect(self) -> Collected:
        from connectors.vault.snapshot import run_collect

        return run_collect(self)

    # ------------------------------------------------------------------------------------------
    # act

    def _handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("token", "revoke"): self._revoke_token,
            ("token", "finalize"): lambda n, c: (False, "nothing to finalize: revocation is final", {}),
            ("secret", "finalize"): self._finalize_secret,
            ("pki_cert", "revoke"): lambda n, c: (*pki.revoke_cert(self.api, n), {}),
            ("pki_issuer", "revoke"): lambda n, c: (*pki.revoke_issuer(self.api, n), {}),
            ("secret_id", "destroy"): self._destroy_secret_id,
            ("secret_id", "revoke"): self._destroy_secret_id,
            ("lease", "revoke"): lambda n, c: (*auth.revoke_lease(self.api, n.id), {}),
            ("lease", "revoke_prefix"): lambda n, c: (*auth.revoke_lease(self.api, n.id, prefix=True), {}),
        }

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        kind = node_type(node.id)
        if kind == "token" and action == "revoke_orphan":
            raise ConnectorError(
                PROVIDER, "revoke_orphan",
                "unsupported by accessor: auth/token/revoke-orphan takes the token value, which revoke never "
                "keeps; use `revoke` (revokes the whole subtree) or revoke the token with its value by hand",
                node=node.id)
        if action == "rollback":
            raise ConnectorError(PROVIDER, "rollback", "Vault cannot undo a revocation, destroy or new KV "
                                 "version; nothing was rolled back", node=node.id)
        handler = self._handlers().get((kind, action))
        if handler is None:
            raise self._unsupported(action, node.id)
        if ctx.dry_run:
            return ActionResult(node.id, action, ok=True, changed=False, detail=f"dry run: would {action}")
        changed, detail, data = handler(node, ctx)
        self.log.info("vault.action", node=node.id, action=action, changed=changed)
        return ActionResult(node.id, action, ok=True, changed=changed, detail=detail, data=data)

    def _accessor(self, node_id: str) -> str:
        return node_id.split(":", 2)[2]

    def _lookup_accessor(self, acc: str) -> dict[str, Any] | None:
        try:
            body = self.api.post("auth/token/lookup-accessor", {"accessor": acc}, node=vc.token_id(acc))
        except ConnectorError as exc:
            if status_of(exc) == 400:  # "invalid accessor": revoked, expired or never existed
                return None
            raise
        return (body or {}).get("data") or {}

    def _revoke_token(self, node: Node, ctx: ActionContext) -> tuple[bool, str, dict[str, Any]]:
        acc = self._accessor(node.id)
        if self._lookup_accessor(acc) is None:
            return False, "token already revoked or expired", {}
        self.api.post("auth/token/revoke-accessor", {"accessor": acc}, node=node.id)
        return True, "token and its child tokens revoked", {}

    def _finalize_secret(self, node: Node, ctx: ActionContext) -> tuple[bool, str, dict[str, Any]]:
        mount, path = self._secret_path(node)
        changed, detail = kv.destroy_old_versions(self.api, mount, path, node.id)
        return changed, detail, {}

    def _destroy_secret_id(self, node: Node, ctx: ActionContext) -> tuple[bool, str, dict[str, Any]]:
        mount, role, _ = auth.split_secret_id(node.id)
        changed, detail = auth.destroy_secret_id(self.api, node.id)
        # destroying a secret-id leaves the tokens it already minted alive; login tokens do not
        # say which secret-id minted them, so every live login token of the role goes
        lookups = vc.get_token_lookups(self.api)
        revoked = []
        for acc in auth.role_tokens(lookups, mount, role):
            self.api.post("auth/token/revoke-accessor", {"accessor": acc}, node=vc.token_id(acc))
            revoked.append(vc.token_id(acc))
        if revoked:
            detail += f"; revoked {len(revoked)} login token(s) of role {role}"
        return changed or bool(revoked), detail, {"revoked_tokens": revoked}

    # ------------------------------------------------------------------------------------------
    # rotation and reissue

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        kind = node_type(node.id)
        if kind == "pki_cert":
            issuer = node.attrs.get("issuer_id") or None
            old_issuer = pki.issuer_node_id(pki.split_id(node.id)[0], issuer) if issuer else ""
            new_issuer = ctx.replacements.get(old_issuer, "")
            ref = pki.split_id(new_issuer)[1] if new_issuer else issuer
            return pki.reissue_cert(self.api, node, ref)
        if kind == "pki_issuer":
            return pki.new_root_issuer(self.api, node)
        if kind != "token":
            raise self._unsupported("create_replacement", node.id)
        acc = self._accessor(node.id)
        old = self._lookup_accessor(acc)
        if old is None:
            raise ConnectorError(PROVIDER, "create_replacement", "the old token is gone; its policies are "
                                 "unknown, so no replacement can be made", node=node.id)
        policies = sorted(set(old.get("policies") or []) - {"default"}) or ["default"]
        meta = {**(old.get("meta") or {}), "replaces": acc, "incident": ctx.incident}
        body: dict[str, Any] = {"policies": policies, "meta": meta, "display_name": old.get("display_name") or "",
                                "renewable": bool(old.get("renewable", True))}
        if old.get("creation_ttl"):
            body["ttl"] = f"{int(old['creation_ttl'])}s"
        # an orphan, so revoking the compromised token's tree cannot take the replacement with it
        data = self.api.post("auth/token/create-orphan", body, node=node.id) or {}
        new = data.get("auth") or {}
        return Replacement(old_id=node.id, new_id=vc.token_id(new["accessor"]), kind=NodeKind.TOKEN,
                           material=Secret({"token": new["client_token"]}), attrs={"policies": policies})

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        node = Node(new_id, NodeKind.TOKEN, PROVIDER)
        kind = node_type(new_id)
        if kind == "token":
            changed, detail, _ = self._revoke_token(node, ctx)
        elif kind == "pki_cert":
            changed, detail = pki.revoke_cert(self.api, node)
        elif kind == "pki_issuer":
            changed, detail = pki.revoke_issuer(self.api, node)
        else:
            raise self._unsupported("discard_replacement", new_id)
        return ActionResult(new_id, "discard_replacement", changed=changed, detail=detail)

    def siblings(self, node: Node) -> set[str]:
        if node_type(node.id) != "token":
            return set()
        acc = self._accessor(node.id)
        return {vc.token_id(a) for a, d in vc.get_token_lookups(self.api).items()
                if (d.get("meta") or {}).get("replaces") == acc}

    # ------------------------------------------------------------------------------------------
    # stores

    def _secret_path(self, node: Node) -> tuple[str, str]:
        if node.attrs.get("mount") and node.attrs.get("path"):
            return str(node.attrs["mount"]), str(node.attrs["path"])
        return kv.split_secret(node.id, vc.kv2_mounts(vc.get_mounts(self.api)))

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        if node_type(store.id) != "secret":
            raise self._unsupported("write_store", store.id)
        if ctx.dry_run:
            return ActionResult(store.id, "write_store", changed=False, detail="dry run: would write a new version")
        mount, path = self._secret_path(store)
        changed, detail, version = kv.write_replacement(self.api, store, mount, path, old, replacement)
        self.log.info("vault.write_store", node=store.id, old=old.id, new=replacement.new_id, changed=changed)
        return ActionResult(store.id, "write_store", changed=changed, detail=detail, data={"version": version})

    def store_holds(self, store: Node) -> set[str]:
        if node_type(store.id) != "secret":
            raise self._unsupported("store_holds", store.id)
        mount, path = self._secret_path(store)
        data, _ = kv.read_current(self.api, mount, path, store.id)
        return kv.holds(mount, path, data)

    # ------------------------------------------------------------------------------------------
    # probes

    def probe(self, node: Node) -> ProbeResult:
        kind = node_type(node.id)
        if kind == "token":
            if self._lookup_accessor(self._accessor(node.id)) is None:
                return ProbeResult(node.id, False, "lookup-accessor: 400 invalid accessor")
            return ProbeResult(node.id, True, "lookup-accessor: token found")
        if kind == "pki_cert":
            return pki.probe_cert(self.api, node)
        if kind == "pki_issuer":
            return pki.probe_issuer(self.api, node)
        if kind == "secret_id":
            return auth.probe_secret_id(self.api, node)
        if kind == "lease":
            return auth.probe_lease(self.api, node)
        if kind == "secret":
            mount, path = self._secret_path(node)
            try:
                kv.read_current(self.api, mount, path, node.id)
            except ConnectorError as exc:
                if status_of(exc) == 404:
                    return ProbeResult(node.id, False, "kv read: 404 (deleted or destroyed)")
                raise
            return ProbeResult(node.id, True, "kv read: current version readable")
        if kind in ("password", "api_key"):
            return ProbeResult(node.id, None, "no connector manages this credential: a manual task")
        return super().probe(node)
