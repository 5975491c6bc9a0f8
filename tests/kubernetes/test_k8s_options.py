"""The `kubernetes` block of `revoke.yaml` is checked before anything runs (exit 2, one line with
file, line and field), credentials are by reference only, and plain HTTP is refused off loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.kubernetes import KubernetesConnector
from examples.lab.k8s_double import KubeDouble
from revoke.connector import ConnectorError


def _config(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "revoke.yaml"
    path.write_text("connectors:\n  - type: kubernetes\n" + "".join(f"    {line}\n" for line in lines))
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["kubeconfig: k.yaml", "namespace: [apps]"], "revoke.yaml:4: connector 'kubernetes': field namespace: unknown key"),
        (["kubeconfig: k.yaml", "namespaces: [Apps]"], "revoke.yaml:4: connector 'kubernetes': field namespaces.0: String "),
        (["kubeconfig: k.yaml", "in_cluster: true"], "give exactly one of kubeconfig"),
        (["context: prod"], "give exactly one of kubeconfig"),
        (["kubeconfig: k.yaml", "page_size: 0"], "field page_size: Input should be greater than or equal to 1"),
        (["kubeconfig: k.yaml", "token: abc"], "field 'token': credentials are taken by reference only"),
    ],
)
def test_bad_options_exit_2_with_file_line_and_field(tmp_path: Path, revoke_cli: Any, lines: list[str],
                                                     message: str) -> None:
    _config(tmp_path, *lines)
    line = revoke_cli("collect", cwd=tmp_path, in_process=True).error_line()
    assert message in line, line
    assert not (tmp_path / ".revoke").exists()  # nothing ran, nothing was written


def test_plain_http_only_on_loopback(kube: KubeDouble, kubeconfig: Path) -> None:
    conn = KubernetesConnector({"type": "kubernetes", "kubeconfig": str(kubeconfig), "server": "http://10.1.2.3:6443"})
    with pytest.raises(ConnectorError, match="plain HTTP is allowed only on loopback"):
        conn.collect()
    conn.close()


def test_a_bad_kubeconfig_is_named_never_quoted(tmp_path: Path) -> None:
    path = tmp_path / "kc.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "clusters": [], "users": [
        {"name": "u", "user": {"token": "canary-token-7f3a"}}], "contexts": []}))
    conn = KubernetesConnector({"type": "kubernetes", "kubeconfig": str(path), "context": "missing"})
    with pytest.raises(ConnectorError) as err:
        conn.collect()
    assert str(path) in str(err.value) and "canary-token-7f3a" not in str(err.value)
    conn.close()


def test_server_override_reaches_the_double(kube: KubeDouble, tmp_path: Path) -> None:
    cfg = kube.kubeconfig()
    cfg["clusters"][0]["cluster"]["server"] = "https://kubernetes.invalid:6443"
    path = tmp_path / "kc.yaml"
    path.write_text(yaml.safe_dump(cfg))
    conn = KubernetesConnector({"type": "kubernetes", "kubeconfig": str(path), "server": kube.url})
    try:
        assert conn.collect().meta["server"] == kube.url
    finally:
        conn.close()
