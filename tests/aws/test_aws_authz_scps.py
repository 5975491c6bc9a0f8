"""SCPs from moto's Organizations: every level from the root to a member account must allow an
action for any principal of that account to get it; the management account is exempt."""

from __future__ import annotations

import json
from typing import Any

import boto3
from authz_estate import allow
from aws_testlib import ACCOUNT_ID, make_connector, policy

from examples.lab.aws_lab import lab_client


def as_account(server: Any, account: str, service: str) -> Any:
    creds = lab_client("sts", server.endpoint_url).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/revoke-collector", RoleSessionName="seed")["Credentials"]
    return boto3.client(service, endpoint_url=server.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def estate(server: Any, account: str | None) -> dict[str, str]:
    """In `account` (None: the management one): user `dev` allowed everything, secret `db`."""
    iam, sm = ((as_account(server, account, s) if account else lab_client(s, server.endpoint_url))
               for s in ("iam", "secretsmanager"))
    iam.create_user(UserName="dev")
    iam.put_user_policy(UserName="dev", PolicyName="p", PolicyDocument=policy([allow("*")]))
    arn = sm.create_secret(Name="db", SecretString=json.dumps({"v": 1}))["ARN"]
    return {"user": f"aws:user:arn:aws:iam::{account or ACCOUNT_ID}:user/dev", "secret": f"aws:secret:{arn}"}


def test_scps_cap_member_accounts_not_the_management_one(moto_server: Any) -> None:
    moto_server.reset()
    org = lab_client("organizations", moto_server.endpoint_url)
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    members = {}
    for name in ("denied", "unlisted", "free"):
        acct = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"]
        members[name] = acct
    org.move_account(AccountId=members["denied"], SourceParentId=root, DestinationParentId=ou)
    org.move_account(AccountId=members["unlisted"], SourceParentId=root, DestinationParentId=ou)
    deny_secrets = org.create_policy(Name="no-secrets", Type="SERVICE_CONTROL_POLICY", Description="",
                                     Content=policy([{"Effect": "Deny", "Action": "secretsmanager:*",
                                                      "Resource": "*"}]))["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=deny_secrets, TargetId=members["denied"])
    org.attach_policy(PolicyId=deny_secrets, TargetId=ACCOUNT_ID)  # the management account ignores it
    # "unlisted": its OU's only SCP allows IAM alone, so secrets are implicitly denied at that level
    only_iam = org.create_policy(Name="only-iam", Type="SERVICE_CONTROL_POLICY", Description="",
                                 Content=policy([allow("iam:*")]))["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=only_iam, TargetId=ou)
    on_ou = org.list_policies_for_target(TargetId=ou, Filter="SERVICE_CONTROL_POLICY")["Policies"]
    for full in (p["Id"] for p in on_ou if p["Name"] == "FullAWSAccess"):
        org.detach_policy(PolicyId=full, TargetId=ou)
    org.move_account(AccountId=members["denied"], SourceParentId=ou, DestinationParentId=root)
    ids = {"mgmt": estate(moto_server, None), **{n: estate(moto_server, a) for n, a in members.items()}}
    accounts: list[dict[str, str]] = [{}] + [{"role_arn": f"arn:aws:iam::{a}:role/revoke-collector"} for a in members.values()]
    got = make_connector(moto_server, accounts=accounts, organizations=True).collect()
    edges = {e.key for e in got.edges}
    read = lambda n: (ids[n]["user"], "can_read", ids[n]["secret"])  # noqa: E731
    assert read("mgmt") in edges  # the management account is exempt from SCPs
    assert read("free") in edges  # FullAWSAccess all the way down
    assert read("denied") not in edges and read("unlisted") not in edges
    # without the option, nothing is capped
    plain = {e.key for e in make_connector(moto_server, accounts=accounts).collect().edges}
    assert {read(n) for n in ids} <= plain
