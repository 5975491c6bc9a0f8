"""Inventory parsing and `revoke.yaml` loading: every error names its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from core_testlib import write_config, write_yaml_inventory

from connectors.inventory import InventoryConnector, parse_inventory
from revoke.config import load_config
from revoke.errors import InputError
from revoke.yamlio import load_file


def _parse(path: Path):
    return parse_inventory(load_file(path), str(path))


def test_inventory_nodes_and_edges(tmp_path: Path) -> None:
    inv = write_yaml_inventory(
        tmp_path / "inv.yaml",
        ["{id: host:ci-runner-7, kind: host, labels: {team: ci}}",
         "{id: aws:access_key:AKIAEXAMPLE, kind: access_key, provider: aws, created: 2026-01-01T00:00Z}"],
        ["{from: host:ci-runner-7, to: aws:access_key:AKIAEXAMPLE, rel: stores, since: 2026-02-01T00:00Z}"],
    )
    got = InventoryConnector({"path": str(inv)}).collect()
    assert {(n.id, n.kind.value, n.provider) for n in got.nodes} == {
        ("host:ci-runner-7", "host", ""), ("aws:access_key:AKIAEXAMPLE", "access_key", "aws")}
    assert {e.key for e in got.edges} == {("host:ci-runner-7", "stores", "aws:access_key:AKIAEXAMPLE")}
    assert got.edges[0].since.isoformat() == "2026-02-01T00:00:00+00:00"
    # the key's liveness is its provider's: collect checks it like a reference
    assert got.meta == {"source": str(inv), "references": [
        {"node": "aws:access_key:AKIAEXAMPLE", "where": "nodes[1]", "line": 3, "declared": True}]}


@pytest.mark.parametrize(
    ("nodes", "edges", "message"),
    [
        (["{id: host:a, kind: host}", "{id: host:a, kind: host}"], [], "inv.yaml:3: nodes[1]: duplicate node id 'host:a'"),
        (["{id: host:a, kind: host, colour: red}"], [], "inv.yaml:2: nodes[0]: unknown field(s) ['colour']"),
        (["{id: 'no id here', kind: host}"], [], "inv.yaml:2: nodes[0]: field 'id': expected a node id"),
        (["{id: host:a, kind: host}"], ["{from: host:a, to: host:a, rel: stores, weight: 3}"],
         "inv.yaml:4: edges[0]: unknown field(s) ['weight']"),
        (["{id: host:a, kind: host}"], ["{from: host:a, to: host:a, rel: stores, until: soon}"],
         "inv.yaml:4: edges[0]: field 'until': not a valid ISO-8601 time"),
        (["{id: host:a, kind: host, labels: [x]}"], [], "inv.yaml:2: nodes[0]: field 'labels': expected a mapping, got a list"),
        (["host:a"], [], "inv.yaml:2: nodes[0]: expected a mapping"),
    ],
)
def test_inventory_errors(tmp_path: Path, nodes: list[str], edges: list[str], message: str) -> None:
    inv = write_yaml_inventory(tmp_path / "inv.yaml", nodes, edges)
    with pytest.raises(InputError) as err:
        _parse(inv)
    assert str(err.value).startswith(f"{tmp_path}/{message}"), str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping with `nodes:` and `edges:` lists"),
        ("nodes: []\nedges: []\nextra: 1\n", "1: unknown key(s) ['extra']; expected nodes, edges"),
        ("nodes: {a: 1}\n", "1: `nodes` and `edges` must be lists"),
        ("nodes:\n  - {id: host:a, id: host:b, kind: host}\n", "2: duplicate key 'id'"),
    ],
)
def test_inventory_document_errors(tmp_path: Path, text: str, message: str) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(text)
    with pytest.raises(InputError, match="^" + str(inv).replace(".", r"\.") + ":"):
        _parse(inv)
    with pytest.raises(InputError) as err:
        _parse(inv)
    assert message in str(err.value)


def test_config_connectors_names_and_paths(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    cfg = write_config(tmp_path / "conf" / "revoke.yaml",
                       "{type: inventory, path: inv.yaml}",
                       "{type: inventory, path: /abs/other.yaml}",
                       "{type: x509, paths: [pki, /etc/pki], holders: {pki/devices: 'host:gw'}}",
                       "{type: vault, name: prod-vault, url: 'http://127.0.0.1:8200', token_env: VAULT_TOKEN}")
    conf = load_config(cfg)
    base = (tmp_path / "conf").resolve()
    assert [(c.name, c.type, c.line) for c in conf.connectors] == [
        ("inventory", "inventory", 2), ("inventory-2", "inventory", 3), ("x509", "x509", 4), ("prod-vault", "vault", 5)]
    assert conf.connectors[0].options == {"path": str(base / "inv.yaml")}
    assert conf.connectors[1].options == {"path": "/abs/other.yaml"}
    assert conf.connectors[2].options == {"paths": [str(base / "pki"), "/etc/pki"],
                                          "holders": {str(base / "pki" / "devices"): "host:gw"}}
    assert conf.connectors[3].options == {"url": "http://127.0.0.1:8200", "token_env": "VAULT_TOKEN"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{type: vault, url: 'http://x', token: s.CANARY}", "2: field 'token': credentials are taken by reference"),
        ("{type: aws, secret_access_key: CANARY}", "2: field 'secret_access_key'"),
        ("{type: gcp, credentials: CANARY}", "2: field 'credentials'"),
        ("{type: aws, accounts: [{id: '1', session_token: CANARY}]}", "2: field 'session_token'"),
        ("{type: vault, url: 'http://x', approle: {role_id: r, secret_id: CANARY}}", "2: field 'secret_id'"),
        ("{type: nosuch}", "2: unknown connector type; known: aws, gcp, github, inventory, kubernetes, postgres, vault, x509"),
        ("{path: inv.yaml}", "2: each connector needs a `type`"),
        ("{type: inventory, name: a}\n  - {type: x509, name: a, paths: [x]}", "3: duplicate connector name 'a'"),
        ("{type: inventory, pth: a.yaml}", "2: connector 'inventory': field pth: unknown key"),
        ("{type: inventory}", "2: connector 'inventory': field path: Field required"),
        ("{type: inventory, path: a.yaml}\n  - {type: x509, paths: [x], max_file_bytes: lots}",
         "3: connector 'x509': field max_file_bytes: Input should be a valid integer"),
        ("{type: x509, paths: [x],\n     holders: {x: [1]}}",
         "3: connector 'x509': field holders.x: Input should be a valid string"),
    ],
)
def test_config_errors(tmp_path: Path, entry: str, message: str) -> None:
    cfg = write_config(tmp_path / "revoke.yaml", entry)
    with pytest.raises(InputError) as err:
        load_config(cfg)
    assert str(err.value).startswith(f"{cfg}:{message}"), str(err.value)
    assert "CANARY" not in str(err.value)  # never echoes the value


def test_config_document_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "revoke.yaml"
    cfg.write_text("connectors: []\nstores: x\n")
    with pytest.raises(InputError, match=r"revoke\.yaml:1: unknown key\(s\) \['stores'\]"):
        load_config(cfg)
    with pytest.raises(InputError, match=r"absent\.yaml: config not found"):
        load_config(tmp_path / "absent.yaml")


def test_config_scalar_entry_is_located(tmp_path: Path) -> None:
    cfg = tmp_path / "revoke.yaml"
    cfg.write_text("connectors:\n  - {type: inventory, path: a.yaml}\n  - inventory\n")
    with pytest.raises(InputError, match=r"revoke\.yaml:3: each connector needs a `type`"):
        load_config(cfg)
