"""Across accounts (two moto accounts; the second collected through `role_arn`, as c7n-org does):
an edge needs both the other account's trust or resource policy and an identity Allow at home;
an AWS managed key is not usable from another account. Edges that must and must not exist."""

from __future__ import annotations

import json
from typing import Any

import boto3
from authz_estate import ROOT, allow
from aws_testlib import ACCOUNT_ID, make_connector, policy

from examples.lab.aws_lab import lab_client

OTHER = "222233334444"
COLLECTOR = f"arn:aws:iam::{OTHER}:role/revoke-collector"


def other_client(server: Any, service: str) -> Any:
    creds = lab_client("sts", server.endpoint_url).assume_role(RoleArn=COLLECTOR, RoleSessionName="seed")["Credentials"]
    return boto3.client(service, endpoint_url=server.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def user(name: str, account: str = ACCOUNT_ID) -> str:
    return f"aws:user:arn:aws:iam::{account}:user/{name}"


def role(name: str, account: str = OTHER) -> str:
    return f"aws:role:arn:aws:iam::{account}:role/{name}"


def test_cross_account_edges(moto_server: Any) -> None:
    moto_server.reset()
    home = lab_client("iam", moto_server.endpoint_url)
    home.create_user(UserName="dev")
    home.put_user_policy(UserName="dev", PolicyName="p", PolicyDocument=policy(
        [allow("sts:AssumeRole"), allow("secretsmanager:GetSecretValue"), allow("kms:Decrypt")]))
    home.create_user(UserName="quiet")
    iam_b, sm_b, kms_b = (other_client(moto_server, s) for s in ("iam", "secretsmanager", "kms"))
    trust = lambda principal: policy([{"Effect": "Allow", "Principal": {"AWS": principal},  # noqa: E731
                                       "Action": "sts:AssumeRole"}])
    iam_b.create_role(RoleName="shared", AssumeRolePolicyDocument=trust(ROOT))
    iam_b.create_role(RoleName="named", AssumeRolePolicyDocument=trust(user("quiet")[9:]))
    key = kms_b.create_key(Policy=policy([
        {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{OTHER}:root", ROOT]}, "Action": "kms:*",
         "Resource": "*"}]))["KeyMetadata"]["KeyId"]
    admit_home = policy([{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "secretsmanager:GetSecretValue",
                          "Resource": "*"}])
    arns = {}
    for name, extra, resource_policy in (("aws-key", {}, admit_home), ("cmk", {"KmsKeyId": key}, admit_home),
                                         ("no-policy", {"KmsKeyId": key}, None)):
        arns[name] = sm_b.create_secret(Name=name, SecretString=json.dumps({"v": name}), **extra)["ARN"]
        if resource_policy:
            sm_b.put_resource_policy(SecretId=arns[name], ResourcePolicy=resource_policy)
    got = make_connector(moto_server, accounts=[{}, {"role_arn": COLLECTOR}]).collect()
    assert got.meta["accounts"] == [ACCOUNT_ID, OTHER]
    edges = {e.key for e in got.edges}
    secret = lambda name: f"aws:secret:{arns[name]}"  # noqa: E731
    expected = {
        (user("dev"), "can_assume", role("shared")),  # the trust delegates to the home account
        (f"aws:account:{ACCOUNT_ID}", "can_assume", role("shared")),
        (user("dev"), "can_read", secret("cmk")),  # resource policy + key policy + identity Allow
    }
    absent = {
        (user("quiet"), "can_assume", role("shared")),  # no identity Allow at home
        (user("quiet"), "can_assume", role("named")),  # named by ARN, but still no identity Allow
        (user("dev"), "can_assume", role("named")),  # not named
        (user("dev"), "can_read", secret("aws-key")),  # an AWS managed key does not cross accounts
        (user("dev"), "can_read", secret("no-policy")),  # no resource policy admits it
        (user("quiet"), "can_read", secret("cmk")),
    }
    assert expected <= edges, expected - edges
    assert not absent & edges, absent & edges
