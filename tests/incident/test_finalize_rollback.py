"""Reversible first: finalize only after a clean verify and the grace period; rollback undoes
containment as far as each provider allows and names what it cannot undo."""

from __future__ import annotations

from pathlib import Path

from examples.lab.demo import RUNNER
from tests.incident.incident_testlib import manual_tasks
from tests.incident.provider_state import aws_keys, gcp_keys

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks" / "compromised-ci-supply-chain.yaml"


def _playbook(tmp_path: Path, grace: str) -> str:
    text = SHIPPED.read_text().replace("grace_period: 24h", f"grace_period: {grace}")
    path = tmp_path / f"ci-{grace}.yaml"
    path.write_text(text)
    return str(path)


def test_finalize_waits_for_verify_then_deletes(revoke_cli, demo_lab, tmp_path: Path) -> None:
    lb = demo_lab
    pb = _playbook(tmp_path, "0s")
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    assert revoke_cli("run", pb, "--node", RUNNER, "--incident", "z1", "--execute", "--approve", cwd=lb.directory).returncode == 0
    early = revoke_cli("run", pb, "--incident", "z1", "--finalize", "--execute", cwd=lb.directory)
    assert early.returncode == 2 and "clean `revoke verify` first" in early.stderr
    disabled = {u: [k for k, s in keys.items() if s == "Inactive"] for u, keys in aws_keys(lb).items()}
    assert disabled["ci-deployer"] and disabled["app-backend"]
    assert revoke_cli("attest", "--incident", "z1", *manual_tasks(lb, "z1"), "--note", "rotated",
                      cwd=lb.directory).returncode == 0
    assert revoke_cli("verify", "--incident", "z1", cwd=lb.directory).returncode == 0
    dry = revoke_cli("run", pb, "--incident", "z1", "--finalize", cwd=lb.directory)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    fin = revoke_cli("run", pb, "--incident", "z1", "--finalize", "--execute", cwd=lb.directory)
    assert fin.returncode == 0, fin.stdout + fin.stderr
    after = aws_keys(lb)
    for user in ("ci-deployer", "app-backend"):
        assert not set(disabled[user]) & set(after[user]), (user, after)  # deactivated keys are gone
        assert list(after[user].values()) == ["Active"]
    assert list(gcp_keys(lb, "deployer@lab-project.iam.gserviceaccount.com").values()) == [True]


def test_finalize_respects_grace_period(revoke_cli, demo_lab, tmp_path: Path) -> None:
    lb = demo_lab
    pb = _playbook(tmp_path, "24h")
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    assert revoke_cli("run", pb, "--node", RUNNER, "--incident", "z2", "--execute", "--approve", cwd=lb.directory).returncode == 0
    assert revoke_cli("attest", "--incident", "z2", *manual_tasks(lb, "z2"), "--note", "rotated",
                      cwd=lb.directory).returncode == 0
    assert revoke_cli("verify", "--incident", "z2", cwd=lb.directory).returncode == 0
    fin = revoke_cli("run", pb, "--incident", "z2", "--finalize", "--execute", cwd=lb.directory)
    assert fin.returncode == 2 and "grace period 24h" in fin.stderr
    assert "Inactive" in aws_keys(lb)["ci-deployer"].values()


def test_rollback_reenables_what_it_can(revoke_cli, demo_lab) -> None:
    lb = demo_lab
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    before = aws_keys(lb)
    assert revoke_cli("run", "compromised-ci-supply-chain", "--node", RUNNER, "--incident", "r1",
                      "--execute", "--approve", cwd=lb.directory).returncode == 0
    dry = revoke_cli("rollback", "--incident", "r1", cwd=lb.directory)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    rb = revoke_cli("rollback", "--incident", "r1", "--execute", cwd=lb.directory)
    assert rb.returncode == 1, rb.stdout  # a revoked Vault token cannot come back
    assert "cannot undo vault:token:" in rb.stdout
    after = aws_keys(lb)
    assert after["ci-deployer"][lb.seeds["runner_key"].split(":")[-1]] == "Active"
    for old in before["app-backend"]:
        assert after["app-backend"][old] == "Active"
    gkeys = gcp_keys(lb, "deployer@lab-project.iam.gserviceaccount.com")
    assert gkeys[lb.seeds["gcp_key"].split(":")[-1]] is True
