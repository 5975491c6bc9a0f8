"""The github connector block through the CLI: bad options are one line naming file, line and
field, nothing collected; `revoke permissions` lists what the playbook needs from GitHub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.parametrize(("block", "field"), [
    ("    orgs: [acme]\n    base_url: http://example.com/\n", "base_url"),
    ("    token_env: GITHUB_TOKEN\n", "name at least one of orgs"),
    ("    orgs: [acme]\n    repos: [no-slash]\n", "repos"),
    ("    orgs: [acme]\n    leaked_tokens: ghp_x\n", "leaked_tokens"),
])
def test_bad_github_options_exit_2(tmp_path: Path, revoke_cli: Callable[..., Any], block: str, field: str) -> None:
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - type: github\n" + block)
    line = revoke_cli("collect", cwd=tmp_path).error_line()
    assert line.startswith("error: revoke.yaml:") and field in line
    assert not (tmp_path / ".revoke").exists()


def test_permissions_for_the_supply_chain_playbook(tmp_path: Path, revoke_cli: Callable[..., Any]) -> None:
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - type: github\n    orgs: [acme]\n")
    run = revoke_cli("permissions", "--playbook", "compromised-ci-supply-chain", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    section = run.stdout.split("## github", 1)[1]
    for need in ("administration:write", "secrets:write", "organization_personal_access_tokens:write"):
        assert f"- {need}" in section
