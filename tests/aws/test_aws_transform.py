"""The pure half of AWS collection on a recorded payload: exact nodes, edges and findings, no
server. And the package boundary: importing the connector class loads no AWS SDK."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from connectors.aws.collect import AccountData
from connectors.aws.transform import collected

ACCT = "111122223333"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
BOB = f"arn:aws:iam::{ACCT}:user/bob"
DEPLOY = f"arn:aws:iam::{ACCT}:role/deploy"
SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCT}:secret:prod/db-AbCdEf"
CERT_ARN = f"arn:aws:iot:eu-west-1:{ACCT}:cert/c1"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def allow(*actions: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}


RECORDED = AccountData(
    account_id=ACCT,
    region="eu-west-1",
    users=[
        {"UserName": "alice", "Arn": ALICE, "UserId": "AIDAALICE", "CreateDate": WHEN, "GroupList": ["admins"],
         "UserPolicyList": [], "AttachedManagedPolicies": []},
        {"UserName": "bob", "Arn": BOB, "UserId": "AIDABOB", "GroupList": [],
         "AttachedManagedPolicies": [{"PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]},
    ],
    groups=[{"GroupName": "admins", "GroupPolicyList": [
        {"PolicyName": "mint", "PolicyDocument": allow("iam:CreateAccessKey", "sts:AssumeRole")}]}],
    roles=[{"RoleName": "deploy", "Arn": DEPLOY, "RoleId": "AROADEPLOY",
            "AssumeRolePolicyDocument": {"Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root", "Service": "lambda.amazonaws.com"}}]},
            "RolePolicyList": [{"PolicyName": "read", "PolicyDocument": allow("secretsmanager:GetSecretValue")}]}],
    keys={"alice": [{"AccessKeyId": "AKIAALICE", "Status": "Active", "CreateDate": WHEN, "LastUsedDate": None}],
          "bob": [{"AccessKeyId": "AKIABOB", "Status": "Inactive", "CreateDate": WHEN}]},
    secrets=[{"arn": SECRET, "name": "prod/db", "created": WHEN, "last_changed": WHEN, "kms_key": "",
              "fingerprint": "fp-of-value", "version_id": "v1", "found": [
                  {"kind": "access_key", "ref": "aws:access_key:AKIAALICE",
                   "fields": ["aws_access_key_id", "aws_secret_access_key"], "fingerprint": "fp-key"},
                  {"kind": "password", "ref": "", "fields": ["db_password"], "fingerprint": "fp-pw"}]}],
    iot={"cas": [{"certificateId": "ca1", "certificatePem": "", "status": "ACTIVE", "members": ["c1"]}],
         "certificates": [{"certificateId": "c1", "certificateArn": CERT_ARN, "status": "ACTIVE"}],
         "thing_principals": {"dev-1": [CERT_ARN]}, "policy_targets": {"telemetry": [CERT_ARN]},
         "ca_discovery": "list_ca_certificates"},
)


def test_recorded_account_gives_the_exact_graph() -> None:
    got = collected([RECORDED])
    pw = f"aws:password:{SECRET}#db_password"
    assert {(n.id, n.kind.value, n.status) for n in got.nodes} == {
        (f"aws:account:{ACCT}", "user", "active"), (f"aws:user:{ALICE}", "user", "active"), (f"aws:user:{BOB}", "user", "active"),
        (f"aws:role:{DEPLOY}", "role", "active"), ("aws:access_key:AKIAALICE", "access_key", "active"),
        ("aws:access_key:AKIABOB", "access_key", "inactive"), (f"aws:secret:{SECRET}", "secret", "active"),
        (pw, "password", "active"), ("aws:iot_ca:ca1", "ca", "active"), ("aws:iot_certificate:c1", "certificate", "active"),
        ("aws:iot_thing:dev-1", "workload", "active"), ("aws:iot_policy:telemetry", "policy", "active"),
        (f"aws:iot:{ACCT}/eu-west-1", "workload", "active"),
    }
    assert {e.key for e in got.edges} == {
        ("aws:access_key:AKIAALICE", "authenticates_as", f"aws:user:{ALICE}"),
        ("aws:access_key:AKIABOB", "authenticates_as", f"aws:user:{BOB}"),
        (f"aws:secret:{SECRET}", "stores", "aws:access_key:AKIAALICE"),
        (f"aws:secret:{SECRET}", "stores", pw),
        (f"aws:user:{ALICE}", "can_mint", f"aws:user:{BOB}"),  # never an edge to oneself
        (f"aws:account:{ACCT}", "can_assume", f"aws:role:{DEPLOY}"),
        (f"aws:user:{ALICE}", "can_assume", f"aws:role:{DEPLOY}"),  # the trust delegates to the account
        (f"aws:role:{DEPLOY}", "can_read", f"aws:secret:{SECRET}"),
        ("aws:iot_ca:ca1", "issued", "aws:iot_certificate:c1"),
        (f"aws:iot:{ACCT}/eu-west-1", "trusts", "aws:iot_ca:ca1"),  # a registered, active CA is trusted
        ("aws:iot_certificate:c1", "authenticates_as", "aws:iot_thing:dev-1"),
        ("aws:iot_certificate:c1", "authenticates_as", "aws:iot_policy:telemetry"),
    }
    nodes = {n.id: n for n in got.nodes}
    assert nodes[f"aws:role:{DEPLOY}"].attrs["trusted_services"] == ["lambda.amazonaws.com"]
    assert nodes["aws:access_key:AKIAALICE"].owner == f"aws:user:{ALICE}"
    assert nodes[pw].owner == f"aws:secret:{SECRET}" and nodes[pw].attrs["unmanaged"] is True
    edges = {e.key: e for e in got.edges}
    assert edges[("aws:iot_ca:ca1", "issued", "aws:iot_certificate:c1")].attrs == {"signature": "unchecked"}
    assert [(f.code, f.severity) for f in got.findings] == [("aws.iam.policy_unavailable", "warning")]
    assert "ReadOnlyAccess" in got.findings[0].message
    assert got.meta["accounts"] == [ACCT]


def test_importing_the_connector_loads_no_sdk() -> None:
    code = ("import sys; from revoke.connector import connector_class; cls = connector_class('aws'); "
            "cls.options_model.model_validate({'region': 'us-east-1'}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
