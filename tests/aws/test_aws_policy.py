"""IAM policy evaluation (pure): Allow/Deny, wildcards, NotAction/NotResource, variables,
permissions boundaries, trust policies; and the access edges built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors.aws.policy import (
    ALLOW,
    DENY,
    IMPLICIT,
    access_edges,
    can_assume,
    evaluate,
    evaluate_with_boundary,
    trust_grants,
)
from connectors.aws.policy_match import parse_policy
from connectors.aws.transform import parse_credential_report

ACCT = "111122223333"
USER = f"arn:aws:iam::{ACCT}:user/alice"


def stmts(*statements: dict[str, Any]) -> tuple[Any, ...]:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)})


def decide(policy: tuple[Any, ...], action: str, resource: str, **variables: str) -> str:
    return evaluate(policy, action, resource, variables).effect


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


@pytest.mark.parametrize(
    ("statements", "action", "resource", "expected"),
    [
        ([ALLOW_ALL], "iam:CreateAccessKey", USER, ALLOW),
        ([], "iam:CreateAccessKey", USER, IMPLICIT),
        # explicit Deny wins, in whatever order
        ([ALLOW_ALL, {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}], "iam:CreateAccessKey", USER, DENY),
        ([{"Effect": "Deny", "Action": "iam:*", "Resource": "*"}, ALLOW_ALL], "iam:CreateAccessKey", USER, DENY),
        # action names are case-insensitive, resources are not
        ([{"Effect": "Allow", "Action": "IAM:createaccesskey", "Resource": USER}], "iam:CreateAccessKey", USER, ALLOW),
        ([{"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": USER.upper()}],
         "iam:CreateAccessKey", USER, IMPLICIT),
        # `*` may be empty and crosses `/`; `?` is exactly one character
        ([{"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "*"}], "iam:CreateAccessKey", USER, ALLOW),
        ([{"Effect": "Allow", "Action": "iam:Create?ccessKey", "Resource": "*"}], "iam:CreateAccessKey", USER, ALLOW),
        ([{"Effect": "Allow", "Action": "iam:Create?AccessKey", "Resource": "*"}], "iam:CreateAccessKey", USER,
         IMPLICIT),
        ([{"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": f"arn:aws:iam::{ACCT}:user/*"}],
         "iam:CreateAccessKey", f"arn:aws:iam::{ACCT}:user/path/bob", ALLOW),
        ([{"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": f"arn:aws:iam::{ACCT}:user/al?ce"}],
         "iam:CreateAccessKey", USER, ALLOW),
        ([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}], "iam:CreateAccessKey", USER, IMPLICIT),
        # NotAction / NotResource: everything except
        ([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], "iam:CreateAccessKey", USER, IMPLICIT),
        ([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], "secretsmanager:GetSecretValue", "x", ALLOW),
        ([ALLOW_ALL, {"Effect": "Deny", "NotAction": "sts:*", "Resource": "*"}], "iam:CreateAccessKey", USER, DENY),
        ([ALLOW_ALL, {"Effect": "Deny", "NotAction": "sts:*", "Resource": "*"}], "sts:AssumeRole", "r", ALLOW),
        ([{"Effect": "Allow", "Action": "iam:*", "NotResource": f"arn:aws:iam::{ACCT}:user/admin*"}],
         "iam:CreateAccessKey", USER, ALLOW),
        ([{"Effect": "Allow", "Action": "iam:*", "NotResource": f"arn:aws:iam::{ACCT}:user/admin*"}],
         "iam:CreateAccessKey", f"arn:aws:iam::{ACCT}:user/admin-1", IMPLICIT),
        # a conditional Deny may not apply: it does not block
        ([ALLOW_ALL, {"Effect": "Deny", "Action": "*", "Resource": "*",
                      "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}],
         "iam:CreateAccessKey", USER, ALLOW),
    ],
)
def test_evaluate(statements: list[dict[str, Any]], action: str, resource: str, expected: str) -> None:
    assert decide(stmts(*statements), action, resource) == expected


def test_conditions_are_kept_on_a_conditional_allow() -> None:
    cond = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    result = evaluate(stmts({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*", "Condition": cond}),
                      "sts:AssumeRole", "arn:aws:iam::1:role/r")
    assert result.effect == ALLOW and result.conditions == [cond]
    # an unconditional Allow next to it makes the access unconditional
    both = stmts({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*", "Condition": cond},
                 {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    assert evaluate(both, "sts:AssumeRole", "r").conditions == []


def test_variables_expand_to_the_principal_and_are_not_wildcards() -> None:
    own = stmts({"Effect": "Allow", "Action": "iam:CreateAccessKey",
                 "Resource": f"arn:aws:iam::{ACCT}:user/${{aws:username}}"})
    assert decide(own, "iam:CreateAccessKey", USER, **{"aws:username": "alice"}) == ALLOW
    assert decide(own, "iam:CreateAccessKey", f"arn:aws:iam::{ACCT}:user/bob", **{"aws:username": "alice"}) == IMPLICIT
    # a user literally named `*` does not match everyone
    assert decide(own, "iam:CreateAccessKey", USER, **{"aws:username": "*"}) == IMPLICIT
    # no value (a role has no aws:username): the statement does not apply
    assert decide(own, "iam:CreateAccessKey", USER) == IMPLICIT
    # variable names are case-insensitive; ${*} is a literal star
    upper = stmts({"Effect": "Allow", "Action": "iam:*", "Resource": f"arn:aws:iam::{ACCT}:user/${{AWS:UserName}}"})
    assert decide(upper, "iam:CreateAccessKey", USER, **{"aws:username": "alice"}) == ALLOW
    literal = stmts({"Effect": "Allow", "Action": "iam:*", "Resource": f"arn:aws:iam::{ACCT}:user/${{*}}"})
    assert decide(literal, "iam:CreateAccessKey", USER) == IMPLICIT
    assert decide(literal, "iam:CreateAccessKey", f"arn:aws:iam::{ACCT}:user/*") == ALLOW


def test_permissions_boundary_caps_identity_policies() -> None:
    identity = stmts(ALLOW_ALL)
    boundary = stmts({"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"})
    assert evaluate_with_boundary(identity, boundary, "secretsmanager:GetSecretValue", "s").effect == ALLOW
    assert evaluate_with_boundary(identity, boundary, "iam:CreateAccessKey", USER).effect == IMPLICIT
    assert evaluate_with_boundary(identity, None, "iam:CreateAccessKey", USER).effect == ALLOW
    # a boundary never grants on its own
    assert evaluate_with_boundary(stmts(), boundary, "secretsmanager:GetSecretValue", "s").effect == IMPLICIT
    deny_boundary = stmts(ALLOW_ALL, {"Effect": "Deny", "Action": "iam:*", "Resource": "*"})
    assert evaluate_with_boundary(identity, deny_boundary, "iam:CreateAccessKey", USER).effect == DENY


def test_policy_text_forms() -> None:
    text = '{"Statement": {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": "*"}}'
    assert decide(parse_policy(text), "sts:assumerole", "r") == ALLOW
    from urllib.parse import quote

    assert decide(parse_policy(quote(text)), "sts:AssumeRole", "r") == ALLOW


ROLE = f"arn:aws:iam::{ACCT}:role/deploy"
NO_IDENTITY = evaluate((), "sts:AssumeRole", ROLE)


def trust(principal: Any, **extra: Any) -> tuple[Any, ...]:
    return stmts({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra})


def test_trust_naming_the_principal_grants_by_itself() -> None:
    ok, _conds, basis = can_assume(trust({"AWS": USER}), ROLE, USER, ACCT, NO_IDENTITY)
    assert ok and basis == "trust names principal"
    # ... unless an identity Deny blocks it
    deny = evaluate(stmts({"Effect": "Deny", "Action": "sts:*", "Resource": "*"}), "sts:AssumeRole", ROLE)
    assert not can_assume(trust({"AWS": USER}), ROLE, USER, ACCT, deny)[0]
    # another principal is not admitted
    assert not can_assume(trust({"AWS": USER}), ROLE, f"arn:aws:iam::{ACCT}:user/bob", ACCT, NO_IDENTITY)[0]


def test_trust_of_the_account_root_needs_an_identity_allow() -> None:
    allow = evaluate(stmts({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE}), "sts:AssumeRole", ROLE)
    for principal in (f"arn:aws:iam::{ACCT}:root", ACCT):
        assert not can_assume(trust({"AWS": principal}), ROLE, USER, ACCT, NO_IDENTITY)[0]
        ok, _c, basis = can_assume(trust({"AWS": principal}), ROLE, USER, ACCT, allow)
        assert ok and "delegates" in basis
    # a trust of another account does not admit this one's principals
    assert not can_assume(trust({"AWS": "444455556666"}), ROLE, USER, ACCT, allow)[0]


def test_trust_wildcard_services_conditions_and_cross_account() -> None:
    cond = {"StringEquals": {"sts:ExternalId": "x"}}
    ok, conds, _b = can_assume(trust("*", Condition=cond), ROLE, USER, ACCT, NO_IDENTITY)
    assert ok and conds == [cond]
    grants = trust_grants(trust({"Service": "ec2.amazonaws.com", "AWS": ["*"]}))
    assert {(g.kind, g.principal) for g in grants} == {("service", "ec2.amazonaws.com"), ("any", "*")}
    # a principal of another account named in the trust also needs its own identity Allow
    other = "arn:aws:iam::444455556666:user/eve"
    assert not can_assume(trust({"AWS": other}), ROLE, other, "444455556666", NO_IDENTITY)[0]
    allow = evaluate(stmts({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}), "sts:AssumeRole", ROLE)
    assert can_assume(trust({"AWS": other}), ROLE, other, "444455556666", allow)[0]
    # an unconditional Deny in the trust policy removes the principal it names
    denied = stmts({"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "sts:AssumeRole"},
                   {"Effect": "Deny", "Principal": {"AWS": USER}, "Action": "sts:AssumeRole"})
    assert trust_grants(denied) == []


@dataclass
class P:
    node_id: str
    arn: str
    account: str
    statements: tuple[Any, ...]
    boundary: tuple[Any, ...] | None = None
    variables: dict[str, str] = field(default_factory=dict)


def test_access_edges() -> None:
    u = lambda n: f"arn:aws:iam::{ACCT}:user/{n}"  # noqa: E731
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-AbCdEf"
    other_secret = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:dev/db-AbCdEf"
    admin = P("aws:user:" + u("admin"), u("admin"), ACCT, stmts(ALLOW_ALL), variables={"aws:username": "admin"})
    minter = P("aws:user:" + u("minter"), u("minter"), ACCT, stmts(
        {"Effect": "Allow", "Action": "iam:UpdateAccessKey", "Resource": u("ci-*")}), variables={"aws:username": "minter"})
    reader = P("aws:user:" + u("reader"), u("reader"), ACCT, stmts(
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:*:*:secret:prod/*"}),
        variables={"aws:username": "reader"})
    capped = P("aws:user:" + u("capped"), u("capped"), ACCT, stmts(ALLOW_ALL),
               boundary=stmts({"Effect": "Allow", "Action": "sts:*", "Resource": "*"}), variables={"aws:username": "capped"})
    principals = [admin, minter, reader, capped]
    users = [(p.node_id, p.arn) for p in principals] + [("aws:user:" + u("ci-bot"), u("ci-bot"))]
    roles = [("aws:role:" + ROLE, ROLE, trust({"AWS": ACCT}))]
    secrets = [("aws:secret:" + secret, secret), ("aws:secret:" + other_secret, other_secret)]
    edges, notes = access_edges(principals, roles, users, secrets)
    got = {e[:3] for e in edges}
    expected = {(admin.node_id, "can_mint", p) for p, _a in users if p != admin.node_id}
    expected |= {(minter.node_id, "can_mint", "aws:user:" + u("ci-bot"))}
    expected |= {(admin.node_id, "can_read", "aws:secret:" + s) for s in (secret, other_secret)}
    expected |= {(reader.node_id, "can_read", "aws:secret:" + secret)}
    expected |= {(f"aws:account:{ACCT}", "can_assume", "aws:role:" + ROLE),
                 (admin.node_id, "can_assume", "aws:role:" + ROLE),
                 (capped.node_id, "can_assume", "aws:role:" + ROLE)}
    assert got == expected
    assert notes == []
    mint = next(e for e in edges if e[0] == minter.node_id)
    assert mint[3]["actions"] == ["iam:UpdateAccessKey"]


def test_credential_report_parsing() -> None:
    text = (
        "user,arn,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,"
        "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date\n"
        "bob,arn:aws:iam::1:user/bob,true,2024-01-01T00:00:00+00:00,2024-02-01T00:00:00+00:00,false,N/A,N/A\n"
    )
    report = parse_credential_report(text)
    assert report["bob"][0]["last_used"] == "2024-02-01T00:00:00+00:00"
    assert report["bob"][1]["last_rotated"] == "N/A"
