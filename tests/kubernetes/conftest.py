"""A fresh Kubernetes API double per test (cheap: one thread and one CA key), a kubeconfig
file reaching it, and connectors made from that file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.kubernetes import KubernetesConnector
from examples.lab.k8s_double import KubeDouble
from revoke.connector import ActionContext


@pytest.fixture
def kube() -> Iterator[KubeDouble]:
    with KubeDouble() as double:
        yield double


@pytest.fixture
def kubeconfig(kube: KubeDouble, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(kube.kubeconfig()))
    return path


@pytest.fixture
def make_connector(kubeconfig: Path) -> Iterator[Callable[..., KubernetesConnector]]:
    made: list[KubernetesConnector] = []

    def make(**extra: Any) -> KubernetesConnector:
        conn = KubernetesConnector({"type": "kubernetes", "kubeconfig": str(kubeconfig), "page_size": 2,
                                    "retry_seconds": 5, **extra})
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def ctx() -> ActionContext:
    return ActionContext(incident="inc-k8s-test", dry_run=False)
