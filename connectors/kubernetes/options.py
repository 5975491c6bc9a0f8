"""The options of a `type: kubernetes` block in revoke.yaml, validated before any connector runs.

Credentials are by reference only: a kubeconfig file (and a context in it), or the service
account of the pod revoke runs in (`in_cluster: true`). `server` overrides the kubeconfig's
URL (a lab double; plain HTTP only on loopback, checked when the client is built).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from revoke.connector import ConnectorOptions

Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


class KubernetesOptions(ConnectorOptions):
    kubeconfig: str | None = None   # path of a kubeconfig file
    context: str | None = None      # a context of that file; else its current-context
    in_cluster: bool = False        # use the pod's own service account instead
    server: str | None = None       # override the API server URL
    namespaces: list[Name] | None = None  # only these namespaces (cluster-scoped RBAC is still read)
    cluster_name: str | None = None  # a label for people; node ids use the cluster's own identity
    timeout: float = Field(default=30, gt=0)
    retry_seconds: float = Field(default=10, ge=0)
    page_size: int = Field(default=500, ge=1, le=5000)

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesOptions:
        if self.in_cluster == bool(self.kubeconfig):
            raise ValueError("give exactly one of kubeconfig (a file path) or in_cluster: true")
        if self.in_cluster and self.context:
            raise ValueError("context applies to a kubeconfig, not to in_cluster")
        return self
