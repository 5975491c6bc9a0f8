"""The supply-chain entry point end to end through the CLI: collect, blast-radius from the
re-tagged action, run the shipped playbook, verify; judged by the GitHub double's own state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from examples.lab import github_demo
from examples.lab.github_double import GithubDouble

PLAYBOOK = "compromised-ci-supply-chain"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[GithubDouble, github_demo.GithubDemo, Path]]:
    with GithubDouble() as double:
        demo = github_demo.seed(double)
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"nodes": [], "edges": demo.inventory_edges}))
        (tmp_path / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [
            {"type": "inventory", "path": "inventory.yaml"}, demo.config]}))
        yield double, demo, tmp_path


def test_retagged_action_incident_end_to_end(lab: tuple[GithubDouble, github_demo.GithubDemo, Path],
                                             revoke_cli: Callable[..., Any]) -> None:
    gh, demo, cwd = lab
    facts, full = demo.facts, demo.facts["repo"]

    def cli(*args: str) -> Any:
        return revoke_cli(*args, cwd=cwd, env=demo.env)

    collected = cli("collect")
    assert collected.returncode == 0, collected.stderr
    radius = cli("blast-radius", demo.source, "--format", "json")
    assert radius.returncode == 0, radius.stderr
    reached = {c["id"]: c for c in radius.json()["credentials"]} | {h["id"]: h for h in radius.json()["holders"]}
    # tag -> job's secrets -> the PyPI token -> the package it can publish
    assert facts["package"] in reached and reached[facts["package"]]["path"][0] == demo.source
    assert {facts["pypi_token"], facts["bot_token"], facts["deploy_key"]} <= set(reached)

    plan = cli("plan", PLAYBOOK, "--node", demo.source, "--format", "json")
    steps = {s["node"]: s for s in plan.json()["steps"]}
    assert steps[facts["bot_token"]]["verb"] == "revoke" and steps[facts["bot_token"]]["reversible"] is False
    assert steps[facts["deploy_key"]]["verb"] == "rotate"
    pypi = steps[facts["pypi_token"]]
    assert pypi["verb"] == "manual" and "https://pypi.org/manage/account/#api-tokens" in pypi["reason"]
    old_key = int(facts["deploy_key"].rsplit("/", 1)[1])

    unapproved = cli("run", PLAYBOOK, "--node", demo.source, "--incident", "gh1", "--execute")
    assert unapproved.returncode != 0 and gh.token_live(demo.env[github_demo.LEAKED_ENV])  # final steps want --approve
    run = cli("run", PLAYBOOK, "--node", demo.source, "--incident", "gh1", "--execute", "--approve")
    assert run.returncode in (0, 1), run.stderr
    # the double's state is the judge: the bot token is dead, the old deploy key gone, and the
    # Actions secret holds the private half of the new key (opened with the lab's private half)
    assert not gh.token_live(demo.env[github_demo.LEAKED_ENV])
    keys = gh.state.repos[full].deploy_keys
    assert old_key not in keys and len(keys) == 1
    new_key = next(iter(keys.values()))
    stored = serialization.load_ssh_private_key(gh.secret_value(full, "DEPLOY_SSH_KEY").encode(), None)
    public = stored.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert new_key.key == public.decode() and new_key.read_only is False

    verify = cli("verify", "--incident", "gh1", "--format", "json")
    assert verify.returncode == 1
    reasons = " ".join(verify.json()["reasons"])
    assert facts["pypi_token"] in reasons  # the manual task stays open until attested
    # the unpinned action can still read DEPLOY_SSH_KEY, which now holds the new key: not clean
    assert f"{full}/{new_key.id}" in reasons

    # pin the action to a commit and remove the PyPI token by hand: then the incident is clean
    gh.add_workflow(full, "release.yml", github_demo.RELEASE_WORKFLOW.replace(
        "scanner-org/scan-action@v0.28.0", "scanner-org/scan-action@" + "c" * 40))
    assert cli("attest", "--incident", "gh1", facts["pypi_token"], "--note", "removed on pypi.org").returncode == 0
    clean = cli("verify", "--incident", "gh1", "--format", "json")
    assert clean.returncode == 0, clean.json()["reasons"]
    report = cli("report", "--incident", "gh1", "--format", "json")
    assert report.returncode == 0, report.stderr
    # the PyPI task names the page and the token, and recommends Trusted Publishing
    task = next(m for m in report.json()["manual"] if m["node"] == facts["pypi_token"])
    assert "https://pypi.org/manage/account/#api-tokens" in task["reason"] and "Trusted Publishing" in task["reason"]

    # nothing secret reached the store, the journal or the outputs
    everything = b"".join(p.read_bytes() for p in cwd.rglob("*") if p.is_file())
    everything += (radius.stdout + plan.stdout + run.stdout + run.stderr + verify.stdout + report.stdout).encode()
    for value in (demo.env[github_demo.LEAKED_ENV], demo.env[github_demo.PYPI_ENV], demo.env[github_demo.ADMIN_ENV]):
        assert value.encode() not in everything
    private_body = gh.secret_value(full, "DEPLOY_SSH_KEY").splitlines()[1]  # the new key's first base64 line
    assert private_body.encode() not in everything
