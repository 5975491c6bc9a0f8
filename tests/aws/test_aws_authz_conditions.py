"""Conditions decided from collected state (caller ARN, account, user name and id, principal and
resource tags, `sts:ExternalId` presence); the rest kept on the edge as possible. Each case is a
small moto estate with the edges it must give (certain or possible) and must not give."""

from __future__ import annotations

from typing import Any

import pytest
from authz_estate import ROOT, Case, allow, arn, check, deny

from connectors.aws.policy_conditions import Context, decide
from examples.lab.aws_lab import ACCOUNT_ID

READ = allow("secretsmanager:GetSecretValue")
ASSUME = allow("sts:AssumeRole")


def admit(principal: str, condition: dict[str, Any] | None = None, effect: str = "Allow") -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect, "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    return {**out, "Condition": condition} if condition else out


CASES = [
    Case(
        "an identity Deny on a principal tag blocks the tagged user only",
        users={"red": [READ, deny("*", Condition={"StringEquals": {"aws:PrincipalTag/team": "red"}})],
               "blue": [READ, deny("*", Condition={"StringEquals": {"aws:PrincipalTag/team": "red"}})]},
        tags={"user:red": {"team": "red"}, "user:blue": {"team": "blue"}},
        secrets={"db": {}},
        expected={("user:blue", "can_read", "secret:db")},
        absent={("user:red", "can_read", "secret:db")},
    ),
    Case(
        "an Allow on a resource tag grants the matching secret, certainly, and not the other",
        users={"x": [allow("secretsmanager:GetSecretValue", Condition={"StringEquals": {"aws:ResourceTag/env": "dev"}})]},
        tags={"secret:dev": {"env": "dev"}, "secret:prod": {"env": "prod"}},
        secrets={"dev": {}, "prod": {}, "untagged": {}},
        expected={("user:x", "can_read", "secret:dev")},
        absent={("user:x", "can_read", "secret:prod"), ("user:x", "can_read", "secret:untagged")},
    ),
    Case(
        "a trust Allow on aws:PrincipalArn admits the matching callers of the account",
        users={"ci-1": [ASSUME], "dev": [ASSUME]},
        roles={"deploy": ([admit(ROOT, {"ArnLike": {"aws:PrincipalArn": arn("user", "ci-*")}})], [])},
        expected={("user:ci-1", "can_assume", "role:deploy")},
        absent={("user:dev", "can_assume", "role:deploy")},
    ),
    Case(
        "a Deny unless aws:username blocks every other user",
        users={"x": [allow("iam:*"), deny("iam:*AccessKey", Condition={"StringNotEquals": {"aws:username": "x"}})],
               "y": [allow("iam:*"), deny("iam:*AccessKey", Condition={"StringNotEquals": {"aws:username": "x"}})]},
        expected={("user:x", "can_mint", "user:y")},
        absent={("user:y", "can_mint", "user:x")},
    ),
    Case(
        "a trust Deny outside the account does not block the account; an undecidable key stays possible",
        users={"x": [ASSUME]},
        roles={"app": ([admit(ROOT, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                        admit("*", {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT_ID}}, "Deny")], [])},
        possible={("user:x", "can_assume", "role:app")},
    ),
    Case(
        "sts:ExternalId presence is the caller's to give; its value is not known",
        users={"x": [ASSUME], "y": [ASSUME]},
        roles={"present": ([admit(arn("user", "x"), {"Null": {"sts:ExternalId": "false"}})], []),
               "valued": ([admit(arn("user", "y"), {"StringEquals": {"sts:ExternalId": "e-1"}})], [])},
        expected={("user:x", "can_assume", "role:present")},
        possible={("user:y", "can_assume", "role:valued")},
    ),
    Case(
        "a resource policy Deny on a missing principal tag blocks untagged callers",
        users={"tagged": [READ], "bare": [READ]},
        tags={"user:tagged": {"clearance": "high"}},
        secrets={"db": {"policy": [{"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*",
                                    "Condition": {"Null": {"aws:PrincipalTag/clearance": "true"}}}]}},
        expected={("user:tagged", "can_read", "secret:db")},
        absent={("user:bare", "can_read", "secret:db")},
    ),
    Case(
        "a role's principal tags may be replaced by session tags: undecided",
        roles={"r": ([admit(ROOT)], [allow("secretsmanager:GetSecretValue",
                                            Condition={"StringEquals": {"aws:PrincipalTag/team": "a"}})])},
        tags={"role:r": {"team": "b"}},
        secrets={"db": {}},
        possible={("role:r", "can_read", "secret:db")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conditions_decided_from_collected_state(moto_server: Any, case: Case) -> None:
    check(moto_server, case)


USER_CTX = Context({"aws:username": "alice", "aws:principalarn": arn("user", "alice")}, frozenset(),
                   principal_tags={"Team": "red"}, resource_tags={})


@pytest.mark.parametrize(
    ("block", "effect", "expected"),
    [
        ({"StringEquals": {"aws:username": ["bob", "alice"]}}, "Allow", True),
        ({"StringEquals": {"aws:username": "Alice"}}, "Allow", False),
        ({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, "Allow", True),
        ({"StringNotEquals": {"aws:username": ["bob", "carol"]}}, "Allow", True),
        ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/al*"}}, "Allow", True),
        ({"StringEquals": {"aws:username": "a*"}}, "Allow", False),  # no wildcards in StringEquals
        ({"StringEquals": {"aws:PrincipalTag/team": "red"}}, "Allow", True),  # tag keys ignore case
        ({"StringEquals": {"aws:ResourceTag/env": "dev"}}, "Allow", False),  # missing key, positive
        ({"StringNotEquals": {"aws:ResourceTag/env": "dev"}}, "Allow", True),  # missing key, negated
        ({"StringEqualsIfExists": {"aws:ResourceTag/env": "dev"}}, "Allow", True),
        ({"Null": {"aws:ResourceTag/env": "true"}}, "Allow", True),
        ({"StringEquals": {"aws:username": "${aws:username}"}}, "Allow", None),  # variables: no values given
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, "Allow", None),
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}, "StringEquals": {"aws:username": "bob"}}, "Allow", False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "x"}}, "Allow", None),
        ({"Null": {"sts:ExternalId": "true"}}, "Deny", False),  # the caller sends one
    ],
)
def test_condition_operators(block: dict[str, Any], effect: str, expected: bool | None) -> None:
    assert decide(block, USER_CTX, effect) is expected
