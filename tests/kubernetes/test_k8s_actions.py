"""Actions against the double, judged by its state: TokenReview for tokens, the bindings and
SubjectAccessReview for narrowing, the Secret's own data for a rotation written back."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.kubernetes import KubernetesConnector
from examples.lab import k8s_double_lab
from examples.lab.k8s_double import KubeDouble
from revoke.connector import ActionContext, Replacement, Secret
from revoke.model import Node, NodeKind

AWS = {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
NEW = {"access_key_id": "AKIAI44QH8DHBEXAMPLE", "secret_access_key": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"}


@pytest.fixture
def lab(kube: KubeDouble) -> dict:  # type: ignore[type-arg]
    return k8s_double_lab.seed(kube, AWS)


def nodes(conn: KubernetesConnector) -> dict[str, Node]:
    return {n.id: n for n in conn.collect().nodes}


def test_revoking_tokens_deletes_what_they_are_bound_to(kube: KubeDouble, lab: dict, ctx: ActionContext,  # type: ignore[type-arg]
                                                        make_connector: Callable[..., KubernetesConnector]) -> None:
    conn = make_connector()
    graph = nodes(conn)
    ids = lab["node_ids"]
    legacy, runner = graph[ids["legacy_token"]], graph[ids["runner_token"]]
    assert conn.probe(legacy).live is True and conn.probe(runner).live is True

    dry = conn.act("revoke", legacy, ActionContext(incident="dry", dry_run=True))
    assert dry.changed is False and "would delete Secret ci/builder-token" in dry.detail
    assert kube.review(lab["tokens"]["legacy"])

    first = conn.act("revoke", legacy, ctx)
    again = conn.act("revoke", legacy, ctx)
    assert (first.changed, again.changed) == (True, False)
    assert not kube.review(lab["tokens"]["legacy"]) and not kube.exists("secrets", "ci", "builder-token")
    assert conn.probe(legacy).live is False

    assert conn.act("revoke", runner, ctx).changed is True
    assert not kube.review(lab["tokens"]["runner"]) and not kube.exists("pods", "ci", "runner-1")
    assert kube.review(lab["tokens"]["web"])  # another pod's token is untouched
    probe = conn.probe(runner)
    assert probe.live is False and "dies with its Pod" in probe.signal
    assert type(conn).irreversible_reason("revoke", runner, None) is not None  # type: ignore[arg-type]


def test_narrowing_an_account_is_reversible(kube: KubeDouble, lab: dict, ctx: ActionContext,  # type: ignore[type-arg]
                                            make_connector: Callable[..., KubernetesConnector]) -> None:
    conn = make_connector()
    builder = nodes(conn)[lab["node_ids"]["builder_sa"]]
    user, groups = "system:serviceaccount:ci:builder", ["system:serviceaccounts", "system:serviceaccounts:ci"]
    assert kube.access(user, groups, verb="impersonate", resource="serviceaccounts", namespace="apps", name="web")

    result = conn.act("disable", builder, ctx)
    assert result.changed and {b["binding"] for b in result.data["bindings"]} == {
        "ClusterRoleBinding/ci-impersonate", "RoleBinding/ci/ci-secrets"}
    assert not kube.access(user, groups, verb="impersonate", resource="serviceaccounts", namespace="apps", name="web")
    assert not kube.access(user, groups, verb="get", resource="secrets", namespace="ci", name="builder-token")
    crb = kube.get("clusterrolebindings", "", "ci-impersonate", group="rbac.authorization.k8s.io")
    assert crb is not None and crb["subjects"] == []  # kept, empty, with what was removed
    assert conn.confirm("disable", builder).live is False
    assert conn.act("disable", builder, ctx).changed is False
    # the runner's token is still valid: narrowing is not revoking, but it reaches nothing now
    assert kube.review(lab["tokens"]["runner"])

    back = conn.act("rollback", builder, ctx)
    assert back.changed
    assert kube.access(user, groups, verb="impersonate", resource="serviceaccounts", namespace="apps", name="web")
    crb = kube.get("clusterrolebindings", "", "ci-impersonate", group="rbac.authorization.k8s.io")
    assert crb is not None and "revoke.io/removed-subjects" not in crb["metadata"].get("annotations", {})
    assert conn.confirm("disable", builder).live is True
    assert conn.act("rollback", builder, ctx).changed is False


def test_write_store_keeps_other_keys_and_reads_back(kube: KubeDouble, lab: dict, ctx: ActionContext,  # type: ignore[type-arg]
                                                     make_connector: Callable[..., KubernetesConnector]) -> None:
    conn = make_connector()
    graph = nodes(conn)
    store = graph[lab["node_ids"]["aws_secret"]]
    old = Node(f"aws:access_key:{AWS['access_key_id']}", NodeKind.ACCESS_KEY, "aws")
    before = kube.get("secrets", "apps", "aws-credentials")["metadata"]["resourceVersion"]  # type: ignore[index]
    rep = Replacement(old.id, f"aws:access_key:{NEW['access_key_id']}", NodeKind.ACCESS_KEY, Secret(NEW))
    result = conn.write_store(store, old, rep, ctx)
    assert result.changed and result.data["version"] != before
    assert kube.secret_data("apps", "aws-credentials") == {
        "AWS_ACCESS_KEY_ID": NEW["access_key_id"], "AWS_SECRET_ACCESS_KEY": NEW["secret_access_key"],
        "region": "eu-west-1", "bucket": "lab-artifacts"}
    held = conn.store_holds(store)
    assert rep.new_id in held and old.id not in held
    assert conn.write_store(store, old, rep, ctx).changed is False
    assert AWS["secret_access_key"] not in repr(result) + str(result.data)


def test_client_certificate_is_live_until_the_ca_rotates(kube: KubeDouble, lab: dict,  # type: ignore[type-arg]
                                                         make_connector: Callable[..., KubernetesConnector]) -> None:
    conn = make_connector()
    cert = next(n for n in nodes(conn).values() if n.kind is NodeKind.CERTIFICATE)
    assert cert.attrs["bypasses_authorization"] is True
    assert "system:masters" in (type(conn).manual_reason(cert) or "")
    assert conn.probe(cert).live is True
    kube.rotate_ca()
    assert conn.probe(cert).live is False
    assert kube.authenticate_certificate(lab["certificate_pem"]) is None
    again = next(n for n in nodes(conn).values() if n.kind is NodeKind.CERTIFICATE)
    assert again.status == "revoked"
