"""Collect against the double: exact edge sets (with the cases that must make no edge), the
namespace filter, cluster identity, chunked lists, throttling, and no value ever kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connectors.kubernetes import KubernetesConnector
from examples.lab.k8s_double import KubeDouble

AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DB_PASSWORD = "canary-db-password-3f9d1c"


def seed(kube: KubeDouble) -> None:
    for ns in ("apps", "ci"):
        kube.add_namespace(ns)
    kube.add_service_account("apps", "web")
    kube.add_service_account("apps", "idle")
    kube.add_service_account("ci", "builder")
    kube.add_service_account("ci", "deployer")
    kube.add_secret("apps", "aws", {"AWS_ACCESS_KEY_ID": AWS_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "region": "eu"})
    kube.add_secret("apps", "db", {"password": DB_PASSWORD})
    kube.add_role("read-aws", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                                "resourceNames": ["aws"]}], ns="apps")
    kube.add_binding("web-read", "read-aws", [{"kind": "ServiceAccount", "name": "web", "namespace": "apps"}], ns="apps")
    # no edge: reading configmaps, writing Secrets without reading them
    kube.add_role("noise", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]}],
                  ns="apps")
    kube.add_binding("idle-noise", "noise", [{"kind": "ServiceAccount", "name": "idle", "namespace": "apps"}], ns="apps")
    kube.add_role("impersonator", [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
                                    "resourceNames": ["web"]}])
    kube.add_binding("ci-impersonate", "impersonator", [{"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}])
    kube.add_role("token-minter", [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}],
                  ns="apps")
    kube.add_binding("deployer-mint", "token-minter", [{"kind": "ServiceAccount", "name": "deployer",
                                                         "namespace": "ci"}], ns="apps")
    kube.add_role("pod-maker", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}])
    kube.add_binding("deployer-pods", "pod-maker", [{"kind": "User", "name": "alice"}], ns="ci", role_kind="ClusterRole")
    kube.add_legacy_token("ci", "builder-token", "builder")
    kube.add_pod("apps", "web-1", "web", secret_volumes=["aws"], env_secrets=[("db", "password")])


def short(cluster: str, edges: list[Any]) -> set[tuple[str, str, str]]:
    def s(i: str) -> str:
        return i.replace(f"{cluster}/", "").replace("kubernetes:", "")
    return {(s(e.src), e.rel.value, s(e.dst)) for e in edges}


def test_edges_are_exactly_what_rbac_and_mounts_give(kube: KubeDouble,
                                                   make_connector: Callable[..., KubernetesConnector]) -> None:
    seed(kube)
    out = make_connector().collect()
    cluster = out.meta["cluster"]
    everything = short(cluster, out.edges)
    # system:masters reaches every account's minted tokens: those are checked in the incident tests
    minted = {e[2] for e in everything if e[1] == "can_mint" and not e[0].startswith("group:system:masters")}
    edges = {e for e in everything if not e[0].startswith("group:system:masters")
             and not (e[0].startswith("minted_token:") and e[0] not in minted)}
    assert edges == {
        ("pod:apps/web-1", "stores", "pod_token:apps/web-1"),
        ("pod:apps/web-1", "stores", "secret:apps/aws"),
        ("pod:apps/web-1", "stores", "secret:apps/db"),
        ("pod_token:apps/web-1", "authenticates_as", "service_account:apps/web"),
        ("token_secret:ci/builder-token", "authenticates_as", "service_account:ci/builder"),
        ("secret:apps/aws", "stores", f"aws:access_key:{AWS_ID}"),
        ("secret:apps/db", "stores", "password:apps/db#password"),
        ("service_account:apps/web", "can_read", "secret:apps/aws"),
        ("service_account:ci/builder", "can_assume", "service_account:apps/web"),
        ("service_account:ci/deployer", "can_mint", "minted_token:apps/web"),
        ("service_account:ci/deployer", "can_mint", "minted_token:apps/idle"),
        ("service_account:ci/deployer", "can_mint", "minted_token:apps/default"),
        ("minted_token:apps/web", "authenticates_as", "service_account:apps/web"),
        ("minted_token:apps/idle", "authenticates_as", "service_account:apps/idle"),
        ("minted_token:apps/default", "authenticates_as", "service_account:apps/default"),
        ("user:alice", "can_assume", "service_account:ci/builder"),
        ("user:alice", "can_assume", "service_account:ci/deployer"),
        ("user:alice", "can_assume", "service_account:ci/default"),
    }
    by_id = {n.id: n for n in out.nodes}
    web_read = next(e for e in out.edges if e.rel.value == "can_read" and "apps/web" in e.src)
    assert web_read.attrs["bindings"] == ["RoleBinding/apps/web-read"]
    legacy = by_id[f"kubernetes:token_secret:{cluster}/ci/builder-token"]
    assert legacy.kind.value == "token" and legacy.status == "active" and legacy.fingerprint
    assert by_id[f"kubernetes:service_account:{cluster}/apps/web"].attrs["uid"] == kube.get(
        "serviceaccounts", "apps", "web")["metadata"]["uid"]  # type: ignore[index]


def test_rbac_edges_agree_with_subject_access_review(kube: KubeDouble,
                                                     make_connector: Callable[..., KubernetesConnector]) -> None:
    """The connector's own evaluation and the API server's answer the same question."""
    seed(kube)
    out = make_connector().collect()
    cluster = out.meta["cluster"]
    reads = {(e.src, e.dst) for e in out.edges if e.rel.value == "can_read"}
    for sa in [n for n in out.nodes if n.id.startswith(f"kubernetes:service_account:{cluster}/")]:
        ns, name = sa.name.split("/")
        for secret in [n for n in out.nodes if n.kind.value in ("secret", "token")
                       and n.id.split(":")[1] in ("secret", "token_secret")]:
            sns, sname = secret.name.split("/")
            allowed = any(kube.access(f"system:serviceaccount:{ns}:{name}", ["system:serviceaccounts",
                                      f"system:serviceaccounts:{ns}", "system:authenticated"],
                                      verb=verb, resource="secrets", namespace=sns, name=sname)
                          for verb in ("get", "list", "watch"))
            assert allowed == ((sa.id, secret.id) in reads), (sa.id, secret.id)


def test_namespace_filter_and_cluster_identity(kube: KubeDouble, make_connector: Callable[..., KubernetesConnector],
                                               tmp_path: Any) -> None:
    seed(kube)
    out = make_connector(namespaces=["apps"]).collect()
    ids = {n.id for n in out.nodes}
    cluster = out.meta["cluster"]
    assert f"kubernetes:secret:{cluster}/apps/aws" in ids
    assert not any("/ci/builder-token" in i for i in ids)
    builder = next(n for n in out.nodes if n.id == f"kubernetes:service_account:{cluster}/ci/builder")
    assert builder.attrs["not_collected"] is True  # named by a binding, outside the filter
    assert (f"kubernetes:service_account:{cluster}/ci/builder", "can_assume",
            f"kubernetes:service_account:{cluster}/apps/web") in {(e.src, e.rel.value, e.dst) for e in out.edges}

    import yaml
    with KubeDouble() as other:
        seed(other)
        path = tmp_path / "other.yaml"
        path.write_text(yaml.safe_dump(other.kubeconfig()))
        second = KubernetesConnector({"type": "kubernetes", "kubeconfig": str(path)})
        try:
            out2 = second.collect()
        finally:
            second.close()
    own = {n.id for n in out2.nodes if n.provider == "kubernetes"}
    assert out2.meta["cluster"] != cluster and not own & ids


def test_chunked_and_throttled_lists(kube: KubeDouble, make_connector: Callable[..., KubernetesConnector]) -> None:
    seed(kube)
    kube.throttle(3, retry_after=1)
    out = make_connector(page_size=1).collect()
    assert out.meta["retries"] == 3
    assert out.meta["pages"] > 20  # one item per page: every list followed its continue tokens
    assert len([n for n in out.nodes if n.kind.value == "service_account"]) == 8


def test_secret_values_never_leave_collect(kube: KubeDouble, make_connector: Callable[..., KubernetesConnector]) -> None:
    seed(kube)
    legacy = kube.secret_data("ci", "builder-token")["token"]  # type: ignore[index]
    out = make_connector().collect()
    text = json.dumps([[n.to_dict() for n in out.nodes], [e.to_dict() for e in out.edges],
                       [f.message for f in out.findings], out.meta], default=str)
    for value in (AWS_SECRET, DB_PASSWORD, legacy, "eu"):
        assert value not in text.replace('"eu-', "")
