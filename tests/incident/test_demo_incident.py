"""The seed incident end to end through the CLI, judged by the providers' own state."""

from __future__ import annotations

import json

import boto3
import hvac

from examples.lab.demo import RUNNER, VAULT_TOKEN_ENV

PLAYBOOK = "compromised-ci-supply-chain"


def _iam(lb):
    return boto3.client("iam", endpoint_url=lb.aws_endpoint, region_name="us-east-1")


def _keys(lb, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in _iam(lb).list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _db_password(lb) -> str:
    """The node id of the demo's database password: a Postgres role's (host/username/password in
    `secret/ci/db`), one id per password value."""
    import os

    from connectors.postgres.ids import password_id
    from revoke.model import fingerprint

    vault = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    value = vault.secrets.kv.v2.read_secret_version(path="ci/db", raise_on_deleted_version=True)["data"]["data"]
    return password_id("db.internal:5432", value["username"], fingerprint(value["password"]))


def test_demo_incident_end_to_end(revoke_cli, demo_lab) -> None:
    import os

    lb = demo_lab
    db_pw = _db_password(lb)
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    radius = json.loads(revoke_cli("blast-radius", RUNNER, "--format", "json", cwd=lb.directory).stdout)
    creds = {c["id"] for c in radius["credentials"]}
    runner_key = lb.seeds["runner_key"]
    assert runner_key in creds and lb.seeds["runner_token"] in creds and lb.seeds["gcp_key"] in creds
    assert db_pw in creds

    dry = revoke_cli("run", PLAYBOOK, "--node", RUNNER, "--incident", "i1", cwd=lb.directory)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    before = {u: _keys(lb, u) for u in ("ci-deployer", "app-backend", "data-pipeline")}
    assert all(s == "Active" for keys in before.values() for s in keys.values())

    run = revoke_cli("run", PLAYBOOK, "--node", RUNNER, "--incident", "i1", "--execute", "--approve", cwd=lb.directory)
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

    # the password, the runner's re-provisioning with its key's replacement (from the escrow) and
    # each device's new certificate are manual tasks: verify fails until they are attested
    v1 = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert v1.returncode == 1
    body = json.loads(v1.stdout)
    things = [f"aws:iot_thing:{t}" for t in lb.seeds["aws"]["things"]]
    assert sorted(m["node"] for m in body["open_manual"]) == sorted(
        [runner_key, db_pw, *things])
    # the open manual tasks are what keep verify unclean: nothing live is left reachable
    assert body["survivors"] == []
    att = revoke_cli("attest", "--incident", "i1", db_pw, "--note", "DBA rotated it",
                     cwd=lb.directory)
    assert att.returncode == 0, att.stderr
    att = revoke_cli("attest", "--incident", "i1", runner_key, *things, "--note", "delivered from the escrow",
                     cwd=lb.directory)
    assert att.returncode == 0 and att.stdout.count("attested ") == 1 + len(things), att.stdout + att.stderr
    v2 = revoke_cli("verify", "--incident", "i1", "--format", "json", cwd=lb.directory)
    assert v2.returncode == 0, v2.stdout
    assert json.loads(v2.stdout)["clean"] is True

    # the report holds every section and none of the secret values the providers hold
    canaries = [os.environ[VAULT_TOKEN_ENV], stored["aws_secret_access_key"]]
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
    again = revoke_cli("run", PLAYBOOK, "--node", RUNNER, "--incident", "i1", "--execute", cwd=lb.directory)
    assert again.returncode == 0 and " 0 actions done" in again.stdout
    assert {u: _keys(lb, u) for u in before} == after
