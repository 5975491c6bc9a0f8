"""`revoke permissions` names what the configured escrow needs, from the escrow connector's
declaration: a Secrets Manager prefix (text and JSON), and a Vault KV path checked against a real
OpenBao with a token holding exactly the printed policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examples.lab.vault_lab import OpenBaoServer
from revoke.connector import ActionContext, Replacement, Secret
from revoke.model import NodeKind

AWS_CONFIG = """connectors:
  - type: aws
    region: eu-west-1
escrow: {type: aws, prefix: revoke/escrow/}
"""


def test_an_aws_escrow_gets_its_own_statement_on_its_prefix(revoke_cli, tmp_path: Path) -> None:
    (tmp_path / "revoke.yaml").write_text(AWS_CONFIG)
    res = revoke_cli("permissions", "--playbook", "compromised-ci-supply-chain", "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    arn = "arn:aws:secretsmanager:eu-west-1:*:secret:revoke/escrow/*"
    assert report["escrow"]["resource"] == arn and report["escrow"]["connector"] == "aws"
    statement = next(s for s in report["aws"]["iam_policy"]["Statement"] if s["Sid"] == "RevokeEscrow")
    assert statement == {"Sid": "RevokeEscrow", "Effect": "Allow", "Resource": arn, "Action": [
        "secretsmanager:CreateSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]}
    text = revoke_cli("permissions", "--playbook", "compromised-ci-supply-chain", cwd=tmp_path)
    assert text.returncode == 0 and "## Escrow: aws:secretsmanager:revoke/escrow/*" in text.stdout
    assert f"secretsmanager:PutSecretValue on {arn}" in text.stdout
    # a playbook that makes no replacement escrows nothing, and asks for nothing of it
    none = json.loads(revoke_cli("permissions", "--playbook", "leaked-aws-key", "--format", "json",
                                 cwd=tmp_path).stdout)
    assert ("escrow" in none) == any(v in json.dumps(none["connectors"]) for v in ('"rotate"', '"reissue"'))


@pytest.fixture
def bao():
    with OpenBaoServer() as server:
        yield server


def test_a_token_with_exactly_the_printed_vault_policy_writes_and_reads_the_escrow(
        revoke_cli, bao: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from revoke.connector import connector_class

    (tmp_path / "revoke.yaml").write_text(f"""connectors:
  - type: vault
    url: {bao.url}
    token_env: REVOKE_PERMS_TOKEN
escrow: {{type: vault, path: secret/revoke-escrow}}
""")
    res = revoke_cli("permissions", "--playbook", "compromised-ci-supply-chain", "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert "create,update,read secret/data/revoke-escrow/*" in report["escrow"]["permissions"]
    assert 'path "secret/data/revoke-escrow/*"' in report["vault"]["policy_hcl"]
    root = bao.client()
    root.sys.create_or_update_policy("revoke-exact", report["vault"]["policy_hcl"])
    token = root.auth.token.create(policies=["revoke-exact"], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("REVOKE_PERMS_TOKEN", token)
    conn = connector_class("vault")({"url": bao.url, "token_env": "REVOKE_PERMS_TOKEN"})
    ctx = ActionContext(incident="perms", dry_run=False)
    reps = {f"m{i}": Replacement(f"aws:iot_certificate:{i:064x}", f"aws:iot_certificate:{i + 9:064x}",
                                 NodeKind.CERTIFICATE, Secret({"certificate_pem": f"c{i}", "private_key_pem": f"k{i}"}))
            for i in range(3)}
    item = "fleet-certificates-0000"
    assert conn.escrow_put_many("secret/revoke-escrow", item, reps, ctx).changed
    one = Replacement("aws:access_key:AKIAOLD", "aws:access_key:AKIANEW", NodeKind.ACCESS_KEY,
                      Secret({"access_key_id": "AKIANEW", "secret_access_key": "s" * 40}))
    assert conn.escrow_put("secret/revoke-escrow", "aws-access_key-AKIAOLD", one, ctx).changed
    # read back with a fresh connector (no cache): the token may read what it wrote
    again = connector_class("vault")({"url": bao.url, "token_env": "REVOKE_PERMS_TOKEN"})
    assert {r.new_id for r in reps.values()} <= again.escrow_holds("secret/revoke-escrow", item)
    assert "aws:access_key:AKIANEW" in again.escrow_holds("secret/revoke-escrow", "aws-access_key-AKIAOLD")
