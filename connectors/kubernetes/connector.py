"""The Kubernetes connector class: its options, its action table, and collect/probe over the client.

Config (`revoke.yaml`):
    - type: kubernetes
      kubeconfig: ~/.kube/prod.yaml   # a file, by reference (or in_cluster: true)
      context: prod-admin             # optional: a context of that file
      server: http://127.0.0.1:8443   # optional: override the URL (plain HTTP only on loopback)
      namespaces: [apps, ci]          # optional: only these namespaces
      cluster_name: prod              # optional label; ids use the cluster's own identity
      timeout: 30                     # optional per-call timeout (s)
      retry_seconds: 10               # optional: budget for retrying reads on 429/5xx
      page_size: 500                  # optional: items per list page (`limit` / `continue`)

Actions: `revoke` a legacy token Secret (delete the Secret) or a pod's bound token (delete the
Pod); `disable` a service account = remove it from every RBAC binding that lets it reach
credentials, `rollback` puts it back; `write_store` writes a rotated credential into a Secret.
Client certificates and the cluster CA have no action: Kubernetes cannot revoke a certificate,
so the plan makes them manual tasks that say how (rotate the CA).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from connectors.kubernetes import actions
from connectors.kubernetes.collect import get_cluster
from connectors.kubernetes.options import KubernetesOptions
from connectors.kubernetes.transform import (
    CERT_REMEDY,
    MASTERS_REMEDY,
    MINTED,
    POD_TOKEN,
    PROVIDER,
    SA,
    SIGNING_KEY_REMEDY,
    TOKEN_SECRET,
    transform_cluster,
)
from revoke.connector import (
    ActionContext,
    ActionResult,
    ActionTable,
    BaseConnector,
    Collected,
    ConnectorError,
    ProbeResult,
    Replacement,
)
from revoke.model import Node, NodeKind

if TYPE_CHECKING:
    from connectors.kubernetes.client import KubeClient

log = structlog.get_logger()
TOKENS = (NodeKind.TOKEN,)
RBAC = "rbac.authorization.k8s.io"
ACCOUNTS = (NodeKind.SERVICE_ACCOUNT,)


class KubernetesConnector(BaseConnector):
    name = PROVIDER
    options_model = KubernetesOptions
    # "<verb> <resource>[.<API group>]": `revoke permissions` turns them into one ClusterRole
    operations = {
        "collect": ["get namespaces", "list namespaces", "list serviceaccounts", "list secrets", "list pods",
                    "get configmaps", f"list roles.{RBAC}", f"list rolebindings.{RBAC}", f"list clusterroles.{RBAC}",
                    f"list clusterrolebindings.{RBAC}", "list certificatesigningrequests.certificates.k8s.io"],
        "probe": ["get secrets", "get pods", "get serviceaccounts", "get configmaps",
                  "create tokenreviews.authentication.k8s.io"],
        "write_store": ["get secrets", "update secrets"],
        "store_holds": ["get secrets"],
        "confirm": [f"list rolebindings.{RBAC}", f"list clusterrolebindings.{RBAC}", f"get roles.{RBAC}",
                    f"get clusterroles.{RBAC}", "create subjectaccessreviews.authorization.k8s.io"],
    }
    table = ActionTable()

    def __init__(self, config: dict[str, Any]) -> None:
        from connectors.kubernetes.client import KubeClient

        super().__init__(config)
        self.opts = KubernetesOptions.parse(config, PROVIDER)
        self.client: KubeClient = KubeClient(self.opts)

    def close(self) -> None:
        self.client.close()

    # -- collect -------------------------------------------------------------------------------

    def collect(self) -> Collected:
        started = time.perf_counter()
        payload, findings, pages = get_cluster(self.client, self.opts.namespaces, self.opts.cluster_name or "")
        out = transform_cluster(payload)
        out.findings[:0] = findings
        out.meta = {"cluster": payload["cluster"]["id"], "server": payload["cluster"]["server"],
                    "namespaces": len(payload["namespaces"]), "service_accounts": len(payload["service_accounts"]),
                    "secrets": len(payload["secrets"]), "pods": len(payload["pods"]),
                    "client_certificates": len(payload["client_certs"]), "pages": pages,
                    "retries": self.client.retries, "edges": len(out.edges),
                    "seconds": round(time.perf_counter() - started, 3)}
        log.info("kubernetes.collect", **{k: v for k, v in out.meta.items() if k != "server"})
        return out

    # -- actions -------------------------------------------------------------------------------

    def act(self, action: str, node: Node, ctx: ActionContext) -> ActionResult:
        result = self.spec_for(action, node).handler(self, node, ctx)
        log.info("kubernetes.action", node=node.id, action=action, changed=result.changed, ok=result.ok,
                 dry_run=ctx.dry_run, incident=ctx.incident)
        return result

    @table.action("revoke", types=(TOKEN_SECRET,), kinds=TOKENS, reversible=False,
                  permissions=["get secrets", "delete secrets"])
    def _delete_token_secret(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.delete_token_secret(self.client, node, ctx, "revoke")

    @table.action("revoke", types=(POD_TOKEN,), kinds=TOKENS, reversible=False,
                  permissions=["get pods", "delete pods"])
    def _delete_bound_pod(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.delete_bound_pod(self.client, node, ctx, "revoke")

    # finalize of an already deleted object: nothing left to do
    @table.action("finalize", types=(TOKEN_SECRET, POD_TOKEN), kinds=(), probe="none")
    def _nothing_left(self, node: Node, ctx: ActionContext) -> ActionResult:
        return ActionResult(node.id, "finalize", changed=False, detail="deleted at revoke: nothing left to do")

    @table.action("disable", types=(SA,), kinds=ACCOUNTS, undo=True, probe="readback",
                  permissions=[f"list rolebindings.{RBAC}", f"list clusterrolebindings.{RBAC}", f"get roles.{RBAC}",
                               f"get clusterroles.{RBAC}", f"update rolebindings.{RBAC}",
                               f"update clusterrolebindings.{RBAC}",
                               "create subjectaccessreviews.authorization.k8s.io"])  # its readback
    def _narrow_account(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.narrow_account(self.client, node, ctx, "disable")

    @table.action("rollback", types=(SA,), kinds=ACCOUNTS, probe="none",
                  permissions=[f"list rolebindings.{RBAC}", f"list clusterrolebindings.{RBAC}",
                               f"update rolebindings.{RBAC}", f"update clusterrolebindings.{RBAC}"])
    def _restore_account(self, node: Node, ctx: ActionContext) -> ActionResult:
        return actions.restore_account(self.client, node, ctx)

    @table.action("finalize", types=(SA,), kinds=(), probe="none")
    def _keep_narrowed(self, node: Node, ctx: ActionContext) -> ActionResult:
        return ActionResult(node.id, "finalize", changed=False, detail="bindings stay narrowed; nothing is deleted")

    @classmethod
    def manual_reason(cls, node: Node) -> str | None:
        if node.provider != PROVIDER:
            return None
        if node.kind is NodeKind.CERTIFICATE:
            return MASTERS_REMEDY if node.attrs.get("bypasses_authorization") else CERT_REMEDY
        if node.id.startswith(f"{PROVIDER}:{MINTED}:"):
            return SIGNING_KEY_REMEDY
        if node.kind is NodeKind.CA:
            return ("Rotate the cluster CA by hand (https://kubernetes.io/docs/tasks/tls/manual-rotation-of-ca-certificates/): "
                    "new CA in every trust bundle first, reissue every server, kubelet and client certificate and "
                    "kubeconfig, restart the control plane and every pod that reads kube-root-ca.crt, then remove the "
                    "old CA. Until then every certificate it signed stays valid.")
        return None

    # -- stores and probes -------------------------------------------------------------------------

    def write_store(self, store: Node, old: Node, replacement: Replacement, ctx: ActionContext) -> ActionResult:
        if store.kind is not NodeKind.SECRET or not store.id.startswith(f"{PROVIDER}:secret:"):
            raise self._unsupported("write_store", store.id)
        if ctx.dry_run:
            return ActionResult(store.id, "write_store", changed=False, detail="dry run: would write a new version")
        result = actions.write_store(self.client, store, old, replacement)
        log.info("kubernetes.write_store", node=store.id, old=old.id, new=replacement.new_id,
                 version=result.data.get("version", ""), incident=ctx.incident)
        return result

    def store_holds(self, store: Node) -> set[str]:
        return actions.store_holds(self.client, store)

    def probe(self, node: Node) -> ProbeResult:
        try:
            return actions.probe(self.client, node)
        except ConnectorError as err:
            return ProbeResult(node.id, None, f"probe failed: {err}")

    def confirm(self, verb: str, node: Node) -> ProbeResult:
        if verb != "disable" or node.kind is not NodeKind.SERVICE_ACCOUNT:
            raise self._unsupported(f"confirm {verb}", node.id)
        try:
            return actions.confirm_narrowed(self.client, node)
        except ConnectorError as err:
            return ProbeResult(node.id, None, f"readback failed: {err}")
