"""A stateful double of the Kubernetes API server, over HTTP on 127.0.0.1, speaking the real JSON
paths so the official `kubernetes` client is used unchanged.

No kube-apiserver can run on these machines, and the mock servers that exist have no uids,
TokenRequest or TokenReview. This serves the paths the connector and the lab need:
- core v1: namespaces, serviceaccounts (+ `token`, the TokenRequest subresource), secrets,
  pods, configmaps; rbac.authorization.k8s.io/v1: roles, rolebindings, clusterroles,
  clusterrolebindings; certificates.k8s.io/v1: certificatesigningrequests;
  authentication.k8s.io/v1 tokenreviews and authorization.k8s.io/v1 subjectaccessreviews;
- get, list (with `limit` / `continue` chunking:
  https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks),
  create, update (PUT, resourceVersion-checked), merge patch, delete;
- every request is authenticated (a static bearer token for the lab's admin, in `system:masters`,
  https://kubernetes.io/docs/reference/access-authn-authz/authentication/#static-token-file, or a
  service-account token) and authorized by RBAC with the verb the documentation derives from the
  method (https://kubernetes.io/docs/reference/access-authn-authz/authorization/#determine-the-request-verb);
- 429 with `Retry-After` on demand, as API Priority and Fairness answers an overloaded server
  (https://kubernetes.io/docs/concepts/cluster-administration/flow-control/).
State and controllers are in `k8s_double_state.py`, tokens, the CA and RBAC in
`k8s_double_auth.py`, the lab scenario in `k8s_double_lab.py`. Client certificates cannot be
presented over plain HTTP: `authenticate_certificate` answers what TLS would.
"""

from __future__ import annotations

import base64
import json
import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from examples.lab.k8s_double_auth import MASTERS, authorize, client_csr
from examples.lab.k8s_double_state import CERTS, CORE, RBAC, RESOURCES, ApiError, State, b64
from examples.lab.loopback import LoopbackServer

__all__ = ["KubeDouble"]
REVIEWS = {("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews")}
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class Request:
    """A request's attributes, parsed from its path the way the API server does."""

    def __init__(self, method: str, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            self.group, rest = CORE, parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            self.group, rest = parts[1], parts[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        self.namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            self.namespace, rest = rest[1], rest[2:]
        if not rest:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self.resource = rest[0]
        self.name = rest[1] if len(rest) > 1 else ""
        self.subresource = rest[2] if len(rest) > 2 else ""
        key = (self.group, self.resource)
        if key not in RESOURCES and key not in REVIEWS:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        if self.resource == "namespaces" and self.name and not self.subresource:
            self.namespace = ""
        self.verb = VERBS.get(method, "get" if self.name else "list")

    def attrs(self) -> dict[str, str]:
        return {"verb": self.verb, "group": self.group, "resource": self.resource, "subresource": self.subresource,
                "namespace": self.namespace or (self.name if self.resource == "namespaces" else ""),
                "name": self.name}


class KubeDouble(LoopbackServer):
    """`with KubeDouble() as k8s:` an API server at `k8s.url`; `k8s.admin_token` authenticates as
    a `system:masters` member. Seed with `apply` / `add_*`; fault with `throttle`; judge with
    `review`, `access`, `authenticate_certificate`, `secret_data`, `exists`."""

    def __init__(self) -> None:
        self.state = State()
        self.admin_token = "lab-admin-" + secrets.token_hex(16)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(_Handler):
            state = double.state
            admin_token = double.admin_token

        return Handler

    def kubeconfig(self, context: str = "lab") -> dict[str, Any]:
        """A kubeconfig (as a mapping) reaching this double with the admin token."""
        return {"apiVersion": "v1", "kind": "Config", "current-context": context,
                "clusters": [{"name": f"{context}-cluster", "cluster": {"server": self.url}}],
                "users": [{"name": f"{context}-admin", "user": {"token": self.admin_token}}],
                "contexts": [{"name": context, "context": {"cluster": f"{context}-cluster", "user": f"{context}-admin"}}]}

    # -- seeding ---------------------------------------------------------------------------

    def apply(self, group: str, resource: str, body: dict[str, Any], namespace: str = "") -> dict[str, Any]:
        with self.state.lock:
            return self.state.create(group, resource, namespace, body)

    def add_namespace(self, name: str) -> None:
        self.apply(CORE, "namespaces", {"metadata": {"name": name}})

    def add_service_account(self, ns: str, name: str) -> str:
        """Returns the account's uid."""
        return str(self.apply(CORE, "serviceaccounts", {"metadata": {"name": name}}, ns)["metadata"]["uid"])

    def add_secret(self, ns: str, name: str, data: dict[str, str], *, type_: str = "Opaque",
                   annotations: dict[str, str] | None = None) -> dict[str, Any]:
        body = {"metadata": {"name": name, "annotations": annotations or {}}, "type": type_,
                "data": {k: b64(v) for k, v in data.items()}}
        return self.apply(CORE, "secrets", body, ns)

    def add_legacy_token(self, ns: str, name: str, sa: str) -> str:
        """A `kubernetes.io/service-account-token` Secret for `sa`; returns its token (lab material)."""
        secret = self.add_secret(ns, name, {}, type_="kubernetes.io/service-account-token",
                                 annotations={"kubernetes.io/service-account.name": sa})
        return base64.b64decode(secret["data"]["token"]).decode()

    def add_pod(self, ns: str, name: str, sa: str = "default", *, secret_volumes: list[str] = (),  # type: ignore[assignment]
                env_secrets: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
        """A running pod of `sa` mounting Secrets as volumes and env vars; returns the token its
        kubelet mounted (lab material)."""
        container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1"}
        if env_secrets:
            container["env"] = [{"name": f"V{i}", "valueFrom": {"secretKeyRef": {"name": s, "key": k}}}
                                for i, (s, k) in enumerate(env_secrets)]
        body = {"metadata": {"name": name}, "spec": {"serviceAccountName": sa, "containers": [container],
                "volumes": [{"name": f"s{i}", "secret": {"secretName": s}} for i, s in enumerate(secret_volumes)]}}
        with self.state.lock:
            pod = self.state.create(CORE, "pods", ns, body)
            return self.state.pod_tokens[pod["metadata"]["uid"]]

    def add_role(self, name: str, rules: list[dict[str, Any]], ns: str = "") -> None:
        self.apply(RBAC, "roles" if ns else "clusterroles", {"metadata": {"name": name}, "rules": rules}, ns)

    def add_binding(self, name: str, role: str, subjects: list[dict[str, str]], ns: str = "",
                    role_kind: str | None = None) -> None:
        """A RoleBinding in `ns` (of a Role, or a ClusterRole with role_kind="ClusterRole"), or a
        ClusterRoleBinding when ns is empty."""
        kind = role_kind or ("Role" if ns else "ClusterRole")
        body = {"metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role},
                "subjects": subjects}
        self.apply(RBAC, "rolebindings" if ns else "clusterrolebindings", body, ns)

    def issue_client_certificate(self, name: str, user: str, groups: list[str]) -> dict[str, str]:
        """A CSR for `user` in `groups`, approved and signed for kube-apiserver clients; returns
        {certificate_pem, private_key_pem} (lab material)."""
        csr_pem, key_pem = client_csr(user, groups)
        with self.state.lock:
            cert = self.state.ca.sign_csr(csr_pem)
            self.state.create(CERTS, "certificatesigningrequests", "", {
                "metadata": {"name": name},
                "spec": {"request": base64.b64encode(csr_pem).decode(), "signerName": "kubernetes.io/kube-apiserver-client",
                         "usages": ["client auth"], "username": "lab-admin", "groups": [MASTERS, "system:authenticated"]},
                "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "LabApprove",
                                           "message": "approved by the lab"}],
                           "certificate": base64.b64encode(cert.encode()).decode()}})
        return {"certificate_pem": cert, "private_key_pem": key_pem}

    # -- the operator's manual tasks -------------------------------------------------------

    def rotate_signing_key(self) -> None:
        """Replace the service-account signing key and drop the old one: every token it signed
        stops authenticating."""
        from examples.lab.k8s_double_auth import SigningKey

        with self.state.lock:
            self.state.signing = SigningKey()

    def rotate_ca(self) -> None:
        """Replace the cluster CA (and every kube-root-ca.crt): certificates it signed are refused."""
        from examples.lab.k8s_double_auth import ClusterCA

        with self.state.lock:
            self.state.ca = ClusterCA()
            for cm in self.state.listed(CORE, "configmaps", None):
                if cm["metadata"]["name"] == "kube-root-ca.crt":
                    cm["data"] = {"ca.crt": self.state.ca.pem}

    # -- faults ----------------------------------------------------------------------------

    def throttle(self, times: int, retry_after: int = 1) -> None:
        """The next `times` requests get 429 Too Many Requests with `Retry-After: retry_after`."""
        with self.state.lock:
            self.state.throttle.extend([retry_after] * times)

    # -- judging -----------------------------------------------------------------------------

    def review(self, token: str) -> bool:
        with self.state.lock:
            return bool(self.state.review(token)["authenticated"])

    def access(self, user: str, groups: list[str], **attrs: str) -> bool:
        with self.state.lock:
            return authorize(self.state.view, user, groups, {"group": "", "subresource": "", "name": "", **attrs})[0]

    def token_can(self, token: str, **attrs: str) -> bool:
        """Would a request with this bearer token be authenticated and allowed?"""
        with self.state.lock:
            status = self.state.review(token)
            if not status["authenticated"]:
                return False
            user = status["user"]
            return authorize(self.state.view, user["username"], user["groups"],
                             {"group": "", "subresource": "", "name": "", **attrs})[0]

    def authenticate_certificate(self, cert_pem: str) -> dict[str, Any] | None:
        with self.state.lock:
            return self.state.ca.authenticate(cert_pem)

    def exists(self, resource: str, ns: str, name: str, group: str = CORE) -> bool:
        with self.state.lock:
            return self.state.find(group, resource, ns, name) is not None

    def get(self, resource: str, ns: str, name: str, group: str = CORE) -> dict[str, Any] | None:
        with self.state.lock:
            obj = self.state.find(group, resource, ns, name)
            return json.loads(json.dumps(obj)) if obj is not None else None

    def secret_data(self, ns: str, name: str) -> dict[str, str] | None:
        """A Secret's decoded values (lab inspection)."""
        obj = self.get("secrets", ns, name)
        if obj is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


class _Handler(BaseHTTPRequestHandler):
    state: State
    admin_token: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            with self.state.lock:
                self.state.calls.append((method, url.path))
                if self.state.throttle:
                    wait = self.state.throttle.pop(0)
                    raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.", wait)
                req = Request(method, url.path)
                body = json.loads(raw) if raw else {}
                user, groups = self._authenticate()
                allowed, _ = authorize(self.state.view, user, groups, req.attrs())
                if not allowed and req.resource not in ("tokenreviews", "subjectaccessreviews"):
                    raise ApiError(403, "Forbidden", f'{req.resource} is forbidden: User "{user}" cannot '
                                   f'{req.verb} resource "{req.resource}" in API group "{req.group}"')
                code, out = self._dispatch(method, req, body, query)
            self._send(code, out)
        except ApiError as err:
            headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
            self._send(err.code, err.status(), headers)
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, ApiError(400, "BadRequest", f"malformed request: {type(exc).__name__}").status())

    def _authenticate(self) -> tuple[str, list[str]]:
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if token and secrets.compare_digest(token, self.admin_token):
            return "lab-admin", [MASTERS, "system:authenticated"]
        if token:
            status = self.state.review(token)
            if status["authenticated"]:
                return status["user"]["username"], status["user"]["groups"]
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def _dispatch(self, method: str, req: Request, body: dict[str, Any],
                  query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        st, g, r, ns, name = self.state, req.group, req.resource, req.namespace, req.name
        if (g, r) in REVIEWS:
            return 201, self._review(r, body)
        if req.subresource == "token" and r == "serviceaccounts" and method == "POST":
            return 201, self._token_request(ns, name, body)
        if req.subresource:
            raise ApiError(404, "NotFound", f"subresource {req.subresource} is not served by this double")
        if method == "GET" and name:
            return 200, st.get(g, r, ns, name)
        if method == "GET":
            return 200, self._list(req, query)
        if method == "POST":
            return 201, st.create(g, r, ns, body)
        if method == "PUT":
            return 200, st.replace(g, r, ns, name, body)
        if method == "PATCH":
            return 200, st.patch(g, r, ns, name, body)
        if method == "DELETE":
            gone = st.delete(g, r, ns, name)
            # a pod's delete answers with the pod, marked for deletion (grace period 0 here:
            # https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination)
            if r == "pods":
                gone["metadata"]["deletionTimestamp"] = gone["metadata"]["creationTimestamp"]
                return 200, gone
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        raise ApiError(405, "MethodNotAllowed", method)

    def _list(self, req: Request, query: dict[str, str]) -> dict[str, Any]:
        items = self.state.listed(req.group, req.resource, req.namespace or None)
        start = 0
        if query.get("continue"):
            try:
                start = int(json.loads(base64.urlsafe_b64decode(query["continue"]))["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "invalid continue token") from None
        limit = int(query.get("limit") or 0)
        page = items[start:start + limit] if limit > 0 else items[start:]
        meta: dict[str, Any] = {"resourceVersion": str(len(self.state.calls))}
        end = start + len(page)
        if end < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": end}).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        kind = next((o["kind"] for o in items), req.resource[:-1].title())
        api = f"{req.group}/v1" if req.group else "v1"
        return {"kind": f"{kind}List", "apiVersion": api, "metadata": meta, "items": page}

    def _token_request(self, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise ApiError(422, "Invalid", "spec.expirationSeconds: may not specify a duration less than 10 minutes")
        token = self.state.mint(ns, name, audiences=list(spec.get("audiences") or []), seconds=seconds,
                                bound=spec.get("boundObjectRef"))
        from datetime import UTC, datetime, timedelta

        expires = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {"name": name, "namespace": ns},
                "spec": spec, "status": {"token": token, "expirationTimestamp": expires}}

    def _review(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("spec") or {}
        if resource == "tokenreviews":
            status = self.state.review(str(spec.get("token") or ""))
            # the API server returns the review it was sent, status filled in (the token included)
            return {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {},
                    "spec": spec, "status": status}
        attrs = {"group": "", "subresource": "", "name": "", "namespace": "",
                 **{k: str(v) for k, v in (spec.get("resourceAttributes") or {}).items()}}
        attrs.setdefault("resource", "")
        allowed, reason = authorize(self.state.view, str(spec.get("user") or ""), list(spec.get("groups") or []), attrs)
        return {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
                "spec": spec, "status": {"allowed": allowed, "reason": reason}}
