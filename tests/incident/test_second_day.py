"""Day two: follow-up incidents and collections after credentials died or vanished, judged by provider state."""

from __future__ import annotations

import json

import boto3
import yaml

from examples.lab.demo import RUNNER
from tests.incident.incident_testlib import manual_tasks


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


def _clean_demo_incident(lb, revoke_cli, incident: str = "i1") -> None:
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    run = revoke_cli("run", "compromised-ci-supply-chain", "--node", RUNNER, "--incident", incident, "--execute",
                     "--approve", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    att = revoke_cli("attest", "--incident", incident, *manual_tasks(lb, incident), "--note", "done by hand",
                     cwd=lb.directory)
    assert att.returncode == 0, att.stderr
    v = revoke_cli("verify", "--incident", incident, "--format", "json", cwd=lb.directory)
    assert v.returncode == 0 and v.json()["reasons"] == [], v.stdout


def test_verify_reads_back_every_action_and_names_why(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    _clean_demo_incident(lb, revoke_cli)
    # the deploy role's session cutoff goes, out of band: verify reads the role's policy back
    roles = _iam(lb).list_roles()["Roles"]
    cut = [r["RoleName"] for r in roles
           if "AWSRevokeOlderSessions" in _iam(lb).list_role_policies(RoleName=r["RoleName"])["PolicyNames"]]
    assert cut
    _iam(lb).delete_role_policy(RoleName=cut[0], PolicyName="AWSRevokeOlderSessions")
    v = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert v.returncode == 1
    body = v.json()
    assert body["clean"] is False
    assert [r for r in body["reasons"] if cut[0] in r and "AWSRevokeOlderSessions" in r], body["reasons"]
    text = revoke_cli("verify", "--incident", "i1", cwd=lb.directory)
    assert text.returncode == 1
    # one list of reasons: the text, the JSON, the report and the statement say the same
    reasons = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory).json()["reasons"]
    assert [f"  - {r}" for r in reasons] == text.stdout.splitlines()[-len(reasons):]
    report = revoke_cli("report", "--incident", "i1", "--format", "json", cwd=lb.directory).json()
    statement = report["verification"]["statement"]
    assert statement.startswith("NOT clean") and all(r in statement for r in reasons)


def test_a_credential_re_enabled_out_of_band_is_contained_again(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    _clean_demo_incident(lb, revoke_cli)
    old = next(k for k, s in _keys(lb, "app-backend").items() if s == "Inactive")
    _iam(lb).update_access_key(UserName="app-backend", AccessKeyId=old, Status="Active")
    before = _keys(lb, "app-backend")
    v = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert v.returncode == 1
    assert v.json()["drifted"] == [f"rotate:aws:access_key:{old}"]
    again = revoke_cli("run", "compromised-ci-supply-chain", "--node", RUNNER, "--incident", "i1", "--execute",
                       cwd=lb.directory)
    assert again.returncode == 0, again.stdout + again.stderr
    assert " 1 actions done" in again.stdout
    # contained again, and nothing else: no new key, the replacement untouched
    assert _keys(lb, "app-backend") == {**before, old: "Inactive"}
    v = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert v.returncode == 0, v.json()["reasons"]


def test_a_later_rotation_of_the_same_lineage_keeps_the_first_incident_clean(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    _clean_demo_incident(lb, revoke_cli)
    first = next(k for k, s in _keys(lb, "app-backend").items() if s == "Active")
    # the replacement leaks in its turn: a second incident rotates it and rewrites the same KV secret
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    # app-backend now holds the first incident's Inactive key and its replacement: making room
    # deletes the Inactive one, which the plan names and --approve accepts
    run = revoke_cli("run", "leaked-aws-key", "--node", f"aws:access_key:{first}", "--incident", "i2", "--execute",
                     "--approve", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    second = next(k for k, s in _keys(lb, "app-backend").items() if s == "Active")
    assert second != first
    v = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert v.returncode == 0, v.json()["reasons"]


def test_the_shipped_hygiene_pair_rotates_a_key_unused_for_90_days(demo_lab, revoke_cli) -> None:
    from datetime import UTC, datetime, timedelta

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import AccessKeyLastUsed, iam_backends

    lb = demo_lab
    (stale,) = _keys(lb, "app-backend")
    # the lab's moto runs in this process: age the key as a real account would have it
    key = next(k for k in iam_backends[DEFAULT_ACCOUNT_ID]["global"].users["app-backend"].access_keys
               if k.access_key_id == stale)
    key.create_date = datetime.now(UTC) - timedelta(days=400)
    key.last_used = AccessKeyLastUsed(datetime.now(UTC) - timedelta(days=120), "s3", "us-east-1")
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    # the sweep also hands over AppRole secret-ids, whose destruction cannot be undone: --approve
    run = revoke_cli("run", "hygiene-rotate", "--from-sweep", "--incident", "h1", "--execute", "--approve",
                     cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    after = _keys(lb, "app-backend")
    assert after[stale] == "Inactive" and len([k for k, s in after.items() if s == "Active"]) == 1
    # --rules and --min-severity choose what the sweep hands over
    strict = revoke_cli("run", "hygiene-rotate", "--from-sweep", "--min-severity", "critical", "--incident", "h2",
                        cwd=lb.directory)
    assert strict.error_line() == "error: --from-sweep: no finding at or above critical names a credential to act on"
    bad = revoke_cli("run", "hygiene-rotate", "--node", f"aws:access_key:{stale}", "--rules", "x.yaml",
                     "--incident", "h3", cwd=lb.directory)
    assert bad.error_line() == "error: --rules is for --from-sweep (the sweep that picks the nodes)"
