"""The Vault (and OpenBao) connector: tokens, policies, KV v2, PKI, AppRole and leases.

Options: `connectors.vault.options` (credentials by reference only). Collection:
`connectors.vault.snapshot` (sources, fallbacks, findings) over `collect` (get) and
`transform` / `transform_material` (pure). Node ids: `connectors.vault.ids`. Every action is
declared once in `table`, beside its handler, which is a thin call into `tokens`, `auth`, `kv`
or `pki`.

Rotate (tokens) and reissue (PKI) are declared for the planner and `revoke permissions`; the
executor runs them as `create_replacement`, `write_store` and a revoke, never through `act`.
A PKI mount trusting an imported CA certificate (`vault:pki_mount:<mount>`) can `untrust` it:
the imported issuer is deleted and verify re-reads the mount's issuers.

Vault cannot undo a revocation, a destroy or a new KV version: no action declares `undo`, and
`act("rollback")` raises Unsupported. Passwords and API keys found in KV secrets are nodes no
connector manages: the plan makes them manual tasks; `probe` answers `None` for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from pydantic import ValidationError

from connectors.escrow_batch import ReadCache
from connectors.vault import auth, escrow, kv, pki, tokens
from connectors.vault.client import PROVIDER, VaultApi
from connectors.vault.ids import node_type
from connectors.vault.options import VaultOptions
from revoke.connector import (
    ActionContext,
    ActionResult,
    ActionTable,
    BaseConnector,
    Collected,
    ConnectorError,
    ProbeResult,
    Replacement,
    Unsupported,
)
from revoke.model import Node, NodeKind

TOKEN, SECRET, CERTIFICATE, CA = NodeKind.TOKEN, NodeKind.SECRET, NodeKind.CERTIFICATE, NodeKind.CA
WORKLOAD = NodeKind.WORKLOAD

PROBES: dict[str, Callable[[VaultApi, Node], ProbeResult]] = {
    "token": tokens.probe_token,
    "pki_cert": pki.probe_cert,
    "pki_issuer": pki.probe_issuer,
    "secret_id": auth.probe_secret_id,
    "lease": auth.probe_lease,
    "secret": kv.probe_secret,
}


def _untrust_ca(node: Node) -> str:
    """The CA an untrust step removes: the plan's step names it on the holder (revoke.trust)."""
    return str((node.attrs.get("untrust") or {}).get("ca") or "")


def _result(node: Node, verb: str, changed: bool, detail: str, data: dict[str, Any] | None = None) -> ActionResult:
    return ActionResult(node.id, verb, ok=True, changed=changed, detail=detail, data=data or {})


class VaultConnector(BaseConnector):
    options_model = VaultOptions
    operations = {
        "collect": [
            # raw storage is root-protected: list and read need sudo
            "sudo,list auth/token/accessors", "update auth/token/lookup-accessor", "sudo,list,read sys/raw/sys/token/*",
            "sudo,read sys/audit", "update sys/audit-hash/*", "list,read sys/policies/acl/*", "read sys/mounts", "read sys/auth",
            "list,read <kv>/metadata/*", "read <kv>/data/*", "update sys/capabilities-accessor",
            "list,read <pki>/issuers, <pki>/issuer/*, <pki>/certs, <pki>/cert/*", "read <pki>/config/issuers",
            "list,read auth/<approle>/role/*",
            "update auth/<approle>/role/+/secret-id-accessor/lookup",
            # the lease tree's root is its own path: `lookup/*` does not cover `lookup/`
            "sudo,list sys/leases/lookup/, sys/leases/lookup/*", "update sys/leases/lookup",
        ],
        "escrow": ["read sys/mounts", "create,update,read <escrow path>/*"],
        # and read access to the audit_log file; audit-hash only when accessors are HMACed
        "observations": ["update sys/audit-hash/*"],
    }
    table = ActionTable()

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        try:
            self.opts = VaultOptions.model_validate(config)
        except ValidationError as exc:  # `revoke.yaml` was checked already: this is a caller's dict
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(connector)"
            raise ConnectorError(PROVIDER, "configure", f"field {where}: {err['msg']}") from None
        self.api = VaultApi(self.opts)
        self._lock = threading.Lock()
        self._kv2_mounts: list[str] | None = None  # for the escrow, read once
        self._escrow_reads = ReadCache()  # verify reads a batch item once for all its members
        self.log = structlog.get_logger().bind(connector=PROVIDER)

    def close(self) -> None:
        self.api.close()

    def collect(self) -> Collected:
        from connectors.vault.snapshot import collect_snapshot

        return collect_snapshot(self.api, self.opts, self.log)

    # ------------------------------------------------------------------------------------------
    # act

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        if action == "rollback":
            raise Unsupported(PROVIDER, "rollback", node.id, "Vault cannot undo a revocation, destroy or new KV "
                              "version; nothing was rolled back")
        kind = node_type(node.id)
        if kind == "token" and action == "revoke_orphan":
            raise Unsupported(
                PROVIDER, "revoke_orphan", node.id,
                "unsupported by accessor: auth/token/revoke-orphan takes the token value, which revoke never "
                "keeps; use `revoke` (revokes the whole subtree) or revoke the token with its value by hand")
        if not kind:
            raise self._unsupported(action, node.id)
        result = super().act(action, node, ctx)
        if not ctx.dry_run:
            self.log.info("vault.action", node=node.id, action=action, changed=result.changed)
        return result

    # tokens

    @table.action("revoke", types=("token",), kinds=(TOKEN,), permissions=["update auth/token/revoke-accessor"])
    def _revoke_token(self, node: Node, ctx: ActionContext) -> ActionResult:
        return _result(node, "revoke", *tokens.revoke_token(self.api, node.id))

    @table.action("rotate", types=("token",), kinds=(TOKEN,),
                  permissions=["sudo,update auth/token/create-orphan", "create,update <kv>/data/*"])
    def _rotate_token(self, node: Node, ctx: ActionContext) -> ActionResult:
        raise self._unsupported("rotate", node.id)  # the executor rotates: create_replacement, write_store

    @table.action("finalize", types=("token",), kinds=(), reversible=False, probe="none")
    def _finalize_token(self, node: Node, ctx: ActionContext) -> ActionResult:
        return _result(node, "finalize", False, "nothing to finalize: revocation is final")

    # AppRole secret-ids: destroying one also revokes its role's login tokens

    @table.action("destroy", types=("secret_id",), kinds=(TOKEN,), reversible=False,
                  permissions=["update auth/<approle>/role/+/secret-id-accessor/destroy"])
    def _destroy_secret_id(self, node: Node, ctx: ActionContext) -> ActionResult:
        return _result(node, "destroy", *auth.destroy_with_logins(self.api, node.id))

    @table.action("revoke", types=("secret_id",), kinds=(TOKEN,), reversible=False,
                  permissions=["update auth/token/revoke-accessor"])
    def _revoke_secret_id(self, node: Node, ctx: ActionContext) -> ActionResult:
        return _result(node, "revoke", *auth.destroy_with_logins(self.api, node.id))

    # PKI

    @table.action("revoke", types=("pki_cert",), kinds=(CERTIFICATE,), permissions=["update <pki>/revoke"])
    def _revoke_cert(self, node: Node, ctx: ActionContext) -> ActionResult:
        return _result(node, "revoke", *pki.revoke_cert(self.api, node))

    @table.action("reissue", types=("pki_cert",), kinds=(CERTIFICATE,),
                  permissions=["update <pki>/issuer/*/sign-verbatim"])
    def _reissue_cert(self, node: Node, ctx: ActionContext) -> ActionResult:
        raise self._unsupported("reissue", node.id)  # the executor reissues: create_replacement, write_store

    @table.action("revoke", types=("pki_issuer",), kinds=(CA,))
    def _revoke_issuer(self, node: Node, ctx: ActionContext) -> ActionResult:
        return _result(node, "revoke", *pki.revoke_issuer(self.api, node))

    @table.action("reissue", types=("pki_issuer",), kinds=(CA,),
                  permissions=["sudo,update <pki>/root/generate/internal"])
    def _reissue_issuer(self, node: Node, ctx: ActionContext) -> ActionResult:
        raise self._unsupported("reissue", node.id)  # the executor makes the new CA: create_replacement

    # a mount's trust of an imported CA certificate: a person can import the public certificate
    # again, but the issuer (its id, name, usage and URLs) does not come back and no undo re-imports
    # it, so the deletion is final: `run --execute` wants --approve

    @table.action("untrust", types=("pki_mount",), kinds=(WORKLOAD,), probe="readback", reversible=False,
                  permissions=["list <pki>/issuers", "read <pki>/issuer/*, <pki>/config/issuers",
                               "delete <pki>/issuer/*"])
    def _untrust(self, node: Node, ctx: ActionContext) -> ActionResult:
        changed, detail, data = pki.untrust(self.api, node, _untrust_ca(node))
        return _result(node, "untrust", changed, detail, data)

    # leases

    @table.action("revoke", types=("lease",), kinds=(TOKEN,), permissions=["update sys/leases/revoke"])
    def _revoke_lease(self, node: Node, ctx: ActionContext) -> ActionResult:
        return _result(node, "revoke", *auth.revoke_lease(self.api, node.id))

    @table.action("revoke_prefix", types=("lease",), kinds=(TOKEN,))
    def _revoke_lease_prefix(self, node: Node, ctx: ActionContext) -> ActionResult:
        return _result(node, "revoke_prefix", *auth.revoke_lease(self.api, node.id, prefix=True))

    # KV: old versions stay readable (and rollback possible) until finalize destroys them

    @table.action("finalize", types=("secret",), kinds=(SECRET,), permissions=["update <kv>/destroy/*"],
                  reversible=False, probe="none")
    def _finalize_secret(self, node: Node, ctx: ActionContext) -> ActionResult:
        mount, path = kv.secret_path(self.api, node)
        return _result(node, "finalize", *kv.destroy_old_versions(self.api, mount, path, node.id))

    # ------------------------------------------------------------------------------------------
    # rotation and reissue

    def create_replacement(self, node: Node, ctx: ActionContext) -> Replacement:
        kind = node_type(node.id)
        if kind == "pki_cert":
            return pki.reissue_cert_under(self.api, node, ctx.replacements)
        if kind == "pki_issuer":
            return pki.new_root_issuer(self.api, node)
        if kind == "token":
            return tokens.new_token(self.api, node, ctx.incident)
        raise self._unsupported("create_replacement", node.id)

    def discard_replacement(self, new_id: str, ctx: ActionContext) -> ActionResult:
        node = Node(new_id, NodeKind.TOKEN, PROVIDER)
        kind = node_type(new_id)
        if kind == "token":
            changed, detail = tokens.revoke_token(self.api, new_id)
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
        return tokens.replacements_of(self.api, node.id)

    # ------------------------------------------------------------------------------------------
    # stores

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        if node_type(store.id) != "secret":
            raise self._unsupported("write_store", store.id)
        if ctx.dry_run:
            return ActionResult(store.id, "write_store", changed=False, detail="dry run: would write a new version")
        mount, path = kv.secret_path(self.api, store)
        changed, detail, version = kv.write_replacement(self.api, store, mount, path, old, replacement)
        self.log.info("vault.write_store", node=store.id, old=old.id, new=replacement.new_id, changed=changed)
        return ActionResult(store.id, "write_store", changed=changed, detail=detail, data={"version": version})

    def store_holds(self, store: Node) -> set[str]:
        if node_type(store.id) != "secret":
            raise self._unsupported("store_holds", store.id)
        mount, path = kv.secret_path(self.api, store)
        data, _ = kv.read_current(self.api, mount, path, store.id)
        return kv.holds(mount, path, data)

    # the escrow: a KV v2 path (connectors.vault.escrow)

    def escrow_put(self, location: str, item: str, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(replacement.old_id, "escrow_put", changed=False, detail="dry run: would escrow")
        changed, detail = escrow.put(self.api, self._kv2(), location, item, replacement, ctx.incident,
                                     first_attempt=bool(ctx.options.get("first_attempt")))
        self._escrow_reads.forget((location, item))
        self.log.info("vault.escrow_put", node=replacement.old_id, new=replacement.new_id, item=item, changed=changed)
        return ActionResult(replacement.old_id, "escrow_put", changed=changed, detail=detail)

    def escrow_put_many(self, location: str, item: str, members: dict[str, Replacement],
                        ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(item, "escrow_put", changed=False, detail="dry run: would escrow")
        key = (location, item)
        changed, detail, now = escrow.put_many(self.api, self._kv2(), location, item, members, ctx.incident,
                                               known=self._escrow_reads.written(key))
        self._escrow_reads.put(key, now, written=True)
        self.log.info("vault.escrow_put", item=item, members=len(members), changed=changed)
        return ActionResult(item, "escrow_put", changed=changed, detail=detail)

    def escrow_holds(self, location: str, item: str) -> set[str]:
        return self._escrow_reads.held((location, item), lambda: escrow.read(self.api, self._kv2(), location, item),
                                       lambda got: escrow.held(got[0]))

    def _kv2(self) -> list[str]:
        with self._lock:
            if self._kv2_mounts is None:
                self._kv2_mounts = escrow.kv2(self.api)
            return self._kv2_mounts

    @classmethod
    def keeps_replacement_secret(cls, node_id: str) -> bool:
        # a new root issuer's key is generated inside Vault and never leaves it
        return node_type(node_id) == "pki_issuer"

    # ------------------------------------------------------------------------------------------
    # probes

    def confirm(self, verb: str, node: Node) -> ProbeResult:
        if verb == "untrust" and node_type(node.id) == "pki_mount":
            return pki.confirm_untrust(self.api, node, _untrust_ca(node))
        return super().confirm(verb, node)

    def probe(self, node: Node) -> ProbeResult:
        kind = node_type(node.id)
        if kind in PROBES:
            return PROBES[kind](self.api, node)
        if kind in ("password", "api_key"):
            return ProbeResult(node.id, None, "no connector manages this credential: a manual task")
        return super().probe(node)
