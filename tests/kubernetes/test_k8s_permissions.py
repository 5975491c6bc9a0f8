"""`revoke permissions` prints a ClusterRole for the kubernetes connector; bound to revoke's own
service account in the double, it is enough to collect, act, write back and verify (the double
authorizes every request by RBAC), and nothing in it is more than the playbook needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from connectors.kubernetes import KubernetesConnector
from examples.lab import k8s_double_lab
from examples.lab.k8s_double import KubeDouble
from examples.lab.k8s_double_state import CORE, RBAC
from revoke.connector import ActionContext, Replacement, Secret
from revoke.model import Node, NodeKind

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "compromised-k8s-workload.yaml"
AWS = {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
NEW = {"access_key_id": "AKIAI44QH8DHBEXAMPLE", "secret_access_key": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"}


def test_the_printed_cluster_role_is_enough(kube: KubeDouble, tmp_path: Path, revoke_cli: Any) -> None:
    (tmp_path / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "kubernetes",
                                                                          "kubeconfig": "kubeconfig.yaml"}]}))
    out = revoke_cli("permissions", "--playbook", str(PLAYBOOK), "--format", "json", cwd=tmp_path, in_process=True)
    assert out.returncode == 0 and out.json()["gaps"] == []
    role = out.json()["kubernetes"]["cluster_role"]
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete", "get", "list", "update"]} in role["rules"]
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in role["rules"])

    lab = k8s_double_lab.seed(kube, AWS)
    kube.add_service_account("kube-system", "revoke")
    kube.apply(RBAC, "clusterroles", role)
    kube.add_binding("revoke", role["metadata"]["name"], [{"kind": "ServiceAccount", "name": "revoke",
                                                            "namespace": "kube-system"}])
    with kube.state.lock:
        token = kube.state.mint("kube-system", "revoke", audiences=[], seconds=3600, bound=None)
    config = kube.kubeconfig()
    config["users"][0]["user"] = {"token": token}
    (tmp_path / "kubeconfig.yaml").write_text(yaml.safe_dump(config))
    assert not kube.token_can(token, verb="create", resource="pods", namespace="apps")  # least privilege

    conn = KubernetesConnector({"type": "kubernetes", "kubeconfig": str(tmp_path / "kubeconfig.yaml")})
    try:
        nodes = {n.id: n for n in conn.collect().nodes}
        ids, ctx = lab["node_ids"], ActionContext(incident="perm", dry_run=False)
        for key in ("legacy_token", "runner_token"):
            assert conn.act("revoke", nodes[ids[key]], ctx).changed
            assert conn.probe(nodes[ids[key]]).live is False
        builder = nodes[ids["builder_sa"]]
        assert conn.act("disable", builder, ctx).changed and conn.confirm("disable", builder).live is False
        assert conn.act("rollback", builder, ctx).changed
        store = nodes[ids["aws_secret"]]
        old = Node(f"aws:access_key:{AWS['access_key_id']}", NodeKind.ACCESS_KEY, "aws")
        rep = Replacement(old.id, f"aws:access_key:{NEW['access_key_id']}", NodeKind.ACCESS_KEY, Secret(NEW))
        assert conn.write_store(store, old, rep, ctx).changed and rep.new_id in conn.store_holds(store)
        cert = next(n for n in nodes.values() if n.kind is NodeKind.CERTIFICATE)
        assert conn.probe(cert).live is True
    finally:
        conn.close()
    assert kube.exists("serviceaccounts", "kube-system", "revoke", group=CORE)
