"""RBAC evaluation, pure: which subject may do what, and through which binding.

Follows https://kubernetes.io/docs/reference/access-authn-authz/rbac/: permissions are purely
additive (no deny); a ClusterRoleBinding grants its ClusterRole's rules in every namespace; a
RoleBinding grants its Role's (or a ClusterRole's) rules in its own namespace only; a rule
matches on apiGroups, resources (`resource/subresource`, `*`), verbs and, when set,
resourceNames (a list or create carries no name, so a named rule never allows those).
The group `system:masters` is admitted by the API server before RBAC is asked: no binding gives
or takes its rights.

Not evaluated (the README lists them as gaps): aggregated ClusterRoles whose rules the
controller has not yet filled in (their collected `rules` are used as they are), `bind` /
`escalate` paths to new grants, non-resource URLs, and other authorizers (webhooks, Node, ABAC).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MASTERS = "system:masters"
RBAC_GROUP = "rbac.authorization.k8s.io"
# creating any of these in a namespace runs a pod as any service account of that namespace
# (https://kubernetes.io/docs/concepts/security/rbac-good-practices/#workload-creation)
WORKLOADS = (("", "pods"), ("", "replicationcontrollers"), ("apps", "deployments"), ("apps", "replicasets"),
             ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"), ("batch", "cronjobs"))
READ_VERBS = ("get", "list", "watch")

Subject = tuple[str, str, str]  # (kind, namespace or "", name): ("ServiceAccount", "ci", "builder")


@dataclass(frozen=True)
class Grant:
    """The rules one binding gives one subject; `namespace` "" means every namespace."""

    binding: str              # "ClusterRoleBinding/name" or "RoleBinding/namespace/name"
    role: str                 # "ClusterRole/name" or "Role/namespace/name"
    namespace: str
    rules: tuple[dict[str, Any], ...]


@dataclass
class Grants:
    """Every subject's grants, from the collected Roles, ClusterRoles and bindings."""

    by_subject: dict[Subject, list[Grant]] = field(default_factory=dict)
    dangling: list[str] = field(default_factory=list)  # bindings whose role does not exist

    def of(self, subject: Subject) -> list[Grant]:
        return self.by_subject.get(subject, [])


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def subject_key(subject: dict[str, Any], binding_ns: str) -> Subject | None:
    kind, name = subject.get("kind"), subject.get("name") or ""
    if kind == "ServiceAccount":
        return ("ServiceAccount", subject.get("namespace") or binding_ns, name)
    if kind in ("User", "Group"):
        return (str(kind), "", name)
    return None


def build(roles: list[dict[str, Any]], cluster_roles: list[dict[str, Any]], role_bindings: list[dict[str, Any]],
          cluster_role_bindings: list[dict[str, Any]]) -> Grants:
    role_rules = {_key(r): tuple(r.get("rules") or []) for r in roles}
    cluster_rules = {_key(r)[1]: tuple(r.get("rules") or []) for r in cluster_roles}
    out = Grants()

    def add(binding: dict[str, Any], label: str, ns: str) -> None:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            rules, role = cluster_rules.get(ref.get("name", "")), f"ClusterRole/{ref.get('name')}"
        else:
            rules, role = role_rules.get((ns, ref.get("name", ""))), f"Role/{ns}/{ref.get('name')}"
        if rules is None:
            out.dangling.append(label)
            return
        grant = Grant(label, role, ns, rules)
        for s in binding.get("subjects") or []:
            key = subject_key(s, ns)
            if key is not None:
                out.by_subject.setdefault(key, []).append(grant)

    for crb in sorted(cluster_role_bindings, key=_key):
        add(crb, f"ClusterRoleBinding/{_key(crb)[1]}", "")
    for rb in sorted(role_bindings, key=_key):
        ns, name = _key(rb)
        add(rb, f"RoleBinding/{ns}/{name}", ns)
    return out


def _has(values: Iterable[str] | None, want: str) -> bool:
    values = list(values or [])
    return "*" in values or want in values


def rule_allows(rule: dict[str, Any], verb: str, group: str, resource: str, name: str = "") -> bool:
    """`resource` may be `resource/subresource`; an empty `name` is a request for no one object."""
    if not _has(rule.get("verbs"), verb) or not _has(rule.get("apiGroups"), group):
        return False
    resources = list(rule.get("resources") or [])
    sub = resource.split("/", 1)[1] if "/" in resource else ""
    if not ("*" in resources or resource in resources or (sub and f"*/{sub}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(name) and name in names)


def allowed_by(grants: list[Grant], verb: str, group: str, resource: str, namespace: str, name: str = "") -> list[str]:
    """The bindings among `grants` that allow the request (empty: RBAC denies it)."""
    return sorted({g.binding for g in grants
                   if (not g.namespace or g.namespace == namespace)
                   and any(rule_allows(r, verb, group, resource, name) for r in g.rules)})


def service_account_groups(namespace: str) -> tuple[str, ...]:
    """The groups every service account of `namespace` is in
    (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-subjects)."""
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")


def _rule_covers(rule: dict[str, Any], verbs: tuple[str, ...], group: str, resource: str) -> bool:
    """Whether a rule allows any of `verbs` on `resource` for some name (resourceNames ignored)."""
    return any(rule_allows({**rule, "resourceNames": []}, v, group, resource) for v in verbs)


def reaching_rule(rule: dict[str, Any]) -> str | None:
    """What a rule lets its subject reach, in the words of the graph's edges, or None: reading
    Secrets, minting tokens, impersonating, or creating workloads (which run as any account)."""
    if _rule_covers(rule, READ_VERBS, "", "secrets"):
        return "read secrets"
    if _rule_covers(rule, ("create",), "", "serviceaccounts/token"):
        return "mint service-account tokens"
    if any(_rule_covers(rule, ("impersonate",), "", r) for r in ("users", "groups", "serviceaccounts")):
        return "impersonate"
    if any(_rule_covers(rule, ("create",), g, r) for g, r in WORKLOADS):
        return "create workloads"
    return None
