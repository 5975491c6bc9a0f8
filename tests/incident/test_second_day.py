"""Day two: follow-up incidents and collections after credentials died or vanished, judged by provider state."""

from __future__ import annotations

import json

import boto3
import yaml

from examples.lab.demo import RUNNER


def _iam(lb):
    return boto3.client("iam", endpoint_url=lb.aws_endpoint, region_name="us-east-1")


def _keys(lb, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in _iam(lb).list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _steps(res) -> dict[str, dict]:
    assert res.returncode == 0, res.stdout + res.stderr
    return {s["node"]: s for s in json.loads(res.stdout)["steps"]}


def test_a_follow_up_incident_never_acts_on_a_key_an_earlier_one_contained(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    runner_key = lb.seeds["runner_key"]
    key_id = runner_key.split(":")[-1]
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    # day one: the leaked key is rotated; the old one stays Inactive until finalize
    day1 = revoke_cli("run", "leaked-aws-key", "--node", runner_key, "--incident", "day1", "--execute", cwd=lb.directory)
    assert day1.returncode == 0, day1.stdout + day1.stderr
    after_day1 = _keys(lb, "ci-deployer")
    assert after_day1[key_id] == "Inactive"

    # day two: the runner itself is found compromised
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    radius = json.loads(revoke_cli("blast-radius", RUNNER, "--format", "json", cwd=lb.directory).stdout)
    entry = next(c for c in radius["credentials"] if c["id"] == runner_key)
    assert entry["live"] is False and entry["status"] == "inactive"
    steps = _steps(revoke_cli("plan", "compromised-ci-supply-chain", "--node", RUNNER, "--format", "json", cwd=lb.directory))
    assert steps[runner_key]["verb"] == "already_dead"
    day2 = revoke_cli("run", "compromised-ci-supply-chain", "--node", RUNNER, "--incident", "day2", "--execute",
                      "--approve", cwd=lb.directory)
    assert day2.returncode == 0, day2.stdout + day2.stderr
    # nothing deleted, no new key minted for a credential that was already contained
    assert _keys(lb, "ci-deployer") == after_day1


def test_a_credential_that_vanished_becomes_a_tombstone(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    runner_key = lb.seeds["runner_key"]
    key_id = runner_key.split(":")[-1]
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    # the key is deleted at the provider (a finalize, an admin); the inventory still names it
    _iam(lb).update_access_key(UserName="ci-deployer", AccessKeyId=key_id, Status="Inactive")
    _iam(lb).delete_access_key(UserName="ci-deployer", AccessKeyId=key_id)
    res = revoke_cli("collect", cwd=lb.directory)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "inventory.yaml" in res.stdout + res.stderr and runner_key in res.stdout + res.stderr
    radius = json.loads(revoke_cli("blast-radius", RUNNER, "--format", "json", cwd=lb.directory).stdout)
    entry = next(c for c in radius["credentials"] if c["id"] == runner_key)
    assert entry["live"] is False and entry["status"] == "deleted"
    # a tombstone is no live weakness
    sweep = revoke_cli("sweep", "--format", "json", cwd=lb.directory)
    assert runner_key not in sweep.stdout
    # day two still plans and verifies
    steps = _steps(revoke_cli("plan", "compromised-ci-supply-chain", "--node", RUNNER, "--format", "json", cwd=lb.directory))
    assert steps[runner_key]["verb"] == "already_dead"
    # a name that never existed anywhere is still an input error with its line
    inv = yaml.safe_load((lb.directory / "inventory.yaml").read_text())
    inv["edges"].append({"from": RUNNER, "to": "aws:access_key:AKIANEVEREXISTED0000", "rel": "stores"})
    (lb.directory / "inventory.yaml").write_text(yaml.safe_dump(inv, sort_keys=False))
    bad = revoke_cli("collect", cwd=lb.directory)
    assert bad.returncode == 2 and "unknown node 'aws:access_key:AKIANEVEREXISTED0000'" in bad.stderr
