"""Secrets Manager resource policies and the KMS key policies of customer managed keys, as read
from moto: each case is a small estate and the `can_read` edges it must and must not give."""

from __future__ import annotations

from typing import Any

import pytest
from authz_estate import ROOT, Case, allow, arn, check, deny

READ = allow("secretsmanager:GetSecretValue")
DECRYPT = allow("kms:Decrypt")


def to(principal: str, effect: str = "Allow", action: str = "secretsmanager:GetSecretValue") -> dict[str, Any]:
    return {"Effect": effect, "Principal": {"AWS": principal}, "Action": action, "Resource": "*"}


DELEGATE = [to(ROOT, action="kms:*")]  # the default key policy: IAM policies decide

CASES = [
    Case(
        "a resource policy naming a user grants it a read its identity policy is silent on",
        users={"x": [], "y": []},
        secrets={"db": {"policy": [to(arn("user", "x"))]}},
        expected={("user:x", "can_read", "secret:db")},
        absent={("user:y", "can_read", "secret:db")},
    ),
    Case(
        "a resource policy naming the account only delegates to IAM",
        users={"x": [], "y": [READ]},
        secrets={"db": {"policy": [to(ROOT)]}},
        expected={("user:y", "can_read", "secret:db")},
        absent={("user:x", "can_read", "secret:db")},
    ),
    Case(
        "a resource policy Deny beats an identity Allow",
        users={"x": [allow("*")], "y": [allow("*")]},
        secrets={"db": {"policy": [to(arn("user", "x"), "Deny")]}},
        expected={("user:y", "can_read", "secret:db")},
        absent={("user:x", "can_read", "secret:db")},
    ),
    Case(
        "a resource policy Deny of * with NotPrincipal spares the named one",
        users={"x": [READ], "y": [READ]},
        secrets={"db": {"policy": [{"Effect": "Deny", "NotPrincipal": {"AWS": arn("user", "y")},
                                    "Action": "secretsmanager:*", "Resource": "*"}]}},
        expected={("user:y", "can_read", "secret:db")},
        absent={("user:x", "can_read", "secret:db")},
    ),
    Case(
        "a key policy delegating to IAM needs kms:Decrypt in the identity policy",
        users={"x": [READ, DECRYPT], "y": [READ]},
        keys={"k": DELEGATE},
        secrets={"db": {"key": "k"}, "plain": {}},
        expected={("user:x", "can_read", "secret:db"), ("user:y", "can_read", "secret:plain")},
        absent={("user:y", "can_read", "secret:db")},
    ),
    Case(
        "a key policy that does not delegate to IAM makes identity grants useless",
        users={"x": [allow("*")], "y": [READ]},
        keys={"k": [to(arn("user", "y"), action="kms:Decrypt")]},
        secrets={"db": {"key": "k"}},
        expected={("user:y", "can_read", "secret:db")},
        absent={("user:x", "can_read", "secret:db")},
    ),
    Case(
        "a key policy Deny blocks the read",
        users={"x": [allow("*")], "y": [allow("*")]},
        keys={"k": [*DELEGATE, to(arn("user", "x"), "Deny", "kms:Decrypt")]},
        secrets={"db": {"key": "k"}},
        expected={("user:y", "can_read", "secret:db")},
        absent={("user:x", "can_read", "secret:db")},
    ),
    Case(
        "an identity Deny of kms:Decrypt blocks the read of a secret under a customer key only",
        users={"x": [allow("*"), deny("kms:Decrypt")]},
        keys={"k": DELEGATE},
        secrets={"db": {"key": "k"}, "plain": {}},
        expected={("user:x", "can_read", "secret:plain")},
        absent={("user:x", "can_read", "secret:db")},
    ),
    Case(
        "a role named by the resource policy reads without an identity Allow",
        roles={"app": ([{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                         "Action": "sts:AssumeRole"}], [])},
        users={"x": []},
        secrets={"db": {"policy": [to(arn("role", "app"))]}},
        expected={("role:app", "can_read", "secret:db")},
        absent={("user:x", "can_read", "secret:db")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_resource_and_key_policies(moto_server: Any, case: Case) -> None:
    check(moto_server, case)


def test_a_read_edge_says_why(moto_server: Any) -> None:
    case = Case("read", users={"x": [READ]}, secrets={"db": {}}, expected={("user:x", "can_read", "secret:db")})
    got = check(moto_server, case)
    edge = next(e for e in got.edges if e.rel.value == "can_read")
    assert edge.attrs["basis"] == "identity allows" and "kms_key" not in edge.attrs
