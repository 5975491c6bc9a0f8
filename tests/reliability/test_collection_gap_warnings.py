"""Every command that answers from the graph says when the graph is incomplete: `blast-radius`,
`sweep`, `plan` and a dry run print one stderr line per connector whose last collection failed
(only `run --execute` refuses). Two Vault connectors point at a closed loopback port, so their
collection really fails; the inventory connector succeeds and is never named."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.reliability.reliability_testlib import INVENTORY, Workspace

PLAYBOOK = "compromised-ci-supply-chain"
DOWN = "http://127.0.0.1:1"  # nothing listens on port 1: connection refused, at once
ENV = {"GAP_VAULT_TOKEN": "s.NotARealTokenForThisTest0"}

COMMANDS = {
    "blast-radius": ["blast-radius", "host:ci-runner-7"],
    "blast-radius json": ["blast-radius", "host:ci-runner-7", "--format", "json"],
    "sweep": ["sweep", "--fail-on", "none"],
    "sweep json": ["sweep", "--format", "json", "--fail-on", "none"],
    "plan": ["plan", PLAYBOOK, "--node", "host:ci-runner-7"],
    "dry run": ["run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", "dry"],
}


@pytest.fixture(scope="module")
def ws(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("gaps")
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [
        {"type": "inventory", "path": "inventory.yaml"},
        {"type": "vault", "url": DOWN, "token_env": "GAP_VAULT_TOKEN"},
        {"type": "vault", "name": "vault-b", "url": DOWN, "token_env": "GAP_VAULT_TOKEN"}]}))
    w = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    res = revoke_cli("collect", **w.cli, env=ENV)
    assert res.returncode == 1 and "failed vault" in res.stdout, res.stdout + res.stderr
    yield w


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_one_warning_line_per_failed_connector(revoke_cli, ws: Workspace, cmd: str) -> None:
    res = revoke_cli(*COMMANDS[cmd], **ws.cli, env=ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: incomplete graph: ")]
    assert [w.split(": ")[2] for w in warnings] == ["vault", "vault-b"], res.stderr
    for w in warnings:
        assert "never collected (last attempt failed: vault: " in w and "cannot reach Vault" in w, w
    assert not any("inventory" in w for w in warnings)
    assert "incomplete graph" not in res.stdout  # machine-readable output stays clean

