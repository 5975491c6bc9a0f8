"""The Kubernetes lab scenario, seeded into a `KubeDouble`:

- `apps/web-1`, a pod of service account `apps/web`, mounts Secret `apps/aws-credentials`
  (an AWS access key pair, plus `region` and `bucket` that a rotation must keep); `web` may
  read that Secret (RoleBinding `apps/web-read`);
- `ci/runner-1`, a CI runner pod of `ci/builder`, which may impersonate every service account
  and user (ClusterRoleBinding `ci-impersonate`) and read the Secrets of `ci` (RoleBinding
  `ci/ci-secrets`), among them the legacy token Secret `ci/builder-token`;
- a client certificate for `breakglass` in group `system:masters`, from an approved CSR.

`seed(double, aws_key)` returns the node ids, the lab material tests judge with (tokens, the
certificate) and a kubeconfig mapping; no value is ever printed.
"""

from __future__ import annotations

from typing import Any

from examples.lab.k8s_double import KubeDouble
from examples.lab.k8s_double_state import CORE


def node(kind: str, cluster: str, *parts: str) -> str:
    return f"kubernetes:{kind}:{'/'.join((cluster, *parts))}"


def seed(double: KubeDouble, aws_key: dict[str, str]) -> dict[str, Any]:
    """`aws_key`: {access_key_id, secret_access_key} of a real (moto) key the Secret holds."""
    for ns in ("apps", "ci"):
        double.add_namespace(ns)
    double.add_service_account("apps", "web")
    double.add_service_account("ci", "builder")
    double.add_secret("apps", "aws-credentials", {
        "AWS_ACCESS_KEY_ID": aws_key["access_key_id"], "AWS_SECRET_ACCESS_KEY": aws_key["secret_access_key"],
        "region": "eu-west-1", "bucket": "lab-artifacts"})
    double.add_role("read-aws-credentials", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                                              "resourceNames": ["aws-credentials"]}], ns="apps")
    double.add_binding("web-read", "read-aws-credentials", [{"kind": "ServiceAccount", "name": "web",
                                                             "namespace": "apps"}], ns="apps")
    double.add_role("impersonator", [{"apiGroups": [""], "resources": ["serviceaccounts", "users"],
                                      "verbs": ["impersonate"]}])
    double.add_binding("ci-impersonate", "impersonator", [{"kind": "ServiceAccount", "name": "builder",
                                                           "namespace": "ci"}])
    double.add_role("ci-secrets", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}], ns="ci")
    double.add_binding("ci-secrets", "ci-secrets", [{"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}],
                       ns="ci")
    legacy = double.add_legacy_token("ci", "builder-token", "builder")
    web_token = double.add_pod("apps", "web-1", "web", secret_volumes=["aws-credentials"])
    runner_token = double.add_pod("ci", "runner-1", "builder")
    cert = double.issue_client_certificate("breakglass-csr", "breakglass", ["system:masters"])
    cluster = str(double.get("namespaces", "", "kube-system", group=CORE)["metadata"]["uid"])  # type: ignore[index]
    return {
        "cluster": cluster,
        "tokens": {"web": web_token, "runner": runner_token, "legacy": legacy},
        "certificate_pem": cert["certificate_pem"],
        "node_ids": {
            "web_pod": node("pod", cluster, "apps", "web-1"),
            "runner_pod": node("pod", cluster, "ci", "runner-1"),
            "web_token": node("pod_token", cluster, "apps", "web-1"),
            "runner_token": node("pod_token", cluster, "ci", "runner-1"),
            "legacy_token": node("token_secret", cluster, "ci", "builder-token"),
            "aws_secret": node("secret", cluster, "apps", "aws-credentials"),
            "web_sa": node("service_account", cluster, "apps", "web"),
            "builder_sa": node("service_account", cluster, "ci", "builder"),
            "masters": node("group", cluster, "system:masters"),
            "ca": node("ca", cluster),
        },
        "kubeconfig": double.kubeconfig(),
    }
