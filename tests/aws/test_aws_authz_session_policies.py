"""Session policies: where the policies a user's GetFederationToken sessions are minted with are
known (`session_policies`), the federation token reads only what both the user's policies and
the session policies allow; elsewhere it keeps its user's whole reach and says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from authz_estate import ROOT, Case, allow, arn, build, check, deny
from aws_testlib import ACCOUNT_ID, iam, make_connector, policy

from revoke.config import load_config
from revoke.errors import InputError

READ = "secretsmanager:GetSecretValue"
FEDERATE = allow("sts:GetFederationToken")
LOGS = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:logs-*"


def fed(user: str) -> str:
    return f"aws:federation_token:{arn('user', user)}"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


CASES: list[tuple[Case, dict[str, Any]]] = [
    (Case("a declared session policy narrows the federation token's reads, not the user's",
          users={"x": [allow(READ), FEDERATE], "free": [allow(READ), FEDERATE]},
          secrets={"db": {}, "logs": {}},
          expected={(fed("x"), "can_read", "secret:logs"), ("user:x", "can_read", "secret:db"),
                    (fed("free"), "can_read", "secret:db"), (fed("free"), "can_read", "secret:logs")},
          absent={(fed("x"), "can_read", "secret:db")}),
     {arn("user", "x"): {"policy": doc(allow(READ, LOGS))}}),
    (Case("a session policy Deny removes a read its Allow would give",
          users={"x": [allow(READ), FEDERATE]},
          secrets={"db": {}, "logs": {}},
          expected={(fed("x"), "can_read", "secret:logs")},
          absent={(fed("x"), "can_read", "secret:db")}),
     {arn("user", "x"): {"policy": doc(allow("*"), deny(READ, "arn:aws:secretsmanager:*:*:secret:db-*"))}}),
    (Case("under a customer managed key the session policy must allow kms:Decrypt too",
          users={"nodecrypt": [allow(READ), allow("kms:Decrypt"), FEDERATE],
                 "decrypt": [allow(READ), allow("kms:Decrypt"), FEDERATE]},
          keys={"k": [allow("kms:*", Principal={"AWS": ROOT})]},
          secrets={"vault": {"key": "k"}},
          expected={("user:nodecrypt", "can_read", "secret:vault"), (fed("decrypt"), "can_read", "secret:vault")},
          absent={(fed("nodecrypt"), "can_read", "secret:vault")}),
     {arn("user", "nodecrypt"): {"policy": doc(allow(READ))},
      arn("user", "decrypt"): {"policy": doc(allow(READ), allow("kms:Decrypt"))}}),
]


@pytest.mark.parametrize(("case", "declared"), CASES, ids=[str(c) for c, _ in CASES])
def test_session_policies_intersect(moto_server: Any, case: Case, declared: dict[str, Any]) -> None:
    got = check(moto_server, case, session_policies=declared)
    states = {n.id: n.attrs.get("session_policy") for n in got.nodes if n.id.startswith("aws:federation_token:")}
    for node_id, state in states.items():
        known = node_id.split(":", 2)[2] in declared
        assert state == ("known: intersected" if known else "unknown: the user's whole reach (an upper bound)")


def test_managed_session_policies_and_one_not_collected(moto_server: Any) -> None:
    ids = build(moto_server, Case("managed", users={"m": [allow(READ), FEDERATE], "lost": [allow(READ), FEDERATE]},
                                  secrets={"db": {}, "logs": {}}))
    managed = iam(moto_server).create_policy(PolicyName="session-logs",
                                             PolicyDocument=policy([allow(READ, LOGS)]))["Policy"]["Arn"]
    gone = f"arn:aws:iam::{ACCOUNT_ID}:policy/never-created"
    got = make_connector(moto_server, session_policies={
        arn("user", "m"): {"policy_arns": [managed]}, arn("user", "lost"): {"policy_arns": [gone]}}).collect()
    edges = {e.key for e in got.edges}
    assert (fed("m"), "can_read", ids["secret:logs"]) in edges
    assert (fed("m"), "can_read", ids["secret:db"]) not in edges
    # the session policy of `lost` is unknown: the upper bound stays, and a finding says why
    assert {(fed("lost"), "can_read", ids[s]) for s in ("secret:db", "secret:logs")} <= edges
    assert [f.node for f in got.findings if f.code == "aws.sts.session_policy_unavailable"] == [ids["user:lost"]]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("    session_policies:\n      arn:aws:iam::123456789012:role/r: {policy_arns: []}\n",
         "5: connector 'aws': field session_policies.?.?: String should match pattern"),
        ("    session_policies:\n      arn:aws:iam::123456789012:user/u: {policy: {Statement: [{Action: '*'}]}}\n",
         "5: connector 'aws': field session_policies.?.policy: a policy document needs Statement"),
    ],
)
def test_bad_session_policies_name_the_field(tmp_path: Path, block: str, message: str) -> None:
    cfg = tmp_path / "revoke.yaml"
    cfg.write_text("connectors:\n  - type: aws\n    region: us-east-1\n" + block)
    with pytest.raises(InputError) as err:
        load_config(cfg)
    assert err.value.exit_code == 2 and message in str(err.value), str(err.value)
    assert json.dumps(str(err.value))  # one line
