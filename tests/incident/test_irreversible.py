"""Irreversible steps are shown before and after: in the plan (table and JSON), as a reason for
--approve, in the report ("deleted"), and in the rollback dry run. Judged by IAM's own state."""

from __future__ import annotations

from typing import Any

import boto3

from tests.incident.provider_state import aws_keys, sm_secret

PLAYBOOK = "leaked-aws-key"


def _iam(lb: Any) -> Any:
    return boto3.client("iam", endpoint_url=lb.aws_endpoint, region_name="us-east-1")


def _step(revoke_cli: Any, lb: Any, node: str) -> dict[str, Any]:
    res = revoke_cli("plan", PLAYBOOK, "--node", node, "--format", "json", cwd=lb.directory)
    assert res.returncode == 0, res.stdout + res.stderr
    return next(s for s in res.json()["steps"] if s["id"] == f"rotate:{node}")


def test_a_rotation_at_the_two_key_limit_is_shown_needs_approval_and_is_reported_deleted(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    # data-pipeline has two Active keys; the one stored in prod/pipeline leaked
    leaked_id = sm_secret(lb, "prod/pipeline")["aws_access_key_id"]
    leaked = f"aws:access_key:{leaked_id}"
    step = _step(revoke_cli, lb, leaked)
    assert step["reversible"] is False
    assert "two-key limit with no Inactive key" in step["irreversible"] and "deleted before" in step["irreversible"]
    # below the limit, the same rotation can be undone
    assert _step(revoke_cli, lb, lb.seeds["runner_key"])["reversible"] is True

    table = revoke_cli("run", PLAYBOOK, "--node", leaked, "--incident", "pipe", cwd=lb.directory)
    assert table.returncode == 0 and "reversible" in table.stdout
    assert f"rotate:{leaked}: at AWS's two-key limit" in table.stdout and "needs --approve" in table.stdout

    before = aws_keys(lb)
    refused = revoke_cli("run", PLAYBOOK, "--node", leaked, "--incident", "pipe", "--execute", cwd=lb.directory)
    line = refused.error_line()
    assert "approval required" in line and f"rotate:{leaked}" in line and "--approve" in line
    assert aws_keys(lb) == before  # nothing changed

    run = revoke_cli("run", PLAYBOOK, "--node", leaked, "--incident", "pipe", "--execute", "--approve",
                     cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    after = aws_keys(lb)["data-pipeline"]
    assert leaked_id not in after and len(after) == 2  # deleted to make room, the other key untouched
    assert sm_secret(lb, "prod/pipeline")["aws_access_key_id"] in after

    md = revoke_cli("report", "--incident", "pipe", "--format", "md", cwd=lb.directory).stdout
    row = next(r for r in md.splitlines() if r.startswith(f"| `{leaked}`"))
    assert "deleted (to make room for its replacement; it cannot come back)" in row and "disable at" not in row
    report = revoke_cli("report", "--incident", "pipe", "--format", "json", cwd=lb.directory).json()
    assert report["rotated"][0]["deleted"] == leaked and report["rotated"][0]["reversible"] is False

    # the rollback dry run says, before anything runs, what it can undo and what it cannot
    dry = revoke_cli("rollback", "--incident", "pipe", cwd=lb.directory)
    assert dry.returncode == 0, dry.stderr
    can, _, cannot = dry.stdout.partition("cannot undo")
    assert leaked in cannot and "deleted it" in cannot and leaked not in can
    # only the user's minted sessions' cutoff can be lifted again
    assert "can undo 1 action(s)" in can and "aws:session_token:arn:aws:iam::123456789012:user/data-pipeline" in can
    assert aws_keys(lb)["data-pipeline"] == after


def test_the_plan_names_the_inactive_key_it_deletes(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    leaked_id = sm_secret(lb, "prod/pipeline")["aws_access_key_id"]
    other = next(k for k in aws_keys(lb)["data-pipeline"] if k != leaked_id)
    _iam(lb).update_access_key(UserName="data-pipeline", AccessKeyId=other, Status="Inactive")
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    step = _step(revoke_cli, lb, f"aws:access_key:{leaked_id}")
    assert step["reversible"] is False and f"the Inactive key aws:access_key:{other} is deleted" in step["irreversible"]


def test_a_reversible_plan_runs_without_approval_and_rolls_back(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    runner_key = lb.seeds["runner_key"]
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    run = revoke_cli("run", PLAYBOOK, "--node", runner_key, "--incident", "r", "--execute", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    dry = revoke_cli("rollback", "--incident", "r", cwd=lb.directory)
    assert dry.returncode == 0, dry.stderr
    can, _, cannot = dry.stdout.partition("cannot undo")
    assert f"\n  {runner_key}\n" in can and runner_key not in cannot
