"""Pure transforms for the GCP connector: API payloads (plain dicts) -> nodes, edges, findings,
and the id formulas every other module of the package uses.

No SDK here: `collect` fetches and turns proto messages into the dicts below, so these
functions can be tested with recorded payloads.

Payload of one project (`transform_project`):
    {"accounts": [{"name", "email", "unique_id", "display_name", "disabled"}],
     "keys": {email: [{"name", "key_algorithm", "valid_after", "valid_before", "disabled",
                       "key_origin"}]},          # user-managed keys only
     "account_policies": {email: {"bindings": [{"role", "members", "condition"}]}},
     "project_policy": {"bindings": [...]} or None when it could not be read}
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from revoke.connector import Collected, CollectFinding
from revoke.model import Edge, Node, NodeKind, Relation

PROVIDER = "gcp"
# the node types (middle part of the ids) the connector acts on
ACCOUNT_TYPE = "service_account"
KEY_TYPE = "service_account_key"

# Roles that let a member act as a service account or mint credentials for it
# (https://cloud.google.com/iam/docs/service-account-permissions). No other role makes an edge.
ROLE_RELATIONS: dict[str, Relation] = {
    "roles/iam.serviceAccountTokenCreator": Relation.CAN_ASSUME,
    "roles/iam.serviceAccountUser": Relation.CAN_ASSUME,
    "roles/iam.workloadIdentityUser": Relation.CAN_ASSUME,
    "roles/iam.serviceAccountKeyAdmin": Relation.CAN_MINT,
    "roles/owner": Relation.CAN_ASSUME,
    "roles/editor": Relation.CAN_ASSUME,
}

# Real key files without an expiry carry this validBeforeTime.
NO_EXPIRY_YEAR = 9999
_SA_EMAIL_RE = re.compile(r"^[^@\s]+@([a-z][-a-z0-9]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$")


def account_id(email: str) -> str:
    return f"{PROVIDER}:{ACCOUNT_TYPE}:{email}"


def key_node_id(key_id: str) -> str:
    return f"{PROVIDER}:{KEY_TYPE}:{key_id}"


def key_id_from_name(name: str) -> str:
    """`projects/P/serviceAccounts/E/keys/K` -> `K` (the key file's `private_key_id`)."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def email_from_key_name(name: str) -> str:
    parts = name.split("/")
    return parts[3] if len(parts) >= 6 and parts[2] == "serviceAccounts" else ""


def project_of(email: str) -> str:
    """`x@P.iam.gserviceaccount.com` -> P; other service-agent domains -> `-` (any project)."""
    match = _SA_EMAIL_RE.match(email)
    return match.group(1) if match else "-"


def account_resource(email: str) -> str:
    return f"projects/{project_of(email)}/serviceAccounts/{email}"


def is_workload_member(member: str) -> bool:
    """`serviceAccount:PROJECT.svc.id.goog[NS/KSA]` is a Kubernetes service account, not a GCP one."""
    return member.startswith("serviceAccount:") and ".svc.id.goog[" in member


def member_node(member: str) -> Node | None:
    """The node a policy member stands for, or None for members no node can represent
    (`allUsers`, `allAuthenticatedUsers`: reported as findings; `deleted:` members: ignored)."""
    kind, _, value = member.partition(":")
    if is_workload_member(member) or member.startswith(("principal://", "principalSet://")):
        return Node(id=f"{PROVIDER}:workload:{member}", kind=NodeKind.WORKLOAD, provider=PROVIDER, name=member,
                    attrs={"member_type": kind if "://" not in member else member.split("://")[0]})
    if kind == "serviceAccount" and value:
        return Node(id=account_id(value), kind=NodeKind.SERVICE_ACCOUNT, provider=PROVIDER, name=value,
                    attrs={"external": True})
    if kind in ("user", "group", "domain") and value:
        return Node(id=f"{PROVIDER}:user:{value}", kind=NodeKind.USER, provider=PROVIDER, name=value,
                    attrs={"member_type": kind})
    return None


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt.astimezone(UTC)


def transform_accounts(project: str, accounts: list[dict[str, Any]]) -> list[Node]:
    return [
        Node(
            id=account_id(a["email"]), kind=NodeKind.SERVICE_ACCOUNT, provider=PROVIDER, name=a["email"],
            status="disabled" if a.get("disabled") else "active",
            attrs={"project": project, "unique_id": a.get("unique_id", ""),
                   "display_name": a.get("display_name", ""), "resource": a.get("name", "")},
        )
        for a in accounts
    ]


def transform_keys(project: str, email: str, keys: list[dict[str, Any]],
                   account_disabled: bool = False) -> tuple[list[Node], list[Edge]]:
    """User-managed keys -[authenticates_as]-> their service account. A disabled account lists its
    keys as enabled, yet none of them works: the node's status says whether the key is usable
    (so reachability stops at it), `attrs.key_disabled` keeps the key's own flag."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    now = datetime.now(UTC)
    for k in keys:
        key_id = key_id_from_name(k["name"])
        expires = _time(k.get("valid_before"))
        if expires is not None and expires.year >= NO_EXPIRY_YEAR:
            expires = None
        status = "disabled" if k.get("disabled") or account_disabled else "active"
        if status == "active" and expires is not None and expires <= now:
            status = "expired"
        nodes.append(Node(
            id=key_node_id(key_id), kind=NodeKind.SERVICE_ACCOUNT_KEY, provider=PROVIDER, name=key_id,
            created=_time(k.get("valid_after")), expires=expires, status=status, owner=email,
            attrs={"project": project, "service_account": email, "resource": k["name"],
                   "algorithm": k.get("key_algorithm", ""), "origin": k.get("key_origin", ""),
                   "key_disabled": bool(k.get("disabled")), "account_disabled": bool(account_disabled)},
        ))
        edges.append(Edge(key_node_id(key_id), account_id(email), Relation.AUTHENTICATES_AS))
    return nodes, edges


class _EdgeSet:
    """Merges bindings that give the same (member, rel, account): one edge, every role and scope kept."""

    def __init__(self) -> None:
        self.edges: dict[tuple[str, str, str], Edge] = {}

    def add(self, src: str, rel: Relation, dst: str, role: str, scope: str,
            condition: dict[str, str] | None) -> None:
        edge = self.edges.get((src, rel.value, dst))
        if edge is None:
            edge = Edge(src, dst, rel, attrs={"roles": [], "via": [], "conditional": True})
            self.edges[(src, rel.value, dst)] = edge
        if role not in edge.attrs["roles"]:
            edge.attrs["roles"] = sorted([*edge.attrs["roles"], role])
        if scope not in edge.attrs["via"]:
            edge.attrs["via"] = sorted([*edge.attrs["via"], scope])
        if condition and condition.get("expression"):
            # The attacker may satisfy a condition: the edge stays, the condition is kept to explain it.
            edge.attrs.setdefault("conditions", []).append(condition)
        else:
            edge.attrs["conditional"] = False


def transform_bindings(policy: dict[str, Any] | None, targets: list[str], scope: str,
                       edges: _EdgeSet, members: dict[str, Node], findings: list[CollectFinding]) -> None:
    """Each binding of an edge-making role becomes member -> every target account."""
    for binding in (policy or {}).get("bindings", []):
        rel = ROLE_RELATIONS.get(binding.get("role", ""))
        if rel is None:
            continue
        for member in binding.get("members", []):
            node = member_node(member)
            if node is None:
                if member in ("allUsers", "allAuthenticatedUsers"):
                    findings.append(CollectFinding(
                        code="gcp.public_binding", severity="error", source=scope,
                        message=f"{binding['role']} granted to {member} on {scope}: anyone can act as "
                                f"{len(targets)} service account(s)"))
                continue
            members.setdefault(node.id, node)
            for target in targets:
                dst = account_id(target)
                if dst != node.id:  # acting as oneself grants nothing new
                    edges.add(node.id, rel, dst, binding["role"], scope, binding.get("condition"))


def transform_project(project: str, payload: dict[str, Any]) -> Collected:
    out = Collected()
    accounts = payload.get("accounts", [])
    out.nodes.extend(transform_accounts(project, accounts))
    disabled = {a["email"] for a in accounts if a.get("disabled")}
    for email, keys in sorted(payload.get("keys", {}).items()):
        nodes, edges = transform_keys(project, email, keys, account_disabled=email in disabled)
        out.nodes.extend(nodes)
        out.edges.extend(edges)
    edge_set = _EdgeSet()
    members: dict[str, Node] = {}
    emails = [a["email"] for a in accounts]
    if payload.get("project_policy") is not None:
        transform_bindings(payload["project_policy"], emails, f"projects/{project}", edge_set, members,
                           out.findings)
    for email, policy in sorted(payload.get("account_policies", {}).items()):
        transform_bindings(policy, [email], account_id(email), edge_set, members, out.findings)
    known = {n.id for n in out.nodes}
    out.nodes.extend(n for nid, n in sorted(members.items()) if nid not in known)
    out.edges.extend(edge_set.edges[k] for k in sorted(edge_set.edges))
    return out


def merge(parts: list[Collected]) -> Collected:
    """Projects collected separately; an account seen as a member in one project and listed in
    another keeps the listed node (the one with real attributes)."""
    out = Collected()
    nodes: dict[str, Node] = {}
    for part in parts:
        for node in part.nodes:
            if node.id not in nodes or nodes[node.id].attrs.get("external"):
                nodes[node.id] = node
        out.edges.extend(part.edges)
        out.findings.extend(part.findings)
    out.nodes = list(nodes.values())
    return out
