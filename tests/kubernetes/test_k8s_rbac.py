"""RBAC evaluation, pure: the rule-matching cases the documentation spells out, and a property
check that the connector's evaluation and the double's authorizer (which the SubjectAccessReview
tests pin to the API's answers) agree on random rules, bindings and requests."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.kubernetes import rbac
from examples.lab.k8s_double_auth import authorize


def test_rule_matching() -> None:
    read_one = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"], "resourceNames": ["db"]}
    assert rbac.rule_allows(read_one, "get", "", "secrets", "db")
    assert not rbac.rule_allows(read_one, "get", "", "secrets", "other")
    assert not rbac.rule_allows(read_one, "get", "", "secrets")  # a named rule allows no unnamed request
    assert not rbac.rule_allows(read_one, "get", "apps", "secrets", "db")
    tokens = {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}
    assert rbac.rule_allows(tokens, "create", "", "serviceaccounts/token", "web")
    assert not rbac.rule_allows(tokens, "create", "", "serviceaccounts", "web")
    any_sub = {"apiGroups": ["*"], "resources": ["*/token"], "verbs": ["*"]}
    assert rbac.rule_allows(any_sub, "create", "", "serviceaccounts/token")
    assert not rbac.rule_allows(any_sub, "get", "", "secrets")
    assert rbac.reaching_rule({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}) is None
    assert rbac.reaching_rule(read_one) == "read secrets"
    assert rbac.reaching_rule({"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create"]}) == "create workloads"


def test_bindings_scope_and_missing_roles() -> None:
    grants = rbac.build(
        roles=[{"metadata": {"namespace": "apps", "name": "r"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}],
        cluster_roles=[{"metadata": {"name": "c"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]}],
        role_bindings=[
            {"metadata": {"namespace": "apps", "name": "rb"}, "roleRef": {"kind": "Role", "name": "r"},
             "subjects": [{"kind": "ServiceAccount", "name": "web"}]},  # namespace defaults to the binding's
            {"metadata": {"namespace": "ci", "name": "rb2"}, "roleRef": {"kind": "ClusterRole", "name": "c"},
             "subjects": [{"kind": "User", "name": "alice"}]},
            {"metadata": {"namespace": "ci", "name": "gone"}, "roleRef": {"kind": "Role", "name": "missing"},
             "subjects": [{"kind": "User", "name": "bob"}]}],
        cluster_role_bindings=[])
    web = grants.of(("ServiceAccount", "apps", "web"))
    assert rbac.allowed_by(web, "get", "", "secrets", "apps", "x") == ["RoleBinding/apps/rb"]
    assert rbac.allowed_by(web, "get", "", "secrets", "ci", "x") == []
    alice = grants.of(("User", "", "alice"))
    assert rbac.allowed_by(alice, "create", "", "pods", "ci") == ["RoleBinding/ci/rb2"]
    assert rbac.allowed_by(alice, "create", "", "pods", "apps") == []
    assert grants.dangling == ["RoleBinding/ci/gone"]


names = st.sampled_from(["a", "b"])
rules = st.fixed_dictionaries({
    "apiGroups": st.lists(st.sampled_from(["", "apps", "*"]), min_size=1, max_size=2),
    "resources": st.lists(st.sampled_from(["secrets", "pods", "serviceaccounts/token", "*", "*/token"]),
                          min_size=1, max_size=2),
    "verbs": st.lists(st.sampled_from(["get", "list", "create", "impersonate", "*"]), min_size=1, max_size=2),
    "resourceNames": st.lists(names, max_size=1)})
subjects = st.sampled_from([{"kind": "ServiceAccount", "name": "a", "namespace": "n1"},
                            {"kind": "User", "name": "a"}, {"kind": "Group", "name": "g"}])


@settings(max_examples=200, deadline=None)
@given(role_rules=st.lists(rules, min_size=1, max_size=3), cluster_rules=st.lists(rules, min_size=1, max_size=3),
       rb_subject=subjects, crb_subject=subjects, use_crb=st.booleans(),
       verb=st.sampled_from(["get", "list", "create", "impersonate"]), group=st.sampled_from(["", "apps"]),
       resource=st.sampled_from(["secrets", "pods", "serviceaccounts"]), sub=st.sampled_from(["", "token"]),
       ns=st.sampled_from(["n1", "n2"]), name=st.sampled_from(["", "a", "b"]),
       who=st.sampled_from(["sa", "user", "group"]))
def test_connector_and_double_agree(role_rules: list[Any], cluster_rules: list[Any], rb_subject: dict[str, str],
                                    crb_subject: dict[str, str], use_crb: bool, verb: str, group: str, resource: str,
                                    sub: str, ns: str, name: str, who: str) -> None:
    roles = [{"metadata": {"namespace": "n1", "name": "r"}, "rules": role_rules}]
    croles = [{"metadata": {"name": "c"}, "rules": cluster_rules}]
    rbs = [{"metadata": {"namespace": "n1", "name": "rb"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [rb_subject]}]
    crbs = [{"metadata": {"name": "crb"}, "roleRef": {"kind": "ClusterRole", "name": "c"},
             "subjects": [crb_subject]}] if use_crb else []
    user, groups, key = {"sa": ("system:serviceaccount:n1:a", [], ("ServiceAccount", "n1", "a")),
                         "user": ("a", [], ("User", "", "a")), "group": ("z", ["g"], ("Group", "", "g"))}[who]
    grants = rbac.build(roles, croles, rbs, crbs)
    mine = bool(rbac.allowed_by(grants.of(key), verb, group, f"{resource}/{sub}" if sub else resource, ns, name))

    store: dict[tuple[str, str], dict[tuple[str, str], Any]] = {
        ("rbac.authorization.k8s.io", "roles"): {("n1", "r"): roles[0]},
        ("rbac.authorization.k8s.io", "clusterroles"): {("", "c"): croles[0]},
        ("rbac.authorization.k8s.io", "rolebindings"): {("n1", "rb"): rbs[0]},
        ("rbac.authorization.k8s.io", "clusterrolebindings"): {("", "crb"): crbs[0]} if crbs else {}}
    theirs, _ = authorize(lambda g, r: store[(g, r)], user, groups, {
        "verb": verb, "group": group, "resource": resource, "subresource": sub, "namespace": ns, "name": name})
    assert mine == theirs
