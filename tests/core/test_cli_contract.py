"""The command line as DESIGN.md writes it: global options after the command, and inventories
that name nodes another source collects."""

from __future__ import annotations

import json
from pathlib import Path

from revoke.cli import hoist_globals


def test_hoist_globals_moves_only_global_options() -> None:
    assert hoist_globals(["collect", "--config", "c.yaml", "--store", "sqlite:///x.db"]) == [
        "--config", "c.yaml", "--store", "sqlite:///x.db", "collect"]
    assert hoist_globals(["blast-radius", "host:a", "--store=sqlite:///y", "--format", "json", "-v"]) == [
        "--store=sqlite:///y", "-v", "blast-radius", "host:a", "--format", "json"]
    assert hoist_globals(["attest", "--note", "x", "--", "--store"]) == ["attest", "--note", "x", "--", "--store"]


def test_options_after_the_command_as_in_the_contract(revoke_cli, tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("nodes:\n  - {id: host:a, kind: host}\n"
                                       "  - {id: 'aws:access_key:AKIA1', kind: access_key}\n"
                                       "edges:\n  - {from: host:a, to: 'aws:access_key:AKIA1', rel: stores}\n")
    (tmp_path / "cfg.yaml").write_text("connectors:\n  - {type: inventory, path: inv.yaml}\n")
    store = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert revoke_cli("collect", "--config", "cfg.yaml", "--store", store, cwd=tmp_path).returncode == 0
    assert not (tmp_path / ".revoke").exists()
    out = revoke_cli("blast-radius", "host:a", "--format", "json", "--store", store, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [c["id"] for c in json.loads(out.stdout)["credentials"]] == ["aws:access_key:AKIA1"]


def test_inventory_may_name_nodes_another_source_collects(revoke_cli, tmp_path: Path) -> None:
    (tmp_path / "keys.yaml").write_text("nodes:\n  - {id: 'aws:access_key:AKIA2', kind: access_key}\n")
    (tmp_path / "hosts.yaml").write_text("nodes:\n  - {id: host:a, kind: host}\n"
                                         "edges:\n  - {from: host:a, to: 'aws:access_key:AKIA2', rel: stores}\n")
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - {type: inventory, path: keys.yaml}\n"
                                          "  - {type: inventory, path: hosts.yaml}\n")
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    # a name nothing collects is still a typo: exit 2, file and line, nothing written
    (tmp_path / "hosts.yaml").write_text("nodes:\n  - {id: host:a, kind: host}\n"
                                         "edges:\n  - {from: host:a, to: 'aws:access_key:AKIA3', rel: stores}\n")
    before = (tmp_path / ".revoke" / "revoke.db").stat().st_mtime_ns
    bad = revoke_cli("collect", cwd=tmp_path)
    assert bad.returncode == 2
    assert "hosts.yaml:4: edges[0]: edge names unknown node 'aws:access_key:AKIA3'" in bad.stderr
    assert "AKIA2" in bad.stderr  # the close match is suggested
    assert (tmp_path / ".revoke" / "revoke.db").stat().st_mtime_ns == before
