"""Actions, store writes and probes of the Kubernetes connector: plain functions over the client.

Every action reads the current state first, so a repeat reports `changed=False` and a dry run
says what it would do; a 404 on the mutating call (deleted in between) counts as done.

- A legacy token Secret dies with its Secret; a pod's bound token dies with its Pod
  (https://kubernetes.io/docs/reference/access-authn-authz/service-account-tokens/): both
  deletions are final, so both are declared irreversible.
- Narrowing a service account's RBAC removes it from every binding that lets it reach
  credentials (read Secrets, mint tokens, impersonate, create workloads). A binding left with
  no subject stays, empty, and every removed subject is recorded on the binding itself
  (annotation `revoke.io/removed-subjects`) and in the journal, so `rollback` puts it back.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.kubernetes import rbac
from connectors.kubernetes.collect import decode_values
from connectors.kubernetes.transform import CLIENT_CERT, MINTED, POD_TOKEN, PROVIDER, SA, SECRET, TOKEN_SECRET, parse_id
from connectors.recognize import recognize, substitute
from revoke.connector import ActionContext, ActionResult, ConnectorError, ProbeResult, Replacement
from revoke.model import Node

if TYPE_CHECKING:
    from connectors.kubernetes.client import KubeClient

REMOVED = "revoke.io/removed-subjects"


def _read(client: KubeClient, method: str, *args: str, group: str = "core", node: str | None = None) -> dict[str, Any] | None:
    try:
        return client.call(group, method, *args, read=True, node=node)
    except ConnectorError as err:
        if err.code == "404":
            return None
        raise


def _result(node: Node, action: str, changed: bool, detail: str, ctx: ActionContext, **data: Any) -> ActionResult:
    if ctx.dry_run and changed:
        return ActionResult(node.id, action, ok=True, changed=False, detail=f"dry run: would {detail}",
                            data={"dry_run": True, **data})
    return ActionResult(node.id, action, ok=True, changed=changed, detail=detail, data=dict(data))


def _ns_name(node: Node) -> tuple[str, str]:
    _, _, rest = parse_id(node.id)
    if len(rest) != 2:
        raise ConnectorError(PROVIDER, "parse_id", "not a namespaced object id", node=node.id)
    return rest[0], rest[1]


# -- tokens -------------------------------------------------------------------------------------

def delete_token_secret(client: KubeClient, node: Node, ctx: ActionContext, action: str) -> ActionResult:
    ns, name = _ns_name(node)
    if _read(client, "read_namespaced_secret", name, ns, node=node.id) is None:
        return _result(node, action, False, "Secret already deleted", ctx, secret=f"{ns}/{name}")
    if ctx.dry_run:
        return _result(node, action, True, f"delete Secret {ns}/{name} (its token dies with it)", ctx)
    try:
        client.call("core", "delete_namespaced_secret", name, ns, read=False, node=node.id)
    except ConnectorError as err:
        if err.code != "404":
            raise
        return _result(node, action, False, "Secret already deleted", ctx, secret=f"{ns}/{name}")
    return _result(node, action, True, f"Secret {ns}/{name} deleted: its token no longer authenticates", ctx,
                   secret=f"{ns}/{name}")


def delete_bound_pod(client: KubeClient, node: Node, ctx: ActionContext, action: str) -> ActionResult:
    """A pod's projected token is bound to the Pod: deleting the Pod ends it (its controller, if
    any, starts a new Pod with a new token)."""
    ns, pod = _ns_name(node)
    current = _read(client, "read_namespaced_pod", pod, ns, node=node.id)
    uid = node.attrs.get("pod_uid")
    if current is None or (uid and (current.get("metadata") or {}).get("uid") != uid):
        return _result(node, action, False, "the Pod the token was bound to is already gone", ctx, pod=f"{ns}/{pod}")
    if ctx.dry_run:
        return _result(node, action, True, f"delete Pod {ns}/{pod} (its bound token dies with it)", ctx)
    try:
        client.call("core", "delete_namespaced_pod", pod, ns, read=False, node=node.id, grace_period_seconds=0)
    except ConnectorError as err:
        if err.code != "404":
            raise
    return _result(node, action, True, f"Pod {ns}/{pod} deleted: its bound token no longer authenticates", ctx,
                   pod=f"{ns}/{pod}", pod_uid=uid or "")


# -- RBAC ---------------------------------------------------------------------------------------

def _bindings(client: KubeClient) -> list[tuple[str, dict[str, Any]]]:
    crbs, _ = client.list_all("rbac", "list_cluster_role_binding")
    rbs, _ = client.list_all("rbac", "list_role_binding_for_all_namespaces")
    return [("ClusterRoleBinding", b) for b in crbs] + [("RoleBinding", b) for b in rbs]


def _role_rules(client: KubeClient, ref: dict[str, Any], ns: str) -> list[dict[str, Any]]:
    if ref.get("kind") == "ClusterRole":
        role = _read(client, "read_cluster_role", ref.get("name", ""), group="rbac")
    else:
        role = _read(client, "read_namespaced_role", ref.get("name", ""), ns, group="rbac")
    return list((role or {}).get("rules") or [])


def _is_subject(subject: dict[str, Any], ns: str, name: str, binding_ns: str) -> bool:
    return (subject.get("kind") == "ServiceAccount" and subject.get("name") == name
            and (subject.get("namespace") or binding_ns) == ns)


def _label(kind: str, meta: dict[str, Any]) -> str:
    return f"{kind}/{meta['namespace']}/{meta['name']}" if meta.get("namespace") else f"{kind}/{meta['name']}"


def reaching_bindings(client: KubeClient, ns: str, name: str) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(kind, binding, what it reaches) for each binding naming the account directly whose role
    lets it reach credentials."""
    out = []
    for kind, b in _bindings(client):
        bns = (b.get("metadata") or {}).get("namespace") or ""
        if not any(_is_subject(s, ns, name, bns) for s in b.get("subjects") or []):
            continue
        reaches = sorted({r for rule in _role_rules(client, b.get("roleRef") or {}, bns)
                          if (r := rbac.reaching_rule(rule)) is not None})
        if reaches:
            out.append((kind, b, reaches))
    return out


def _replace_binding(client: KubeClient, kind: str, binding: dict[str, Any], node: Node) -> None:
    meta = binding["metadata"]
    if kind == "ClusterRoleBinding":
        client.call("rbac", "replace_cluster_role_binding", meta["name"], read=False, node=node.id, body=binding)
    else:
        client.call("rbac", "replace_namespaced_role_binding", meta["name"], meta["namespace"], read=False,
                    node=node.id, body=binding)


def narrow_account(client: KubeClient, node: Node, ctx: ActionContext, action: str) -> ActionResult:
    """Remove the account from each binding that lets it reach credentials (reversible)."""
    ns, name = _ns_name(node)
    found = reaching_bindings(client, ns, name)
    if not found:
        return _result(node, action, False, "no binding names this account with access to credentials", ctx)
    labels = [_label(k, b["metadata"]) for k, b, _ in found]
    if ctx.dry_run:
        return _result(node, action, True, f"remove the account from {', '.join(labels)}", ctx, bindings=labels)
    journaled = []
    for kind, b, reaches in found:
        meta = b["metadata"]
        bns = meta.get("namespace") or ""
        before = list(b.get("subjects") or [])
        removed = [s for s in before if _is_subject(s, ns, name, bns)]
        b["subjects"] = [s for s in before if not _is_subject(s, ns, name, bns)]
        ann = meta.setdefault("annotations", {}) or {}
        meta["annotations"] = ann
        kept = json.loads(ann.get(REMOVED) or "[]")
        kept += [{"incident": ctx.incident, "subject": s, "at": datetime.now(UTC).isoformat(timespec="seconds")}
                 for s in removed]
        ann[REMOVED] = json.dumps(kept, sort_keys=True)
        _replace_binding(client, kind, b, node)
        journaled.append({"binding": _label(kind, meta), "role": f"{b['roleRef']['kind']}/{b['roleRef']['name']}",
                          "reaches": reaches, "subjects_before": before, "subjects_after": b["subjects"]})
    return _result(node, action, True, f"removed the account from {', '.join(labels)} "
                   "(a binding left with no subject is kept, empty, for rollback)", ctx, bindings=journaled)


def restore_account(client: KubeClient, node: Node, ctx: ActionContext) -> ActionResult:
    """`rollback`: put the account back into every binding it was removed from (by any incident)."""
    ns, name = _ns_name(node)
    restored = []
    for kind, b in _bindings(client):
        meta = b.get("metadata") or {}
        bns = meta.get("namespace") or ""
        kept = json.loads((meta.get("annotations") or {}).get(REMOVED) or "[]")
        mine = [e for e in kept if _is_subject(e.get("subject") or {}, ns, name, bns)]
        if not mine:
            continue
        restored.append(_label(kind, meta))
        if ctx.dry_run:
            continue
        subjects = list(b.get("subjects") or [])
        for entry in mine:
            if entry["subject"] not in subjects:
                subjects.append(entry["subject"])
        b["subjects"] = subjects
        rest = [e for e in kept if e not in mine]
        if rest:
            meta["annotations"][REMOVED] = json.dumps(rest, sort_keys=True)
        else:
            meta["annotations"].pop(REMOVED, None)
        _replace_binding(client, kind, b, node)
    if not restored:
        return _result(node, "rollback", False, "no binding records this account as removed", ctx)
    return _result(node, "rollback", True, f"restored the account in {', '.join(restored)}", ctx, bindings=restored)


def confirm_narrowed(client: KubeClient, node: Node) -> ProbeResult:
    """Readback of a narrowing: no binding names the account with access to credentials, and
    SubjectAccessReview says what its groups may still do."""
    ns, name = _ns_name(node)
    found = reaching_bindings(client, ns, name)
    if found:
        return ProbeResult(node.id, True, "bindings name the account again: " +
                           ", ".join(_label(k, b["metadata"]) for k, b, _ in found))
    checks = [("get", "secrets", ""), ("create", "serviceaccounts", "token"), ("impersonate", "serviceaccounts", ""),
              ("create", "pods", "")]
    still = [f"{v} {r}{'/' + s if s else ''}" for v, r, s in checks
             if access_review(client, f"system:serviceaccount:{ns}:{name}", list(rbac.service_account_groups(ns)),
                              verb=v, resource=r, subresource=s, namespace=ns)]
    detail = f"; SubjectAccessReview still allows through its groups: {', '.join(still)}" if still else ""
    return ProbeResult(node.id, False, "no binding names the account with access to credentials; "
                       f"SubjectAccessReview in {ns}: " + ("denied" if not still else "partly allowed") + detail)


def access_review(client: KubeClient, user: str, groups: list[str], **attrs: str) -> bool:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": {k: v for k, v in attrs.items() if v}}}
    out = client.call("authz", "create_subject_access_review", read=True, body=body)
    return bool((out.get("status") or {}).get("allowed"))


# -- Secrets as stores --------------------------------------------------------------------------

def _secret(client: KubeClient, store: Node) -> tuple[dict[str, Any], dict[str, str]]:
    ns, name = _ns_name(store)
    obj = _read(client, "read_namespaced_secret", name, ns, node=store.id)
    if obj is None:
        raise ConnectorError(PROVIDER, "read_namespaced_secret", "the Secret no longer exists", node=store.id, code="404")
    return obj, decode_values(obj.get("data"))


def _refs(store: Node, values: dict[str, str]) -> set[str]:
    out = set()
    for item in recognize(values):
        out.add(item.ref or f"{store.id.replace(':secret:', f':{item.kind.value}:', 1)}#{','.join(item.fields)}")
        if item.fingerprint:
            out.add("fp:" + item.fingerprint)
    return out


def write_store(client: KubeClient, store: Node, old: Node, replacement: Replacement) -> ActionResult:
    """Write the replacement where the old credential is, keeping every other key: a new version
    (resourceVersion) of the same Secret, refused (409) if the Secret changed since it was read."""
    obj, values = _secret(client, store)
    refs = _refs(store, values)
    if replacement.new_id in refs and old.id not in refs:
        return ActionResult(store.id, "write_store", changed=False, detail="already holds the replacement")
    old_ref = old.id if not old.id.startswith(f"{PROVIDER}:") else "fp:" + old.fingerprint
    try:
        updated = substitute(values, old_ref, replacement.material.reveal(), replacement.kind)
    except KeyError:
        raise ConnectorError(PROVIDER, "write_store", f"the Secret holds neither {old.id} nor {replacement.new_id}",
                             node=store.id) from None
    obj["data"] = {k: base64.b64encode(str(v).encode()).decode() for k, v in updated.items()}
    obj.pop("stringData", None)
    ns, name = _ns_name(store)
    out = client.call("core", "replace_namespaced_secret", name, ns, read=False, node=store.id, body=obj)
    version = (out.get("metadata") or {}).get("resourceVersion", "")
    return ActionResult(store.id, "write_store", detail=f"new version {version} of Secret {ns}/{name} written",
                        data={"version": version, "new_id": replacement.new_id,
                              "fingerprint": replacement.fingerprint})


def store_holds(client: KubeClient, store: Node) -> set[str]:
    _, values = _secret(client, store)
    return _refs(store, values)


# -- probes -------------------------------------------------------------------------------------

def probe(client: KubeClient, node: Node) -> ProbeResult:
    kind = node.id.split(":", 2)[1]
    if kind == TOKEN_SECRET:
        return _probe_token_secret(client, node)
    if kind == POD_TOKEN:
        return _probe_pod_token(client, node)
    if kind == CLIENT_CERT:
        return _probe_cert(client, node)
    if kind in (SECRET, SA):
        ns, name = _ns_name(node)
        method = "read_namespaced_secret" if kind == SECRET else "read_namespaced_service_account"
        obj = _read(client, method, name, ns, node=node.id)
        if obj is None:
            return ProbeResult(node.id, False, f"{method}: 404 (deleted)")
        return ProbeResult(node.id, True, f"{method}: exists (resourceVersion {obj['metadata'].get('resourceVersion')})")
    if kind == MINTED:
        return ProbeResult(node.id, None, "tokens minted with TokenRequest cannot be listed: attest once the "
                           "signing key is rotated or the account recreated")
    return ProbeResult(node.id, None, f"no probe for {kind} nodes")


def _probe_token_secret(client: KubeClient, node: Node) -> ProbeResult:
    ns, name = _ns_name(node)
    obj = _read(client, "read_namespaced_secret", name, ns, node=node.id)
    if obj is None:
        return ProbeResult(node.id, False, "read_namespaced_secret: 404 (a legacy token dies with its Secret)")
    token = decode_values(obj.get("data")).get("token", "")
    if not token:
        return ProbeResult(node.id, False, "the Secret holds no token")
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    out = client.call("authn", "create_token_review", read=True, node=node.id, body=body)
    del token, obj, body  # the review echoes the token: keep nothing of it
    authenticated = bool((out.get("status") or {}).get("authenticated"))
    return ProbeResult(node.id, authenticated, f"TokenReview: authenticated={str(authenticated).lower()}")


def _probe_pod_token(client: KubeClient, node: Node) -> ProbeResult:
    ns, pod = _ns_name(node)
    current = _read(client, "read_namespaced_pod", pod, ns, node=node.id)
    uid = node.attrs.get("pod_uid")
    if current is None:
        return ProbeResult(node.id, False, "read_namespaced_pod: 404 (a bound token dies with its Pod)")
    if uid and (current.get("metadata") or {}).get("uid") != uid:
        return ProbeResult(node.id, False, "the Pod was recreated with a new uid: the old bound token is refused")
    sa = str(node.attrs.get("service_account") or "default")
    if _read(client, "read_namespaced_service_account", sa, ns, node=node.id) is None:
        return ProbeResult(node.id, False, "its ServiceAccount is deleted: the token is refused")
    return ProbeResult(node.id, True, "the Pod it is bound to and its ServiceAccount exist: the token authenticates")


def _probe_cert(client: KubeClient, node: Node) -> ProbeResult:
    from connectors.kubernetes.collect import cert_info

    expires = node.expires
    if expires is not None and expires <= datetime.now(UTC):
        return ProbeResult(node.id, False, f"expired at {expires.isoformat()}")
    cm = _read(client, "read_namespaced_config_map", "kube-root-ca.crt", "kube-system", node=node.id)
    info = cert_info(((cm or {}).get("data") or {}).get("ca.crt", ""))
    if info is None:
        return ProbeResult(node.id, None, "kube-root-ca.crt unreadable: cannot tell which CA the cluster trusts")
    if info["sha256"] != node.attrs.get("ca_sha256"):
        return ProbeResult(node.id, False, "the cluster CA was replaced: the API server refuses certificates of the old CA")
    return ProbeResult(node.id, True, "issued by the cluster CA still in kube-root-ca.crt; Kubernetes cannot "
                       "revoke it (rotate the CA)")
