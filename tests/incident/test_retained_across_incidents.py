"""Incidents do not undo each other: a key an open incident retains is deleted only when the new
plan names it (which incident, why) and --approve accepts it, and the keeper's journal says so.
Judged by IAM's own key list."""

from __future__ import annotations

import json

import boto3

from tests.incident.incident_testlib import manual_tasks


def _keys(lb, user: str) -> dict[str, str]:
    iam = boto3.client("iam", endpoint_url=lb.aws_endpoint, region_name="us-east-1")
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def test_deleting_a_key_another_open_incident_retains_is_named_approved_and_journaled(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    leaked = lb.seeds["runner_key"].split(":")[-1]
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    # day one: the key leaks and is rotated; the old one stays Inactive, retained by i1 until finalize
    day1 = revoke_cli("run", "leaked-aws-key", "--node", f"aws:access_key:{leaked}", "--incident", "i1", "--execute",
                      cwd=lb.directory)
    assert day1.returncode == 0, day1.stdout + day1.stderr
    (first,) = [k for k, s in _keys(lb, "ci-deployer").items() if s == "Active"]
    assert _keys(lb, "ci-deployer")[leaked] == "Inactive"

    # day two: the replacement leaks too; ci-deployer is at AWS's two-key limit
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    plan = revoke_cli("plan", "leaked-aws-key", "--node", f"aws:access_key:{first}", "--format", "json",
                      cwd=lb.directory)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    step = next(s for s in plan.json()["steps"] if s["node"] == f"aws:access_key:{first}")
    assert step["reversible"] is False
    assert [(r["node"], r["incident"], r["step"]) for r in step["retained"]] == [
        (f"aws:access_key:{leaked}", "i1", f"rotate:aws:access_key:{leaked}")]
    assert "retained by open incident i1" in step["irreversible"] and "retired" in step["retained"][0]["why"]

    refused = revoke_cli("run", "leaked-aws-key", "--node", f"aws:access_key:{first}", "--incident", "i2", "--execute",
                         cwd=lb.directory)
    assert refused.returncode == 2 and "retained by open incident i1" in refused.stderr, refused.stderr
    assert _keys(lb, "ci-deployer") == {leaked: "Inactive", first: "Active"}

    day2 = revoke_cli("run", "leaked-aws-key", "--node", f"aws:access_key:{first}", "--incident", "i2", "--execute",
                      "--approve", cwd=lb.directory)
    assert day2.returncode == 0, day2.stdout + day2.stderr
    after = _keys(lb, "ci-deployer")
    assert leaked not in after and after[first] == "Inactive"
    # i1's journal holds what happened to its key, once, even when i2 is resumed
    again = revoke_cli("run", "leaked-aws-key", "--incident", "i2", "--execute", "--approve", cwd=lb.directory)
    assert again.returncode == 0, again.stdout + again.stderr
    journal = revoke_cli("report", "--incident", "i1", "--format", "json", cwd=lb.directory).json()
    told = [r for r in journal["journal"]["chain"] if r["type"] == "retained.deleted"]
    assert [r["node"] for r in told] == [f"aws:access_key:{leaked}"], told
    tasks = manual_tasks(lb, "i1")
    if tasks:
        assert revoke_cli("attest", "--incident", "i1", *tasks, "--note", "done", cwd=lb.directory).returncode == 0
    v = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    body = v.json()
    (note,) = body["notes"]
    assert note.startswith(f"aws:access_key:{leaked} was deleted by incident i2 (its step rotate:aws:access_key:{first})")
    assert v.returncode == 0, body["reasons"]
    text = revoke_cli("verify", "--incident", "i1", cwd=lb.directory)
    assert f"note: {note}" in text.stdout
    report = revoke_cli("report", "--incident", "i1", "--format", "json", cwd=lb.directory).json()
    assert report["verification"]["last"]["notes"] == [note]
    md = revoke_cli("report", "--incident", "i1", "--format", "md", cwd=lb.directory).stdout
    assert "deleted by incident i2" in md
    # i2's own journal does not tell itself
    assert "retained.deleted" not in json.dumps(revoke_cli("report", "--incident", "i2", "--format", "json",
                                                           cwd=lb.directory).json()["journal"]["chain"])
