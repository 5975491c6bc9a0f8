"""Bad input to the incident commands: one clear line, exit 2, nothing executed or journaled.
No provider is needed: an inventory-only graph whose credentials no connector can act on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

INVENTORY = """
nodes:
  - {id: host:runner, kind: host}
  - {id: aws:access_key:AKIAEXAMPLE0000000001, kind: access_key, provider: aws}
  - {id: vault:token:acc1, kind: token, provider: vault}
edges:
  - {from: host:runner, to: aws:access_key:AKIAEXAMPLE0000000001, rel: stores}
  - {from: host:runner, to: vault:token:acc1, rel: stores}
"""


@pytest.fixture
def work(revoke_cli, tmp_path: Path) -> Path:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - type: inventory\n    path: inventory.yaml\n")
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    return tmp_path


def journal_rows(work: Path) -> int:
    db = sqlite3.connect(work / ".revoke" / "revoke.db")
    try:
        return db.execute("SELECT count(*) FROM journal").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_invalid_playbook_names_file_line_and_field(revoke_cli, work: Path) -> None:
    (work / "bad.yaml").write_text("name: bad\nactions:\n  access_key: rotat\n")
    line = revoke_cli("plan", "bad.yaml", "--node", "host:runner", cwd=work).error_line()
    assert "bad.yaml:3" in line and "actions" in line and "rotat" in line


def test_unknown_node_is_refused_with_suggestion(revoke_cli, work: Path) -> None:
    line = revoke_cli("plan", "compromised-host", "--node", "host:runnr", cwd=work).error_line()
    assert "host:runnr" in line and "host:runner" in line


def test_unknown_incident(revoke_cli, work: Path) -> None:
    for args in (("verify", "--incident", "nope"), ("attest", "--incident", "nope", "x:y", "--note", "n"),
                 ("report", "--incident", "nope")):
        assert "unknown incident 'nope'" in revoke_cli(*args, cwd=work).error_line()


def test_playbook_that_does_not_apply(revoke_cli, work: Path) -> None:
    line = revoke_cli("plan", "leaked-aws-key", "--node", "host:runner", cwd=work).error_line()
    assert "applies to kinds" in line


def test_credentials_without_a_connector_become_manual_tasks(revoke_cli, work: Path) -> None:
    plan = revoke_cli("plan", "compromised-host", "--node", "host:runner", "--format", "json", cwd=work)
    assert plan.returncode == 0, plan.stderr
    steps = {s["node"]: s for s in json.loads(plan.stdout)["steps"]}
    for nid in ("aws:access_key:AKIAEXAMPLE0000000001", "vault:token:acc1"):
        assert steps[nid]["verb"] == "manual"
        assert "no connector configured for provider" in steps[nid]["reason"]
        assert steps[nid]["path"] == ["host:runner", nid]


def test_approval_required_but_not_given(revoke_cli, work: Path) -> None:
    # a playbook that requires approval above zero actions, on a graph with an actionable step
    (work / "pb.yaml").write_text("name: strict\nactions: {access_key: revoke}\napproval: {required_above: 0}\n")
    (work / "revoke.yaml").write_text(
        "connectors:\n  - type: inventory\n    path: inventory.yaml\n"
        "  - type: aws\n    endpoint_url: http://127.0.0.1:9\n    region: us-east-1\n")
    # the aws connector was never collected: refused, the graph would be incomplete
    line = revoke_cli("run", "pb.yaml", "--node", "host:runner", "--incident", "a1", "--execute", cwd=work).error_line()
    assert "graph is incomplete" in line and "aws: never collected" in line
    line = revoke_cli("run", "pb.yaml", "--node", "host:runner", "--incident", "a1", "--execute",
                      "--allow-partial", cwd=work).error_line()
    assert "approval required" in line and "--approve" in line
    assert journal_rows(work) == 0


def dump(work: Path) -> list[str]:
    db = sqlite3.connect(work / ".revoke" / "revoke.db")
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_dry_run_changes_nothing(revoke_cli, work: Path) -> None:
    before = dump(work)
    dry = revoke_cli("run", "compromised-host", "--node", "host:runner", "--incident", "d1", cwd=work)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    assert journal_rows(work) == 0
    assert dump(work) == before


def test_departed_owner_takes_everything_the_person_owns(revoke_cli, tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(
        "nodes:\n"
        "  - {id: host:laptop-alice, kind: host, owner: alice}\n"
        "  - {id: 'aws:access_key:AKIAALICE', kind: access_key, owner: alice}\n"
        "  - {id: 'aws:access_key:AKIABOB', kind: access_key, owner: bob}\n")
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - {type: inventory, path: inv.yaml}\n")
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    plan = revoke_cli("plan", "departed-owner", "--node", "alice", "--format", "json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    body = json.loads(plan.stdout)
    assert body["sources"] == ["aws:access_key:AKIAALICE", "host:laptop-alice"]
    assert {s["node"] for s in body["steps"]} == {"aws:access_key:AKIAALICE"}
    line = revoke_cli("plan", "departed-owner", "--node", "carol", cwd=tmp_path).error_line()
    assert "no node in the graph is owned by carol" in line
