"""Finalize never destroys a credential that may be live again: it needs a clean verify later than
every rollback, re-run action and attestation, and each irreversible action re-probes its
credential right before acting. Judged by the providers' own state (the lab: moto, OpenBao, the
GCP double), and, for the kinds of change, by the journal of a small inventory-only incident."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import hvac
import pytest
import yaml

from examples.lab.demo import RUNNER, VAULT_TOKEN_ENV
from tests.incident.incident_testlib import manual_tasks
from tests.incident.provider_state import aws_keys, gcp_keys
from tests.reliability.reliability_testlib import DEPLOYER, INVENTORY, Workspace

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks" / "compromised-ci-supply-chain.yaml"
KV_PATHS = ("ci/aws-app", "ci/gcp-deployer")


def _playbook(tmp_path: Path) -> str:
    path = tmp_path / "ci-0s.yaml"
    path.write_text(SHIPPED.read_text().replace("grace_period: 24h", "grace_period: 0s"))
    return str(path)


def _kv_versions(lb: Any) -> dict[str, dict[str, Any]]:
    """path -> version -> (destroyed, deletion_time): what finalize's destroy would change."""
    vault = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    out = {}
    for path in KV_PATHS:
        versions = vault.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]["versions"]
        out[path] = {v: (meta["destroyed"], meta["deletion_time"]) for v, meta in versions.items()}
    return out


def _provider_state(lb: Any) -> dict[str, Any]:
    return {"aws": aws_keys(lb), "gcp": gcp_keys(lb, DEPLOYER), "kv": _kv_versions(lb)}


def _contain_and_verify(revoke_cli, lb: Any, pb: str, incident: str) -> None:
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    run = revoke_cli("run", pb, "--node", RUNNER, "--incident", incident, "--execute", "--approve", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    assert revoke_cli("attest", "--incident", incident, *manual_tasks(lb, incident), "--note", "rotated",
                      cwd=lb.directory).returncode == 0
    res = revoke_cli("verify", "--incident", incident, cwd=lb.directory)
    assert res.returncode == 0, res.stdout + res.stderr


def test_finalize_after_a_rollback_is_refused_and_changes_nothing(revoke_cli, demo_lab, tmp_path: Path) -> None:
    lb, pb = demo_lab, _playbook(tmp_path)
    _contain_and_verify(revoke_cli, lb, pb, "fa1")
    rb = revoke_cli("rollback", "--incident", "fa1", "--execute", cwd=lb.directory)
    assert "undone: " in rb.stdout, rb.stdout + rb.stderr
    before = _provider_state(lb)
    assert before["gcp"][lb.seeds["gcp_key"].split(":")[-1]] is True  # the rollback re-enabled the old key

    fin = revoke_cli("run", pb, "--incident", "fa1", "--finalize", "--execute", cwd=lb.directory)
    line = fin.error_line()
    assert "after the last change: a rollback of" in line and "run `revoke verify --incident fa1` again" in line, line
    assert _provider_state(lb) == before

    # a verify now sees the re-enabled keys: still no finalize
    assert revoke_cli("verify", "--incident", "fa1", cwd=lb.directory).returncode == 1
    again = revoke_cli("run", pb, "--incident", "fa1", "--finalize", "--execute", cwd=lb.directory)
    assert "clean `revoke verify` first" in again.error_line()
    assert _provider_state(lb) == before


def test_a_key_reenabled_after_the_clean_verify_is_not_finalized(revoke_cli, demo_lab, tmp_path: Path) -> None:
    from google.cloud import iam_admin_v1
    from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

    lb, pb = demo_lab, _playbook(tmp_path)
    _contain_and_verify(revoke_cli, lb, pb, "fa2")
    old_gcp = lb.seeds["gcp_key"].split(":")[-1]
    assert gcp_keys(lb, DEPLOYER)[old_gcp] is False
    # someone re-enables the old key out of band, through the IAM API
    channel = grpc.insecure_channel(lb.gcp.endpoint)
    try:
        iam_admin_v1.IAMClient(transport=IAMGrpcTransport(channel=channel)).enable_service_account_key(
            request={"name": lb.gcp.key_info(old_gcp)["name"]})
    finally:
        channel.close()
    kv_before = _kv_versions(lb)
    aws_before = aws_keys(lb)

    fin = revoke_cli("run", pb, "--incident", "fa2", "--finalize", "--execute", cwd=lb.directory)
    assert fin.returncode == 1, fin.stdout + fin.stderr
    assert f"refused {lb.seeds['gcp_key']}: {lb.seeds['gcp_key']} is live again" in fin.stdout, fin.stdout
    assert f"refused vault:secret:secret/ci/gcp-deployer: {lb.seeds['gcp_key']} is live again" in fin.stdout
    # the live key and the old versions of the secret that held it are untouched ...
    assert gcp_keys(lb, DEPLOYER)[old_gcp] is True
    assert _kv_versions(lb)["ci/gcp-deployer"] == kv_before["ci/gcp-deployer"]
    # ... while what is still dead was finalized: the deactivated AWS keys are gone, old KV versions destroyed
    after = aws_keys(lb)
    for user in ("ci-deployer", "app-backend"):
        gone = {k for k, s in aws_before[user].items() if s == "Inactive"}
        assert gone and not gone & set(after[user]), (user, after)
    assert any(d for d, _ in _kv_versions(lb)["ci/aws-app"].values())
    with sqlite3.connect(lb.directory / ".revoke" / "revoke.db") as db:
        refused = db.execute("SELECT node FROM journal WHERE incident='fa2' AND type='refused'").fetchall()
    assert {r[0] for r in refused} == {lb.seeds["gcp_key"], "vault:secret:secret/ci/gcp-deployer"}


# -- every kind of change after the clean verify, on a small inventory-only incident --------------

PLAYBOOK = "compromised-ci-supply-chain"
INV_MANUAL = ["aws:access_key:AKIAEXAMPLE", "vault:password:secret/ci/db#password"]


@pytest.fixture(scope="module")
def verified(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("gate")
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    (root / "pb.yaml").write_text(SHIPPED.read_text().replace("grace_period: 24h", "grace_period: 0s"))
    ws = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    assert revoke_cli("collect", **ws.cli).returncode == 0
    assert revoke_cli("run", "pb.yaml", "--node", "host:ci-runner-7", "--incident", "i1", "--execute",
                      **ws.cli).returncode == 0
    for node in INV_MANUAL:
        assert revoke_cli("attest", "--incident", "i1", node, "--note", "by hand", **ws.cli).returncode == 0
    assert revoke_cli("verify", "--incident", "i1", **ws.cli).returncode == 0
    ws.snapshot()
    yield root


@pytest.fixture
def ws(verified: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(verified, root)
    return Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")


# records appended after the clean verify, the way attest, a re-run and a rollback write them
CHANGES: dict[str, tuple[str, str | None, str, dict[str, Any], str]] = {
    "attestation": ("attest", None, INV_MANUAL[0], {"by": "x@y", "note": "again"}, "an attestation of"),
    "re-run outcome": ("outcome", "s1", INV_MANUAL[0], {"ok": True}, "an action of a re-run"),
    "re-run interrupted": ("intent", "s1", INV_MANUAL[0], {"verb": "revoke"}, "an action of a re-run"),
    "rollback": ("outcome", "rollback:s1", INV_MANUAL[0], {"ok": True}, "a rollback of"),
    "rollback interrupted": ("intent", "rollback:s1", INV_MANUAL[0], {"verb": "rollback"}, "a rollback of"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_change_after_the_clean_verify_blocks_finalize(revoke_cli, ws: Workspace, change: str) -> None:
    from revoke.journal import Journal
    from revoke.store import Store

    type_, action, node, data, said = CHANGES[change]
    store = Store(f"sqlite:///{ws.store}", create=False)
    rec = Journal(store, "i1").append(type_, action=action, node=node, data=data)
    store.close()
    line = revoke_cli("run", "pb.yaml", "--incident", "i1", "--finalize", "--execute", **ws.cli).error_line()
    assert f"after the last change: {said}" in line and f"record {rec.seq}" in line, line
    # a new clean verify vouches for the change: finalize may go ahead
    if type_ == "attest" or (action == "rollback:s1" and type_ == "outcome"):
        assert revoke_cli("verify", "--incident", "i1", **ws.cli).returncode == 0
        fin = revoke_cli("run", "pb.yaml", "--incident", "i1", "--finalize", "--execute", **ws.cli)
        assert fin.returncode == 0, fin.stdout + fin.stderr
