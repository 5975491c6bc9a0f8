"""The seed incident end to end through the CLI, from the scanner action's moved tag, judged by the
providers' own state: moto's IAM, OpenBao, the GitHub double's secrets and tokens, real Postgres logins."""

from __future__ import annotations

import json

import boto3
import hvac

from examples.lab import github_demo
from examples.lab.demo import RUNNER, VAULT_TOKEN_ENV
from tests.postgres.pg_testlib import can_login

PLAYBOOK = "compromised-ci-supply-chain"


def _iam(lb):
    return boto3.client("iam", endpoint_url=lb.aws_endpoint, region_name="us-east-1")


def _keys(lb, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in _iam(lb).list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _db_secret(lb) -> dict[str, str]:
    import os

    vault = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    return vault.secrets.kv.v2.read_secret_version(path="ci/db", raise_on_deleted_version=True)["data"]["data"]


def _db_password(lb) -> str:
    """The node id of the demo's database password: a Postgres role's (host/username/password in
    `secret/ci/db`), one id per password value."""
    from connectors.postgres.ids import password_id
    from revoke.model import fingerprint

    value = _db_secret(lb)
    return password_id("db.internal:5432", value["username"], fingerprint(value["password"]))


def test_demo_incident_end_to_end(revoke_cli, demo_lab) -> None:
    import os

    lb = demo_lab
    source, gh, facts = lb.seeds["source"], lb.github, lb.seeds["github"]
    db_pw, old_db = _db_password(lb), _db_secret(lb)["password"]
    assert can_login(lb.postgres, "ci", old_db)
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    radius = json.loads(revoke_cli("blast-radius", source, "--format", "json", cwd=lb.directory).stdout)
    reached = {c["id"]: c for c in radius["credentials"]}
    runner_key = lb.seeds["runner_key"]
    # the moved tag reaches the job's secrets and, through the runner the job runs on, the whole chain
    assert {runner_key, lb.seeds["runner_token"], lb.seeds["gcp_key"], db_pw, facts["pypi_token"],
            facts["bot_token"], facts["deploy_key"]} <= set(reached)
    assert RUNNER in reached[lb.seeds["runner_token"]]["path"]

    dry = revoke_cli("run", PLAYBOOK, "--node", source, "--incident", "i1", cwd=lb.directory)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    before = {u: _keys(lb, u) for u in ("ci-deployer", "app-backend", "data-pipeline")}
    assert all(s == "Active" for keys in before.values() for s in keys.values())

    run = revoke_cli("run", PLAYBOOK, "--node", source, "--incident", "i1", "--execute", "--approve", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    after = {u: _keys(lb, u) for u in before}
    # every reachable AWS key is disabled and replaced by exactly one new key
    assert after["ci-deployer"][runner_key.split(":")[-1]] == "Inactive"
    assert len([k for k, s in after["ci-deployer"].items() if s == "Active"]) == 1
    app_old = next(iter(before["app-backend"]))
    app_new = [k for k in after["app-backend"] if k != app_old]
    assert after["app-backend"][app_old] == "Inactive" and len(app_new) == 1

    # the replacement landed in the Vault KV secret that held the old key, other fields kept
    vault = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    stored = vault.secrets.kv.v2.read_secret_version(path="ci/aws-app", raise_on_deleted_version=True)["data"]["data"]
    assert app_new[0] in json.dumps(stored) and app_old not in json.dumps(stored)
    # the runner's token and its child are revoked
    lookup = vault.adapter.post("/v1/auth/token/lookup-accessor",
                                json={"accessor": lb.seeds["runner_token"].split(":")[-1]}, raise_exception=False)
    assert lookup.status_code == 400

    # the database password is rotated: the Vault secret holds a new one, which logs in as `ci`; the old one no longer does
    new_db = _db_secret(lb)["password"]
    assert new_db != old_db and can_login(lb.postgres, "ci", new_db) and not can_login(lb.postgres, "ci", old_db)
    # the job's AWS_DEPLOY_KEY holds the app key's replacement too, in the shape it held the old one in
    assert gh.secret_value(facts["repo"], "AWS_DEPLOY_KEY").startswith(f"{app_new[0]}:")
    # the bot's token (an Actions secret) and the CI token found in Vault are both revoked
    held = vault.secrets.kv.v2.read_secret_version(path="ci/github", raise_on_deleted_version=True)["data"]["data"]
    assert facts["vault_token"] in reached and os.environ[github_demo.LEAKED_ENV].split() == [
        gh.secret_value(facts["repo"], "RELEASE_BOT_TOKEN"), held["token"]]
    assert not any(gh.token_live(v) for v in os.environ[github_demo.LEAKED_ENV].split())

    # the PyPI token, the runner's re-provisioning with its key's replacement (the runner is not a
    # source: the task is on the host, naming the escrow) and each device's new
    # certificate are manual tasks: verify fails until they are attested
    v1 = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert v1.returncode == 1
    body = json.loads(v1.stdout)
    things = [f"aws:iot_thing:{t}" for t in lb.seeds["aws"]["things"]]
    assert sorted(m["node"] for m in body["open_manual"]) == sorted([RUNNER, facts["pypi_token"], *things])
    # the moved tag still reads the replacements written back into the job's secrets
    assert f"aws:access_key:{app_new[0]}" in {s["node"] for s in body["survivors"]}
    # pinned to a commit, the action reads nothing: the open manual tasks are all that is left
    github_demo.pin_action(gh)
    v1 = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert json.loads(v1.stdout)["survivors"] == [], v1.stdout
    att = revoke_cli("attest", "--incident", "i1", facts["pypi_token"], "--note", "removed on pypi.org",
                     cwd=lb.directory)
    assert att.returncode == 0, att.stderr
    att = revoke_cli("attest", "--incident", "i1", RUNNER, *things, "--note", "delivered from the escrow",
                     cwd=lb.directory)
    assert att.returncode == 0 and att.stdout.count("attested ") == 1 + len(things), att.stdout + att.stderr
    v2 = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert v2.returncode == 0, v2.stdout
    assert json.loads(v2.stdout)["clean"] is True

    # the report holds every section and none of the secret values the providers hold
    canaries = [os.environ[VAULT_TOKEN_ENV], stored["aws_secret_access_key"], old_db, new_db,
                *(os.environ[v] for v in (github_demo.PYPI_ENV, github_demo.ADMIN_ENV)),
                *os.environ[github_demo.LEAKED_ENV].split(),
                gh.secret_value(facts["repo"], "AWS_DEPLOY_KEY").split(":", 1)[1]]
    for path in ("ci/gcp-deployer", "ci/db"):
        canaries += [v for v in vault.secrets.kv.v2.read_secret_version(
            path=path, raise_on_deleted_version=True)["data"]["data"].values() if len(str(v)) > 12]
    for fmt in ("md", "json", "html"):
        rep = revoke_cli("report", "--incident", "i1", "--format", fmt, cwd=lb.directory)
        assert rep.returncode == 0, rep.stderr
        assert not [c for c in canaries if str(c) in rep.stdout], fmt
    md = revoke_cli("report", "--incident", "i1", "--format", "md", cwd=lb.directory).stdout
    for section in ("Timeline", "Blast radius", "Rotated", "Manual", "Verification", "chain"):
        assert section.lower() in md.lower(), section
    db = (lb.directory / ".revoke" / "revoke.db").read_bytes()
    assert not [c for c in canaries if str(c).encode() in db]

    # resuming a finished incident does nothing twice
    again = revoke_cli("run", PLAYBOOK, "--node", source, "--incident", "i1", "--execute", cwd=lb.directory)
    assert again.returncode == 0 and " 0 actions done" in again.stdout
    assert {u: _keys(lb, u) for u in before} == after
