"""Fixtures for the core tests: an inventory of the seed incident, collected once into a store."""

from __future__ import annotations

from pathlib import Path

import pytest
from core_testlib import ROLE, USER, write_config, write_yaml_inventory

INVENTORY_NODES = [
    "{id: host:ci-runner-7, kind: host}",
    "{id: package:ai-gateway, kind: package}",
    "{id: aws:access_key:AKIACIDEPLOYER, kind: access_key, provider: aws}",
    f"{{id: '{USER}', kind: user}}",
    f"{{id: '{ROLE}', kind: role}}",
    "{id: vault:token:acc-ci, kind: token}",
    "{id: vault:token:acc-child, kind: token}",
    "{id: vault:secret:secret/ci/db, kind: secret}",
    "{id: vault:password:secret/ci/db#password, kind: password}",
    "{id: host:unrelated, kind: host}",
    "{id: aws:access_key:AKIAUNRELATED, kind: access_key}",
    "{id: aws:access_key:AKIALATER, kind: access_key, provider: aws}",
]
INVENTORY_EDGES = [
    "{from: package:ai-gateway, to: host:ci-runner-7, rel: stores}",
    "{from: host:ci-runner-7, to: aws:access_key:AKIACIDEPLOYER, rel: stores}",
    f"{{from: aws:access_key:AKIACIDEPLOYER, to: '{USER}', rel: authenticates_as}}",
    f"{{from: '{USER}', to: '{ROLE}', rel: can_assume}}",
    f"{{from: '{ROLE}', to: '{USER}', rel: can_assume}}",
    "{from: host:ci-runner-7, to: vault:token:acc-ci, rel: stores}",
    "{from: vault:token:acc-ci, to: vault:token:acc-child, rel: parent_of}",
    "{from: vault:token:acc-ci, to: vault:secret:secret/ci/db, rel: can_read}",
    "{from: vault:secret:secret/ci/db, to: vault:password:secret/ci/db#password, rel: stores}",
    "{from: host:unrelated, to: aws:access_key:AKIAUNRELATED, rel: stores}",
    "{from: host:ci-runner-7, to: aws:access_key:AKIALATER, rel: stores, since: '2026-04-01T00:00Z'}",
]


@pytest.fixture(scope="module")
def lab(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A directory with inventory.yaml, revoke.yaml and a store collected from them."""
    d = tmp_path_factory.mktemp("lab")
    write_yaml_inventory(d / "inventory.yaml", INVENTORY_NODES, INVENTORY_EDGES)
    write_config(d / "revoke.yaml", "{type: inventory, path: inventory.yaml}")
    store = d / "store" / "revoke.db"
    res = revoke_cli("collect", cwd=d, store=store)
    assert res.returncode == 0, res.stderr
    return {"dir": d, "store": store}
