"""An organization on moto for the RCP and `aws:PrincipalOrg*` tables: the management account,
member `prod` (in OU `prod`) and member `dev` (under the root), plus `outside`, an account no
organization holds (moto's STS lets the collector role be assumed there all the same).

Every account gets user `dev` (allowed everything), secret `db` (under a customer managed key
the four accounts may use), and role `ops` trusting the accounts' roots; a case adds resource
policies, trust policies and RCPs. Policy texts may say `ORG`, `ROOT`, `OU` and `acct:<name>`:
they are replaced by the real ids once they exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3
from authz_estate import allow
from aws_testlib import ACCOUNT_ID, policy

from examples.lab.aws_lab import MotoServer, lab_client

OUTSIDE = "444455556666"


def as_account(server: MotoServer, account: str, service: str) -> Any:
    if account == ACCOUNT_ID:
        return lab_client(service, server.endpoint_url)
    creds = lab_client("sts", server.endpoint_url).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/revoke-collector", RoleSessionName="seed")["Credentials"]
    return boto3.client(service, endpoint_url=server.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


@dataclass
class OrgCase:
    name: str
    rcps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "acct:x" | "OU" | "ROOT" -> statements
    secret_policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # account name -> statements
    trusts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # account name -> ops trust statements
    expected: set[tuple[str, str, str]] = field(default_factory=set)
    absent: set[tuple[str, str, str]] = field(default_factory=set)
    possible: set[tuple[str, str, str]] = field(default_factory=set)  # present, conditions kept
    control: bool = False  # also collect without `organizations` and check what it changes

    def __str__(self) -> str:
        return self.name


@dataclass
class Org:
    ids: dict[str, str]  # "ORG", "ROOT", "OU", "acct:<name>" -> id
    nodes: dict[str, str] = field(default_factory=dict)  # "<account>:user" / ":secret" / ":role" / ":root" -> node

    def fill(self, statements: list[dict[str, Any]]) -> str:
        text = policy(statements)
        for short, real in sorted(self.ids.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(short, real)
        return text

    def accounts(self) -> list[dict[str, str]]:
        return [{}] + [{"role_arn": f"arn:aws:iam::{self.ids[f'acct:{n}']}:role/revoke-collector"}
                       for n in ("prod", "dev", "outside")]

    def resolve(self, triples: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        return {(self.nodes[a], rel, self.nodes[b]) for a, rel, b in triples}


def build(server: MotoServer, case: OrgCase) -> Org:
    server.reset()
    org = lab_client("organizations", server.endpoint_url)
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    ids = {"ORG": org.describe_organization()["Organization"]["Id"], "ROOT": root, "OU": ou,
           "acct:mgmt": ACCOUNT_ID, "acct:outside": OUTSIDE}
    for name in ("prod", "dev"):
        ids[f"acct:{name}"] = org.create_account(AccountName=name, Email=f"{name}@example.com")[
            "CreateAccountStatus"]["AccountId"]
    org.move_account(AccountId=ids["acct:prod"], SourceParentId=root, DestinationParentId=ou)
    estate = Org(ids)
    roots = [f"arn:aws:iam::{ids[f'acct:{n}']}:root" for n in ("mgmt", "prod", "dev", "outside")]
    for name in ("mgmt", "prod", "dev", "outside"):
        account = ids[f"acct:{name}"]
        iam, sm = as_account(server, account, "iam"), as_account(server, account, "secretsmanager")
        iam.create_user(UserName="dev")
        iam.put_user_policy(UserName="dev", PolicyName="p", PolicyDocument=policy([allow("*")]))
        trust = case.trusts.get(name) or [{"Effect": "Allow", "Principal": {"AWS": roots}, "Action": "sts:AssumeRole"}]
        iam.create_role(RoleName="ops", AssumeRolePolicyDocument=estate.fill(trust))
        # a customer managed key every account may use: an AWS managed one is not usable across accounts
        key_policy = [{"Effect": "Allow", "Principal": {"AWS": roots}, "Action": "kms:*", "Resource": "*"}]
        key = as_account(server, account, "kms").create_key(Policy=policy(key_policy))["KeyMetadata"]["KeyId"]
        arn = sm.create_secret(Name="db", SecretString=json.dumps({"v": name}), KmsKeyId=key)["ARN"]
        if name in case.secret_policies:
            sm.put_resource_policy(SecretId=arn, ResourcePolicy=estate.fill(case.secret_policies[name]))
        estate.nodes |= {f"{name}:user": f"aws:user:arn:aws:iam::{account}:user/dev",
                         f"{name}:secret": f"aws:secret:{arn}",
                         f"{name}:role": f"aws:role:arn:aws:iam::{account}:role/ops",
                         f"{name}:root": f"aws:account:{account}"}
    for target, statements in case.rcps.items():
        pid = org.create_policy(Name=f"rcp-{target}", Type="RESOURCE_CONTROL_POLICY", Description="",
                                Content=estate.fill(statements))["Policy"]["PolicySummary"]["Id"]
        org.attach_policy(PolicyId=pid, TargetId=ids[target])
    return estate
