"""The state of the Kubernetes API double: objects in their real JSON shape, and the controllers
whose effects a client can observe.

Objects are kept per (API group, resource) and (namespace, name) as the dicts the API returns.
What the controllers do, each after its documentation page:
- a new namespace gets a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap
  (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#root-ca-configmap);
- a `kubernetes.io/service-account-token` Secret annotated with a ServiceAccount name gets a
  token for that account (and its uid), the CA and the namespace; deleting the account deletes
  those Secrets (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#token-controller);
- a Pod gets the `kube-api-access-*` projected volume, and its kubelet a token bound to the Pod
  (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#bound-service-account-token-volume);
- deleting a namespace deletes what it holds;
- every write bumps `metadata.resourceVersion`; an update carrying a stale one is a 409 Conflict
  (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions).
"""

from __future__ import annotations

import base64
import copy
import itertools
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from examples.lab.k8s_double_auth import (
    ClusterCA,
    SigningKey,
    bound_claims,
    legacy_claims,
    sa_groups,
)

CORE, RBAC = "", "rbac.authorization.k8s.io"
CERTS = "certificates.k8s.io"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
# (group, resource) -> namespaced?
RESOURCES: dict[tuple[str, str], bool] = {
    (CORE, "namespaces"): False, (CORE, "serviceaccounts"): True, (CORE, "secrets"): True,
    (CORE, "pods"): True, (CORE, "configmaps"): True,
    (RBAC, "roles"): True, (RBAC, "rolebindings"): True,
    (RBAC, "clusterroles"): False, (RBAC, "clusterrolebindings"): False,
    (CERTS, "certificatesigningrequests"): False,
}
KINDS = {"namespaces": "Namespace", "serviceaccounts": "ServiceAccount", "secrets": "Secret", "pods": "Pod",
         "configmaps": "ConfigMap", "roles": "Role", "rolebindings": "RoleBinding", "clusterroles": "ClusterRole",
         "clusterrolebindings": "ClusterRoleBinding", "certificatesigningrequests": "CertificateSigningRequest"}
BOUND_TOKEN_SECONDS = 3607  # the kubelet's default projected token lifetime


class ApiError(Exception):
    """A Kubernetes `Status` failure (https://kubernetes.io/docs/reference/using-api/api-concepts/#response-status-kind)."""

    def __init__(self, code: int, reason: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.retry_after = code, reason, message, retry_after

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason, "code": self.code}
        if self.retry_after is not None:
            out["details"] = {"retryAfterSeconds": self.retry_after}
        return out


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class State:
    """Every object, the signing key, the CA and the kubelets' pod tokens, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in RESOURCES}
        self._version = itertools.count(1)
        self.signing = SigningKey()
        self.ca = ClusterCA()
        self.pod_tokens: dict[str, str] = {}  # pod uid -> the token its kubelet mounted (lab inspection)
        self.throttle: list[int] = []  # Retry-After seconds of the next 429s
        self.calls: list[tuple[str, str]] = []
        for ns in ("kube-system", "default"):
            self.create(CORE, "namespaces", "", {"metadata": {"name": ns}})
        self._bootstrap_rbac()

    # -- generic object store ------------------------------------------------------------------

    def table(self, group: str, resource: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self.objects[(group, resource)]

    def view(self, group: str, resource: str) -> dict[tuple[str, str], dict[str, Any]]:
        """`objects(group, resource)` for the authorizer."""
        return self.objects[(group, resource)]

    def get(self, group: str, resource: str, ns: str, name: str) -> dict[str, Any]:
        obj = self.table(group, resource).get((ns, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        return obj

    def find(self, group: str, resource: str, ns: str, name: str) -> dict[str, Any] | None:
        return self.table(group, resource).get((ns, name))

    def listed(self, group: str, resource: str, ns: str | None) -> list[dict[str, Any]]:
        """Sorted by (namespace, name), so a `continue` offset is stable between pages."""
        items = self.table(group, resource)
        return [items[k] for k in sorted(items) if ns is None or k[0] == ns]

    def create(self, group: str, resource: str, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        name = meta.get("name") or (meta.get("generateName", "") + uuid.uuid4().hex[:5] if meta.get("generateName") else "")
        if not name:
            raise ApiError(422, "Invalid", f"{resource}: metadata.name: Required value")
        if RESOURCES[(group, resource)]:
            if (group, resource) != (CORE, "namespaces") and self.find(CORE, "namespaces", "", ns) is None:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found')
        else:
            ns = ""
        if (ns, name) in self.table(group, resource):
            raise ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists')
        meta.update({"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now_text(),
                     "resourceVersion": str(next(self._version))})
        if ns:
            meta["namespace"] = ns
        body["kind"] = KINDS[resource]
        body["apiVersion"] = f"{group}/v1" if group else "v1"
        self.table(group, resource)[(ns, name)] = body
        self._after_create(group, resource, body)
        return body

    def replace(self, group: str, resource: str, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        old = self.get(group, resource, ns, name)
        meta = body.setdefault("metadata", {})
        sent = meta.get("resourceVersion")
        if sent and sent != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": '
                           "the object has been modified; please apply your changes to the latest version and try again")
        for keep in ("uid", "creationTimestamp", "namespace", "name"):
            if keep in old["metadata"]:
                meta[keep] = old["metadata"][keep]
        meta["resourceVersion"] = str(next(self._version))
        body["kind"], body["apiVersion"] = old["kind"], old["apiVersion"]
        self.table(group, resource)[(ns, name)] = body
        return body

    def patch(self, group: str, resource: str, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch (RFC 7386); a strategic merge patch of maps behaves the same."""
        merged = _merge(copy.deepcopy(self.get(group, resource, ns, name)), patch)
        merged["metadata"].pop("resourceVersion", None)
        return self.replace(group, resource, ns, name, merged)

    def delete(self, group: str, resource: str, ns: str, name: str) -> dict[str, Any]:
        obj = self.get(group, resource, ns, name)
        del self.table(group, resource)[(ns, name)]
        self._after_delete(group, resource, obj)
        return obj

    # -- controllers ---------------------------------------------------------------------------

    def _bootstrap_rbac(self) -> None:
        """The default `cluster-admin` ClusterRole and its binding to `system:masters`
        (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#user-facing-roles)."""
        self.create(RBAC, "clusterroles", "", {"metadata": {"name": "cluster-admin"}, "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]})
        self.create(RBAC, "clusterrolebindings", "", {
            "metadata": {"name": "cluster-admin"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:masters"}]})

    def _after_create(self, group: str, resource: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if resource == "namespaces":
            obj["status"] = {"phase": "Active"}
            self.create(CORE, "serviceaccounts", meta["name"], {"metadata": {"name": "default"}})
            self.create(CORE, "configmaps", meta["name"], {"metadata": {"name": "kube-root-ca.crt"},
                                                          "data": {"ca.crt": self.ca.pem}})
        elif resource == "secrets" and obj.get("type") == SA_TOKEN_TYPE:
            self._fill_legacy_token(obj)
        elif resource == "pods":
            self._mount_pod_token(obj)

    def _after_delete(self, group: str, resource: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if resource == "namespaces":
            for (g, r), items in self.objects.items():
                for key in [k for k in items if RESOURCES[(g, r)] and k[0] == meta["name"]]:
                    self._after_delete(g, r, items.pop(key))
        elif resource == "serviceaccounts":
            for key, secret in list(self.table(CORE, "secrets").items()):
                ann = secret["metadata"].get("annotations") or {}
                if (key[0] == meta["namespace"] and secret.get("type") == SA_TOKEN_TYPE
                        and ann.get(SA_NAME_ANNOTATION) == meta["name"]):
                    del self.table(CORE, "secrets")[key]
        elif resource == "pods":
            self.pod_tokens.pop(meta["uid"], None)

    def _fill_legacy_token(self, secret: dict[str, Any]) -> None:
        meta = secret["metadata"]
        ann = meta.setdefault("annotations", {})
        sa = self.find(CORE, "serviceaccounts", meta["namespace"], ann.get(SA_NAME_ANNOTATION, ""))
        if sa is None:
            return
        ann[SA_UID_ANNOTATION] = sa["metadata"]["uid"]
        token = self.signing.sign(legacy_claims(meta["namespace"], sa["metadata"]["name"], sa["metadata"]["uid"],
                                                meta["name"]))
        secret["data"] = {**(secret.get("data") or {}), "token": b64(token), "ca.crt": b64(self.ca.pem),
                          "namespace": b64(meta["namespace"])}

    def _mount_pod_token(self, pod: dict[str, Any]) -> None:
        spec = pod.setdefault("spec", {})
        spec.setdefault("serviceAccountName", "default")
        meta = pod["metadata"]
        sa = self.find(CORE, "serviceaccounts", meta["namespace"], spec["serviceAccountName"])
        if sa is None:  # the ServiceAccount admission plugin refuses a pod of a missing account
            del self.table(CORE, "pods")[(meta["namespace"], meta["name"])]
            raise ApiError(403, "Forbidden", f'pods "{meta["name"]}" is forbidden: error looking up service '
                           f'account {meta["namespace"]}/{spec["serviceAccountName"]}: serviceaccount not found')
        pod["status"] = {"phase": "Running"}
        if spec.get("automountServiceAccountToken") is False or sa.get("automountServiceAccountToken") is False:
            return
        spec.setdefault("volumes", []).append({"name": f"kube-api-access-{uuid.uuid4().hex[:5]}", "projected": {
            "sources": [{"serviceAccountToken": {"expirationSeconds": BOUND_TOKEN_SECONDS, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}})
        self.pod_tokens[meta["uid"]] = self.mint(meta["namespace"], spec["serviceAccountName"],
                                                 audiences=[], seconds=BOUND_TOKEN_SECONDS,
                                                 bound={"kind": "Pod", "name": meta["name"], "uid": meta["uid"]})

    # -- tokens --------------------------------------------------------------------------------

    def mint(self, ns: str, sa_name: str, *, audiences: list[str], seconds: int,
             bound: dict[str, str] | None) -> str:
        """TokenRequest (https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/):
        a bound object must exist and carry the uid given (or any, when none is given)."""
        sa = self.get(CORE, "serviceaccounts", ns, sa_name)
        if bound:
            resource = {"Pod": "pods", "Secret": "secrets"}.get(bound.get("kind", ""))
            if resource is None:
                raise ApiError(400, "BadRequest", f"cannot bind token to object of kind {bound.get('kind')}")
            obj = self.get(CORE, resource, ns, bound["name"])
            if bound.get("uid") and bound["uid"] != obj["metadata"]["uid"]:
                raise ApiError(409, "Conflict", f'the UID in the bound object reference ({bound["uid"]}) does not '
                               f'match the UID in record. The object might have been deleted and then recreated')
            bound = {"kind": bound["kind"], "name": bound["name"], "uid": obj["metadata"]["uid"]}
        return self.signing.sign(bound_claims(ns, sa_name, sa["metadata"]["uid"], audiences=audiences or [
            "https://kubernetes.default.svc.cluster.local"], seconds=seconds, bound=bound))

    def review(self, token: str) -> dict[str, Any]:
        """TokenReview status: the signature must be the current key's, the account must still
        exist with the same uid, and so must the Secret or Pod the token is bound to
        (https://kubernetes.io/docs/reference/access-authn-authz/service-account-tokens/#bound-service-account-tokens)."""
        import time

        claims = self.signing.verify(token)
        if claims is None:
            return {"authenticated": False, "error": "invalid bearer token"}
        if claims.get("iss") == "kubernetes/serviceaccount":
            ns = claims.get("kubernetes.io/serviceaccount/namespace", "")
            name = claims.get("kubernetes.io/serviceaccount/service-account.name", "")
            uid = claims.get("kubernetes.io/serviceaccount/service-account.uid", "")
            secret = self.find(CORE, "secrets", ns, claims.get("kubernetes.io/serviceaccount/secret.name", ""))
            if secret is None or (secret.get("data") or {}).get("token") != b64(token):
                return {"authenticated": False, "error": "token has been invalidated (its Secret was deleted)"}
        else:
            private = claims.get("kubernetes.io") or {}
            ns, name = private.get("namespace", ""), (private.get("serviceaccount") or {}).get("name", "")
            uid = (private.get("serviceaccount") or {}).get("uid", "")
            if int(claims.get("exp", 0)) <= time.time():
                return {"authenticated": False, "error": "token has expired"}
            for kind, resource in (("pod", "pods"), ("secret", "secrets")):
                ref = private.get(kind)
                if ref:
                    obj = self.find(CORE, resource, ns, ref.get("name", ""))
                    if obj is None or obj["metadata"]["uid"] != ref.get("uid"):
                        return {"authenticated": False,
                                "error": f"token is bound to a {kind} that no longer exists"}
        sa = self.find(CORE, "serviceaccounts", ns, name)
        if sa is None or sa["metadata"]["uid"] != uid:
            return {"authenticated": False, "error": "the service account of this token no longer exists"}
        return {"authenticated": True, "user": {"username": f"system:serviceaccount:{ns}:{name}", "uid": uid,
                                                 "groups": sa_groups(ns)}}


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target
