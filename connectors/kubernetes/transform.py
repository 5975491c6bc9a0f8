"""Pure transforms for the Kubernetes connector: a cluster's payload (plain dicts) -> nodes, edges,
findings, and the id formulas every other module of the package uses.

No SDK here. `collect` fetches the API's JSON and replaces each Secret's values by fingerprints
and what `connectors.recognize` found in them before anything reaches this module, so these
functions can be tested with recorded payloads and never see secret material.

Payload of one cluster (`transform_cluster`):
    {"cluster": {"id", "name", "server"},
     "ca": {"sha256", "subject", "not_after"} or None,
     "namespaces": [name], "service_accounts": [ServiceAccount JSON], "pods": [Pod JSON],
     "secrets": [{"namespace", "name", "uid", "type", "version", "created", "service_account",
                  "service_account_uid", "keys": {key: fingerprint}, "token_fingerprint",
                  "found": [{"kind", "ref", "fields", "fingerprint", "attrs"}]}],
     "roles", "cluster_roles", "role_bindings", "cluster_role_bindings": [RBAC JSON],
     "client_certs": [{"csr", "sha256", "user", "groups", "not_before", "not_after", "ca_sha256"}]}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.kubernetes import rbac
from revoke.connector import Collected, CollectFinding
from revoke.model import Edge, Node, NodeKind, Relation

PROVIDER = "kubernetes"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
# node types (the middle part of the ids)
SA, SECRET, TOKEN_SECRET, POD, POD_TOKEN = "service_account", "secret", "token_secret", "pod", "pod_token"
MINTED = "minted_token"
USER, GROUP, CLIENT_CERT, CA = "user", "group", "client_cert", "ca"


def node_id(kind: str, cluster: str, *parts: str) -> str:
    """`kubernetes:<type>:<cluster id>/<namespace>/<name>`: the cluster id (the `kube-system`
    namespace's uid) keeps two clusters' `default/default` apart."""
    return f"{PROVIDER}:{kind}:{'/'.join((cluster, *parts))}"


def parse_id(nid: str) -> tuple[str, str, list[str]]:
    """(type, cluster id, the rest split on `/`: [namespace, name] or [name])."""
    _, kind, native = nid.split(":", 2)
    cluster, _, rest = native.partition("/")
    return kind, cluster, rest.split("/", 1) if kind in (SA, SECRET, TOKEN_SECRET, POD, POD_TOKEN, MINTED) else [rest]


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


class _EdgeSet:
    """One edge per (src, rel, dst), keeping every binding and way that made it."""

    def __init__(self) -> None:
        self.edges: dict[tuple[str, str, str], Edge] = {}

    def add(self, src: str, rel: Relation, dst: str, *, bindings: list[str] = (), via: str = "") -> None:  # type: ignore[assignment]
        if src == dst:
            return
        edge = self.edges.setdefault((src, rel.value, dst), Edge(src, dst, rel, attrs={}))
        if bindings:
            edge.attrs["bindings"] = sorted(set(edge.attrs.get("bindings", [])) | set(bindings))
        if via:
            edge.attrs["via"] = sorted(set(edge.attrs.get("via", [])) | {via})

    def sorted(self) -> list[Edge]:
        return [self.edges[k] for k in sorted(self.edges)]


class _Cluster:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.p = payload
        self.cid = str(payload["cluster"]["id"])
        self.label = str(payload["cluster"].get("name") or "")
        self.nodes: dict[str, Node] = {}
        self.edges = _EdgeSet()
        self.findings: list[CollectFinding] = []

    def add(self, node: Node) -> Node:
        node.attrs.setdefault("cluster", self.cid)
        if self.label:
            node.attrs.setdefault("cluster_name", self.label)
        return self.nodes.setdefault(node.id, node)

    # -- objects -----------------------------------------------------------------------------

    def service_accounts(self) -> None:
        for sa in self.p.get("service_accounts", []):
            m = _meta(sa)
            self.add(Node(node_id(SA, self.cid, m["namespace"], m["name"]), NodeKind.SERVICE_ACCOUNT, PROVIDER,
                          name=f"{m['namespace']}/{m['name']}", created=_time(m.get("creationTimestamp")),
                          status="active", attrs={"namespace": m["namespace"], "uid": m.get("uid", "")}))

    def sa_node(self, ns: str, name: str) -> str:
        """An account named by a binding or pod but not collected (outside `namespaces`)."""
        nid = node_id(SA, self.cid, ns, name)
        self.add(Node(nid, NodeKind.SERVICE_ACCOUNT, PROVIDER, name=f"{ns}/{name}",
                      attrs={"namespace": ns, "not_collected": True}))
        return nid

    def secrets(self) -> None:
        sa_uids = {(s["metadata"]["namespace"], s["metadata"]["name"]): s["metadata"].get("uid")
                   for s in self.p.get("service_accounts", [])}
        for s in self.p.get("secrets", []):
            ns, name = s["namespace"], s["name"]
            common = {"namespace": ns, "uid": s.get("uid", ""), "type": s.get("type", ""),
                      "version": s.get("version", ""), "keys": sorted(s.get("keys", {})),
                      "key_fingerprints": dict(sorted(s.get("keys", {}).items()))}
            if s.get("type") == SA_TOKEN_TYPE:
                sa_name = s.get("service_account", "")
                live_uid = sa_uids.get((ns, sa_name))
                stale = live_uid is None or (s.get("service_account_uid") and s["service_account_uid"] != live_uid)
                nid = node_id(TOKEN_SECRET, self.cid, ns, name)
                self.add(Node(nid, NodeKind.TOKEN, PROVIDER, name=f"{ns}/{name}", created=_time(s.get("created")),
                              status="revoked" if stale or not s.get("token_fingerprint") else "active",
                              fingerprint=s.get("token_fingerprint", ""), owner=f"{ns}/{sa_name}",
                              attrs={**common, "service_account": sa_name, "legacy": True}))
                if sa_name:
                    self.edges.add(nid, Relation.AUTHENTICATES_AS, self.sa_node(ns, sa_name) if live_uid is None
                                   else node_id(SA, self.cid, ns, sa_name))
                continue
            sid = node_id(SECRET, self.cid, ns, name)
            self.add(Node(sid, NodeKind.SECRET, PROVIDER, name=f"{ns}/{name}", created=_time(s.get("created")),
                          status="active", fingerprint=s.get("fingerprint", ""), attrs=common))
            for item in s.get("found", []):
                ref = item.get("ref") or ""
                kind = NodeKind(item["kind"])
                if not ref:
                    fields = ",".join(item.get("fields") or [])
                    ref = f"{node_id(kind.value, self.cid, ns, name)}#{fields}"
                    self.add(Node(ref, kind, PROVIDER, name=f"{ns}/{name}#{fields}",
                                  fingerprint=item.get("fingerprint", ""),
                                  attrs={"namespace": ns, "secret": name, "fields": item.get("fields", []),
                                         "managed": False}))
                rel = Relation.HOLDS_PUBLIC if kind in (NodeKind.CERTIFICATE, NodeKind.CA) else Relation.STORES
                self.edges.add(sid, rel, ref, via="secret value: " + ",".join(item.get("fields") or ["(whole)"]))

    def pods(self) -> None:
        for pod in self.p.get("pods", []):
            m, spec = _meta(pod), pod.get("spec") or {}
            ns, name = m["namespace"], m["name"]
            sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            pid = node_id(POD, self.cid, ns, name)
            self.add(Node(pid, NodeKind.WORKLOAD, PROVIDER, name=f"{ns}/{name}", created=_time(m.get("creationTimestamp")),
                          status=str((pod.get("status") or {}).get("phase", "")).lower() or "unknown",
                          attrs={"namespace": ns, "uid": m.get("uid", ""), "service_account": sa,
                                 "node_name": spec.get("nodeName", "")}))
            sa_id = node_id(SA, self.cid, ns, sa)
            if sa_id not in self.nodes:
                self.sa_node(ns, sa)
            if _mounts_sa_token(spec):
                tid = node_id(POD_TOKEN, self.cid, ns, name)
                self.add(Node(tid, NodeKind.TOKEN, PROVIDER, name=f"{ns}/{name} token", status="active",
                              owner=f"{ns}/{sa}", attrs={"namespace": ns, "pod": name, "pod_uid": m.get("uid", ""),
                                                         "service_account": sa, "bound": True}))
                self.edges.add(pid, Relation.STORES, tid, via="projected service-account token")
                self.edges.add(tid, Relation.AUTHENTICATES_AS, sa_id)
            for secret, how in _secret_refs(spec):
                target = self._secret_target(ns, secret)
                if target is None:
                    self.findings.append(CollectFinding(
                        "kubernetes.missing_secret", f"pod {ns}/{name} mounts Secret {secret}, which does not exist",
                        node=pid, severity="info", source=f"{ns}/{name}"))
                    continue
                self.edges.add(pid, Relation.STORES, target, via=how)

    def _secret_target(self, ns: str, secret: str) -> str | None:
        for kind in (SECRET, TOKEN_SECRET):
            nid = node_id(kind, self.cid, ns, secret)
            if nid in self.nodes:
                return nid
        return None

    def certificates(self) -> None:
        ca = self.p.get("ca")
        ca_id = node_id(CA, self.cid)
        if ca:
            self.add(Node(ca_id, NodeKind.CA, PROVIDER, name=f"cluster CA {ca.get('subject', '')}".strip(),
                          expires=_time(ca.get("not_after")), status="active", fingerprint="sha256:" + ca["sha256"],
                          attrs={"sha256": ca["sha256"], "subject": ca.get("subject", "")}))
        now = datetime.now(UTC)
        current = (ca or {}).get("sha256")
        for c in self.p.get("client_certs", []):
            cid = node_id(CLIENT_CERT, self.cid, c["sha256"])
            expires = _time(c.get("not_after"))
            status = "active"
            if expires is not None and expires <= now:
                status = "expired"
            elif current and c.get("ca_sha256") and c["ca_sha256"] != current:
                status = "revoked"  # its CA is no longer the cluster's: the API server refuses it
            masters = rbac.MASTERS in c.get("groups", [])
            self.add(Node(cid, NodeKind.CERTIFICATE, PROVIDER, name=f"client certificate {c.get('user', '')}",
                          created=_time(c.get("not_before")), expires=expires, status=status,
                          fingerprint="sha256:" + c["sha256"], owner=c.get("user", ""),
                          attrs={"csr": c.get("csr", ""), "user": c.get("user", ""), "groups": c.get("groups", []),
                                 "ca_sha256": c.get("ca_sha256", ""), "sha256": c["sha256"],
                                 "bypasses_authorization": masters,
                                 "remedy": MASTERS_REMEDY if masters else CERT_REMEDY}))
            if ca and c.get("ca_sha256") == current:
                self.edges.add(ca_id, Relation.ISSUED, cid)
            if c.get("user"):
                self.edges.add(cid, Relation.AUTHENTICATES_AS, self.user(c["user"]))
            for group in c.get("groups", []):
                self.edges.add(cid, Relation.AUTHENTICATES_AS, self.group(group))

    def minted(self, sa: Node) -> str:
        """The tokens TokenRequest can mint for an account: never listed, each alive until it
        expires, its account is deleted or the signing key is rotated (a manual task)."""
        ns, name = sa.name.split("/", 1)
        nid = node_id(MINTED, self.cid, ns, name)
        if nid not in self.nodes:
            self.add(Node(nid, NodeKind.TOKEN, PROVIDER, name=f"{ns}/{name} minted tokens", status="unlisted",
                          owner=sa.name, attrs={"namespace": ns, "service_account": name, "unlisted": True,
                                                "remedy": SIGNING_KEY_REMEDY}))
        self.edges.add(nid, Relation.AUTHENTICATES_AS, sa.id)
        return nid

    def user(self, name: str) -> str:
        if name.startswith("system:serviceaccount:") and name.count(":") == 3:
            _, _, ns, sa = name.split(":")
            return self.sa_node(ns, sa) if node_id(SA, self.cid, ns, sa) not in self.nodes else node_id(SA, self.cid, ns, sa)
        nid = node_id(USER, self.cid, name)
        self.add(Node(nid, NodeKind.USER, PROVIDER, name=name, attrs={"username": name}))
        return nid

    def group(self, name: str) -> str:
        nid = node_id(GROUP, self.cid, name)
        self.add(Node(nid, NodeKind.ROLE, PROVIDER, name=name,
                      attrs={"group": name, "bypasses_authorization": name == rbac.MASTERS}))
        return nid

    # -- RBAC ----------------------------------------------------------------------------------

    def authorization(self) -> None:
        grants = rbac.build(self.p.get("roles", []), self.p.get("cluster_roles", []),
                            self.p.get("role_bindings", []), self.p.get("cluster_role_bindings", []))
        for label in grants.dangling:
            self.findings.append(CollectFinding("kubernetes.dangling_binding",
                                                f"{label} refers to a role that does not exist", severity="info"))
        # subjects first, so every user and group is a target of the impersonation checks
        sources: dict[rbac.Subject, str] = {}
        for key in sorted(grants.by_subject):
            kind, ns, name = key
            if kind == "ServiceAccount":
                sid = node_id(SA, self.cid, ns, name)
                sources[key] = sid if sid in self.nodes else self.sa_node(ns, name)
            elif kind == "User":
                sources[key] = self.user(name)
        granting = {key for key in grants.by_subject if key[0] == "Group" and self._grants_anything(grants.of(key))}
        for key in sorted(granting):
            sources[key] = self.group(key[2])
        for key, src in sorted(sources.items()):
            self.grant_edges(src, grants.of(key))
        # every service account acts with its groups' rights too
        for sa in [n for n in list(self.nodes.values()) if n.id.startswith(f"{PROVIDER}:{SA}:")]:
            for group in rbac.service_account_groups(sa.attrs.get("namespace", "")):
                if ("Group", "", group) in granting:
                    self.edges.add(sa.id, Relation.CAN_ASSUME, node_id(GROUP, self.cid, group),
                                   via=f"member of group {group}")
        masters = node_id(GROUP, self.cid, rbac.MASTERS)
        if masters in self.nodes:
            self.grant_edges(masters, [], everything=True)

    def _grants_anything(self, grants: list[rbac.Grant]) -> bool:
        probe = _EdgeSet()
        saved, self.edges = self.edges, probe
        try:
            self.grant_edges("probe", grants)
        finally:
            self.edges = saved
        return bool(probe.edges)

    def grant_edges(self, src: str, grants: list[rbac.Grant], *, everything: bool = False) -> None:
        """`can_read` Secrets, `can_mint` tokens, `can_assume` accounts, users and groups."""
        def allowed(verb: str, group: str, resource: str, ns: str, name: str = "") -> list[str]:
            if everything:
                return [f"group {rbac.MASTERS} (admitted before RBAC)"]
            return rbac.allowed_by(grants, verb, group, resource, ns, name)

        for node in list(self.nodes.values()):
            kind = node.id.split(":", 2)[1]
            ns = node.attrs.get("namespace", "")
            short = node.name.split("/", 1)[-1] if kind in (SECRET, TOKEN_SECRET, SA) else node.name
            if kind in (SECRET, TOKEN_SECRET):
                by = sorted({b for v in rbac.READ_VERBS for b in allowed(v, "", "secrets", ns, short)})
                if by:
                    self.edges.add(src, Relation.CAN_READ, node.id, bindings=by, via="get/list/watch secrets")
            elif kind == SA:
                by = allowed("create", "", "serviceaccounts/token", ns, short)
                if by:
                    self.edges.add(src, Relation.CAN_MINT, self.minted(node), bindings=by,
                                   via="create serviceaccounts/token")
                by = allowed("impersonate", "", "serviceaccounts", ns, short) or allowed(
                    "impersonate", "", "users", "", f"system:serviceaccount:{ns}:{short}")
                if by:
                    self.edges.add(src, Relation.CAN_ASSUME, node.id, bindings=by, via="impersonate")
                for group, resource in rbac.WORKLOADS:
                    by = allowed("create", group, resource, ns)
                    if by:
                        self.edges.add(src, Relation.CAN_ASSUME, node.id, bindings=by,
                                       via=f"create {resource} in {ns} (runs as any of its service accounts)")
                        break
            elif kind in (USER, GROUP):
                by = allowed("impersonate", "", "users" if kind == USER else "groups", "", node.name)
                if by:
                    self.edges.add(src, Relation.CAN_ASSUME, node.id, bindings=by, via="impersonate")


SIGNING_KEY_REMEDY = (
    "Tokens minted with TokenRequest (create serviceaccounts/token) are never listed and cannot be revoked "
    "one by one: each is accepted until it expires (at most the API server's "
    "--service-account-max-token-expiration), its ServiceAccount is deleted (or the Pod or Secret it is bound to), "
    "or the service-account signing key is rotated. To end them now, delete and recreate the ServiceAccount "
    "(every workload using it gets new tokens), or rotate the signing key: add a new key to "
    "--service-account-key-file, switch --service-account-signing-key-file to it on every API server, restart "
    "the workloads, then remove the old public key (https://kubernetes.io/docs/reference/command-line-tools-reference/"
    "kube-apiserver/, https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/).")
CERT_REMEDY = ("Kubernetes cannot revoke a client certificate: it is accepted until it expires unless the "
               "cluster CA is replaced (https://kubernetes.io/docs/tasks/tls/manual-rotation-of-ca-certificates/). "
               "Remove its user's and groups' RBAC bindings now; to end it, rotate the CA and reissue every "
               "client and kubelet certificate and every kubeconfig it signed.")
MASTERS_REMEDY = ("This client certificate is in group system:masters, which the API server admits before RBAC: "
                  "no binding change can take its rights. Only rotating the cluster CA ends it "
                  "(https://kubernetes.io/docs/tasks/tls/manual-rotation-of-ca-certificates/): issue a new CA, "
                  "distribute it, reissue every client and kubelet certificate and kubeconfig, then remove the old CA "
                  "from every trust bundle. Never issue another system:masters certificate; bind cluster-admin to a "
                  "named user instead.")


def _mounts_sa_token(spec: dict[str, Any]) -> bool:
    """The projected `serviceAccountToken` volume the ServiceAccount admission plugin adds."""
    return any(src.get("serviceAccountToken") is not None
               for v in spec.get("volumes") or [] for src in (v.get("projected") or {}).get("sources") or [])


def _secret_refs(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(Secret name, how) for every Secret a pod spec mounts, projects, reads into env or pulls with."""
    out: list[tuple[str, str]] = []
    for v in spec.get("volumes") or []:
        if (v.get("secret") or {}).get("secretName"):
            out.append((v["secret"]["secretName"], f"volume {v.get('name', '')}"))
        for src in (v.get("projected") or {}).get("sources") or []:
            if (src.get("secret") or {}).get("name"):
                out.append((src["secret"]["name"], f"projected volume {v.get('name', '')}"))
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
              *(spec.get("ephemeralContainers") or [])]:
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name"):
                out.append((ref["name"], f"env {env.get('name', '')} of container {c.get('name', '')}"))
        for env_from in c.get("envFrom") or []:
            if (env_from.get("secretRef") or {}).get("name"):
                out.append((env_from["secretRef"]["name"], f"envFrom of container {c.get('name', '')}"))
    for ref in spec.get("imagePullSecrets") or []:
        if ref.get("name"):
            out.append((ref["name"], "imagePullSecrets"))
    return out


def transform_cluster(payload: dict[str, Any]) -> Collected:
    c = _Cluster(payload)
    c.service_accounts()
    c.secrets()
    c.pods()
    c.certificates()
    c.authorization()
    return Collected(nodes=[c.nodes[k] for k in sorted(c.nodes)], edges=c.edges.sorted(), findings=c.findings)
