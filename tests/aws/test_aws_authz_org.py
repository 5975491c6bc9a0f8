"""Resource control policies and `aws:PrincipalOrgID` / `aws:PrincipalOrgPaths`, from moto's
Organizations (`organizations: true`).

RCPs cap access to a member account's resources whoever asks (its own principals, the other
accounts', one outside the organization); the management account's resources are exempt; IAM is
not an RCP service. The organization keys are decided for principals of accounts the collected
organization holds, and stay undecided (the edge keeps its conditions, a Deny does not block) for
an account outside it.
"""

from __future__ import annotations

from typing import Any

import pytest
from authz_estate import allow, deny
from aws_testlib import make_connector
from org_estate import OrgCase, build

ANY = {"AWS": "*"}
READ = "secretsmanager:GetSecretValue"


def read(a: str, b: str) -> tuple[str, str, str]:
    return (f"{a}:user", "can_read", f"{b}:secret")


def assume(a: str, b: str, who: str = "user") -> tuple[str, str, str]:
    return (f"{a}:{who}", "can_assume", f"{b}:role")


def rcp(effect: str, action: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": "*", "Action": action, "Resource": "*", **extra}


CASES = [
    OrgCase(
        "an RCP on the OU denies reads by principals outside the organization",
        rcps={"OU": [rcp("Deny", READ, Condition={"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "ORG"}})]},
        secret_policies={"prod": [allow(READ, Principal={"AWS": ["arn:aws:iam::acct:dev:root",
                                                                 "arn:aws:iam::acct:outside:root"]})]},
        # `outside` may be in some other organization: the Deny stays undecided and does not block
        expected={read("prod", "prod"), read("dev", "prod"), read("outside", "prod")},
    ),
    OrgCase(
        "an RCP on the dev account: its secrets and roles are out of reach, others' are not",
        rcps={"acct:dev": [rcp("Deny", "secretsmanager:*"), rcp("Deny", "sts:AssumeRole")]},
        expected={read("prod", "prod"), assume("dev", "prod"), assume("mgmt", "prod")},
        absent={read("dev", "dev"), assume("prod", "dev"), assume("mgmt", "dev"), assume("prod", "dev", "root"),
                assume("outside", "dev")},
    ),
    OrgCase(
        "an RCP on the root caps every member account; the management account is exempt",
        rcps={"ROOT": [rcp("Deny", READ)]},
        expected={read("mgmt", "mgmt"), read("outside", "outside")},
        absent={read("prod", "prod"), read("dev", "dev")},
        control=True,  # without organizations: true the RCPs are not read: the absent edges are there
    ),
    OrgCase(
        "an RCP denying kms:Decrypt in prod: its secrets are unreadable, though the secret allows",
        rcps={"acct:prod": [rcp("Deny", "kms:Decrypt")]},
        secret_policies={"prod": [allow(READ, Principal={"AWS": "arn:aws:iam::acct:dev:root"})]},
        expected={assume("dev", "prod"), read("dev", "dev")},
        absent={read("prod", "prod"), read("dev", "prod")},
    ),
    OrgCase(
        "a trust admitting the organization: decided for its accounts, possible for another",
        trusts={"mgmt": [{"Effect": "Allow", "Principal": ANY, "Action": "sts:AssumeRole",
                          "Condition": {"StringEquals": {"aws:PrincipalOrgID": "ORG"}}}]},
        expected={assume("prod", "mgmt"), assume("dev", "mgmt"), assume("mgmt", "mgmt")},
        possible={assume("outside", "mgmt")},
        control=True,  # without organizations: true the organization id is unknown: all possible
    ),
    OrgCase(
        "a trust admitting another organization: none of this one's principals",
        trusts={"mgmt": [{"Effect": "Allow", "Principal": ANY, "Action": "sts:AssumeRole",
                          "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-zzzzzzzzzz"}}}]},
        absent={assume("prod", "mgmt"), assume("dev", "mgmt"), assume("mgmt", "mgmt")},
        possible={assume("outside", "mgmt")},
    ),
    OrgCase(
        "a secret policy admitting one OU's path (ForAnyValue:StringLike)",
        secret_policies={"mgmt": [allow(READ, Principal=ANY, Condition={
            "ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": ["ORG/ROOT/OU/*"]}})]},
        expected={read("prod", "mgmt"), read("mgmt", "mgmt")},
        absent={read("dev", "mgmt")},
        possible={read("outside", "mgmt")},
    ),
    OrgCase(
        "a trust Deny outside the organization blocks nobody in it, and is undecided outside",
        trusts={"mgmt": [{"Effect": "Allow", "Principal": ANY, "Action": "sts:AssumeRole"},
                         deny("sts:AssumeRole", Principal=ANY,
                              Condition={"StringNotEquals": {"aws:PrincipalOrgID": "ORG"}})]},
        expected={assume("prod", "mgmt"), assume("dev", "mgmt"), assume("outside", "mgmt")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_organization_edges(moto_server: Any, case: OrgCase) -> None:
    org = build(moto_server, case)
    got = make_connector(moto_server, accounts=org.accounts(), organizations=True).collect()
    edges = {e.key for e in got.edges}
    conditional = {e.key for e in got.edges if e.attrs.get("conditions")}
    want, wrong = org.resolve(case.expected | case.possible), org.resolve(case.absent)
    assert not want - edges and not wrong & edges, f"missing {sorted(want - edges)}, wrong {sorted(wrong & edges)}"
    assert not org.resolve(case.expected) & conditional, "expected edges must be decided"
    assert org.resolve(case.possible) <= conditional, "possible edges keep their conditions"
    assert any(f.code == "aws.org.outside" and "444455556666" in f.message for f in got.findings)
    if case.control:
        plain = make_connector(moto_server, accounts=org.accounts()).collect().edges
        undecided = {e.key for e in plain if e.attrs.get("conditions")}
        assert org.resolve(case.absent) <= {e.key for e in plain}
        assert org.resolve(case.expected - {assume("mgmt", "mgmt")}) <= undecided or not case.trusts
