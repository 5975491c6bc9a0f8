"""An AWS key held in an Actions secret is rotated by the AWS connector and written back into the
secret by the GitHub connector (sealed box): judged by moto's IAM state and the double's secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from examples.lab import github_demo
from examples.lab.aws_lab import MotoServer, lab_client
from examples.lab.github_double import GithubDouble

PLAYBOOK = "compromised-ci-supply-chain"


def test_aws_key_in_an_actions_secret_is_rotated_and_written_back(tmp_path: Path,
                                                                  revoke_cli: Callable[..., Any]) -> None:
    with MotoServer() as aws, GithubDouble() as gh:
        iam = lab_client("iam", aws.endpoint_url)
        iam.create_user(UserName="release-deployer")
        old = iam.create_access_key(UserName="release-deployer")["AccessKey"]
        demo = github_demo.seed(gh, aws_key_id=old["AccessKeyId"], aws_secret=old["SecretAccessKey"])
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"nodes": [], "edges": demo.inventory_edges}))
        (tmp_path / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [
            {"type": "inventory", "path": "inventory.yaml"}, demo.config,
            {"type": "aws", "endpoint_url": aws.endpoint_url, "region": "us-east-1"}]}))
        env = {**aws.env, **demo.env}

        def cli(*args: str) -> Any:
            return revoke_cli(*args, cwd=tmp_path, env=env)

        assert cli("collect").returncode == 0
        plan = {s["node"]: s for s in cli("plan", PLAYBOOK, "--node", demo.source, "--format", "json").json()["steps"]}
        assert plan[f"aws:access_key:{old['AccessKeyId']}"]["verb"] == "rotate"
        run = cli("run", PLAYBOOK, "--node", demo.source, "--incident", "gh-aws", "--execute", "--approve")
        assert run.returncode in (0, 1), run.stderr
        keys = {k["AccessKeyId"]: k["Status"] for k in
                iam.list_access_keys(UserName="release-deployer")["AccessKeyMetadata"]}
        assert keys[old["AccessKeyId"]] == "Inactive"
        (new_id,) = [k for k, status in keys.items() if status == "Active"]
        # the secret now holds the new pair, in the shape it held the old one in
        held = gh.secret_value(demo.facts["repo"], "AWS_DEPLOY_KEY")
        assert held.startswith(f"{new_id}:") and held != f"{old['AccessKeyId']}:{old['SecretAccessKey']}"
        stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()) + run.stdout.encode()
        for value in (old["SecretAccessKey"], held.split(":", 1)[1]):  # neither secret half is kept anywhere
            assert value.encode() not in stored
