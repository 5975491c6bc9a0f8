"""`revoke collect`: provider failures keep the previous snapshot; snapshots merge into one graph."""

from __future__ import annotations

import shutil
from pathlib import Path

from core_testlib import write_config, write_yaml_inventory

from connectors.recognize import pem_ref
from examples.lab.pki import make_ca, make_leaf, pem, pem_key
from revoke.store import Store


def _failed_line(out: str) -> str:
    lines = [line for line in out.splitlines() if "failed" in line and "x509" in line]
    assert len(lines) == 1, out
    return lines[0]


def test_failed_provider_keeps_its_previous_snapshot(revoke_cli, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca, ca_key = make_ca("Core Test CA")
    leaf, _ = make_leaf(ca, ca_key, "device-1")
    (pki / "ca.crt").write_text(pem(ca))
    (pki / "ca.key").write_text(pem_key(ca_key))
    (pki / "device-1.crt").write_text(pem(leaf))
    ca_id, leaf_id = pem_ref("CERTIFICATE", pem(ca)).ref, pem_ref("CERTIFICATE", pem(leaf)).ref  # type: ignore[union-attr]
    write_yaml_inventory(tmp_path / "inv.yaml", ["{id: host:gateway, kind: host}"], [])
    write_config(tmp_path / "revoke.yaml", "{type: inventory, path: inv.yaml}",
                 "{type: x509, paths: [pki], holder: 'host:gateway'}")
    store = tmp_path / "s.db"
    first = revoke_cli("collect", cwd=tmp_path, store=store)
    assert first.returncode == 0, first.stderr
    assert "collected x509: 3 nodes" in first.stdout
    taken = {s.name: s.taken_at for s in Store(f"sqlite:///{store}", create=False).snapshots()}

    def radius_ids() -> set[str]:
        res = revoke_cli("blast-radius", "host:gateway", "--format", "json", cwd=tmp_path, store=store)
        assert res.returncode == 0, res.stderr
        data = res.json()
        return {e["id"] for e in data["credentials"] + data["holders"]}

    before = radius_ids()
    assert {ca_id, leaf_id, "host:gateway"} <= before and len(before) == 4

    # the directory is emptied: 0 nodes where there were 3 is refused, not swapped in
    for f in pki.iterdir():
        f.unlink()
    res = revoke_cli("collect", cwd=tmp_path, store=store)
    assert res.returncode == 1
    assert _failed_line(res.stdout).startswith(
        "failed x509: returned 0 nodes where the previous snapshot had 3; kept the previous one")
    assert radius_ids() == before

    # the directory is gone: a provider failure, reported, previous snapshot kept, the rest collected
    shutil.rmtree(pki)
    res = revoke_cli("collect", cwd=tmp_path, store=store)
    assert res.returncode == 1
    assert _failed_line(res.stdout) == f"failed x509: x509: scan failed: path not found: {pki} (previous snapshot kept)"
    assert "collected inventory: 1 nodes, 0 edges" in res.stdout
    assert radius_ids() == before
    snaps = {s.name: s for s in Store(f"sqlite:///{store}", create=False).snapshots()}
    assert snaps["x509"].taken_at == taken["x509"] and snaps["x509"].nodes == 3
    assert snaps["x509"].last_error == f"x509: scan failed: path not found: {pki}"
    assert snaps["inventory"].taken_at > taken["inventory"] and snaps["inventory"].last_error is None


def test_failure_line_shows_no_markup(revoke_cli, tmp_path: Path) -> None:
    write_config(tmp_path / "revoke.yaml", "{type: x509, paths: [missing]}")
    res = revoke_cli("collect", cwd=tmp_path, store=tmp_path / "s.db")
    assert res.returncode == 1
    missing = tmp_path / "missing"
    assert _failed_line(res.stdout) == f"failed x509: x509: scan failed: path not found: {missing} (no earlier snapshot)"


def test_two_snapshots_of_the_same_node_merge(revoke_cli, tmp_path: Path) -> None:
    write_yaml_inventory(tmp_path / "a.yaml", ["{id: host:h, kind: host}", "{id: aws:access_key:K, kind: access_key}"],
                         ["{from: host:h, to: aws:access_key:K, rel: stores}"])
    write_yaml_inventory(tmp_path / "b.json", [], [])
    (tmp_path / "b.json").write_text(
        '{"nodes": [{"id": "aws:access_key:K", "kind": "access_key", "status": "inactive"},'
        ' {"id": "aws:user:u", "kind": "user"}],'
        ' "edges": [{"from": "aws:access_key:K", "to": "aws:user:u", "rel": "authenticates_as"}]}')
    write_config(tmp_path / "revoke.yaml", "{type: inventory, path: a.yaml}", "{type: inventory, path: b.json}")
    store = tmp_path / "s.db"
    res = revoke_cli("collect", cwd=tmp_path, store=store)
    assert res.returncode == 0, res.stderr
    assert "collected inventory-2: 2 nodes, 1 edges" in res.stdout and "graph: 3 nodes, 2 edges" in res.stdout
    # the merged status is the provider's: the inactive key stops the walk
    res = revoke_cli("explain", "host:h", "aws:user:u", cwd=tmp_path, store=store)
    assert res.stdout.splitlines()[0] == "aws:user:u is not reachable from host:h"
    res = revoke_cli("explain", "host:h", "aws:access_key:K", cwd=tmp_path, store=store)
    assert res.stdout.splitlines() == ["host:h", "  --stores--> aws:access_key:K"]
    graph = Store(f"sqlite:///{store}", create=False).load_compiled()
    assert not graph.live[graph.lookup("aws:access_key:K")]
