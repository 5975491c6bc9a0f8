"""Sessions a user can mint with its keys (GetSessionToken always, GetFederationToken when allowed):
`can_mint` user -> session token, which reads (and for GetSessionToken assumes) what the user does.
Each case is a small moto estate with the edges it must and must not give; then the revoke of such
a session, checked on moto's IAM state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from authz_estate import ROOT, Case, allow, arn, build, check, deny
from aws_testlib import ctx, iam, make_connector

from revoke.model import Node, NodeKind

READ = allow("secretsmanager:GetSecretValue")
ASSUME = allow("sts:AssumeRole")
FEDERATE = allow("sts:GetFederationToken")
TRUST_ACCOUNT = [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}]


def session(user: str) -> str:
    return f"aws:session_token:{arn('user', user)}"


def federation(user: str) -> str:
    return f"aws:federation_token:{arn('user', user)}"


CASES = [
    Case(
        "every user mints GetSessionToken sessions; only an Allow gives GetFederationToken",
        users={"plain": [], "fed": [FEDERATE], "fed-denied": [allow("sts:*"), deny("sts:GetFederationToken")]},
        expected={("user:plain", "can_mint", session("plain")), ("user:fed", "can_mint", session("fed")),
                  ("user:fed", "can_mint", federation("fed")),
                  ("user:fed-denied", "can_mint", session("fed-denied"))},
        absent={("user:plain", "can_mint", federation("plain")),
                ("user:fed-denied", "can_mint", federation("fed-denied"))},
    ),
    Case(
        "a session reads and assumes what its user does; a federation token only reads",
        users={"x": [READ, ASSUME, FEDERATE]},
        roles={"ops": (TRUST_ACCOUNT, [])},
        secrets={"db": {}},
        expected={(session("x"), "can_read", "secret:db"), (session("x"), "can_assume", "role:ops"),
                  (federation("x"), "can_read", "secret:db")},
        absent={(federation("x"), "can_assume", "role:ops"), (session("x"), "can_mint", "user:x")},
    ),
    Case(
        "a session does not mint keys (IAM needs MFA), nor reads what its user cannot",
        users={"admin": [allow("iam:*"), FEDERATE], "other": []},
        secrets={"db": {}},
        expected={("user:admin", "can_mint", "user:other")},
        absent={(session("admin"), "can_mint", "user:other"), (federation("admin"), "can_mint", "user:other"),
                (session("admin"), "can_read", "secret:db")},
    ),
    Case(
        "roles mint no sessions of their own",
        roles={"app": (TRUST_ACCOUNT, [allow("*")])},
        absent={("role:app", "can_mint", f"aws:session_token:{arn('role', 'app')}"),
                ("role:app", "can_mint", f"aws:federation_token:{arn('role', 'app')}")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_sessions_a_user_can_mint(moto_server: Any, case: Case) -> None:
    check(moto_server, case)


def test_revoking_minted_sessions_denies_them_in_the_users_policy(moto_server: Any) -> None:
    build(moto_server, Case("one user", users={"x": [FEDERATE]}))
    aws = make_connector(moto_server)
    node = Node(id=session("x"), kind=NodeKind.TOKEN, provider="aws", owner=f"aws:user:{arn('user', 'x')}")
    done = aws.act("revoke", node, ctx())
    assert done.changed and done.data["policy"] == "AWSRevokeOlderSessions"
    doc = iam(moto_server).get_user_policy(UserName="x", PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    stmt = (doc if isinstance(doc, dict) else json.loads(doc))["Statement"][0]
    assert stmt["Effect"] == "Deny" and stmt["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == done.data["cutoff"]
    # the federation token of the same user is cut by the same policy: nothing more to do
    fed = Node(id=federation("x"), kind=NodeKind.TOKEN, provider="aws")
    assert not aws.act("revoke", fed, ctx()).changed
    assert aws.confirm("revoke", node).live is False
    assert aws.act("rollback", node, ctx()).changed
    assert aws.confirm("revoke", node).live is True
    assert "AWSRevokeOlderSessions" not in iam(moto_server).list_user_policies(UserName="x")["PolicyNames"]
