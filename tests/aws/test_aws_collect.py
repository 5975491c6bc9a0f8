"""Collection against moto: the exact graph, findings, meta, and no secret value anywhere."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aws_testlib import ACCOUNT_ID, CANARY_PASSWORD, dump, edge_set, iam, make_connector, policy

from connectors.recognize import pem_ref
from examples.lab.aws_lab import lab_client, seed_demo
from examples.lab.pki import make_ca, make_leaf, pem, pem_key
from revoke.connector import Collected
from revoke.model import fingerprint

U = lambda name: f"aws:user:arn:aws:iam::{ACCOUNT_ID}:user/{name}"  # noqa: E731
R = lambda name: f"aws:role:arn:aws:iam::{ACCOUNT_ID}:role/{name}"  # noqa: E731
ACCT = f"aws:account:{ACCOUNT_ID}"
DEVICES = 3


@pytest.fixture(scope="module")
def lab(fresh: Any) -> dict[str, Any]:
    ca, ca_key = make_ca("Collect Test CA")
    seeded = seed_demo(fresh.endpoint_url, pem(ca).encode(), pem_key(ca_key).encode(), devices=DEVICES)
    client = iam(fresh)
    # a group whose policy lets its members mint keys for every user
    client.create_group(GroupName="key-admins")
    client.put_group_policy(GroupName="key-admins", PolicyName="mint", PolicyDocument=policy(
        [{"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": f"arn:aws:iam::{ACCOUNT_ID}:user/*"}]))
    client.create_user(UserName="ops")
    client.add_user_to_group(GroupName="key-admins", UserName="ops")
    # may mint only for itself (a variable, not a wildcard): no edge
    client.create_user(UserName="self-service")
    client.put_user_policy(UserName="self-service", PolicyName="own", PolicyDocument=policy(
        [{"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "arn:aws:iam::*:user/${aws:username}"}]))
    # allowed everything but IAM: reads secrets, assumes account-trusting roles, mints nothing
    client.create_user(UserName="denied")
    client.put_user_policy(UserName="denied", PolicyName="all", PolicyDocument=policy(
        [{"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}]))
    client.create_role(RoleName="account-role", AssumeRolePolicyDocument=policy(
        [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "sts:AssumeRole"}]))
    client.create_role(RoleName="partner-role", AssumeRolePolicyDocument=policy(
        [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:user/outsider"},
          "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "lab"}}}]))
    client.create_role(RoleName="lambda-role", AssumeRolePolicyDocument=policy(
        [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]))
    sm = lab_client("secretsmanager", fresh.endpoint_url)
    db_arn = sm.create_secret(Name="prod/db", SecretString=json.dumps(
        {"username": "app", "db_password": CANARY_PASSWORD}))["ARN"]
    # a certificate not linked to the CA in IoT, but signed by it: found by its signature
    leaf, _k = make_leaf(ca, ca_key, "unlinked-device")
    iot = lab_client("iot", fresh.endpoint_url)
    unlinked = iot.register_certificate_without_ca(certificatePem=pem(leaf), status="ACTIVE")["certificateId"]
    return {**seeded, "db_arn": db_arn, "ca_pem": pem(ca), "unlinked": unlinked, "unlinked_pem": pem(leaf)}


@pytest.fixture(scope="module")
def collected(fresh: Any, lab: dict[str, Any]) -> Collected:
    return make_connector(fresh, iot_ca_ids=[lab["iot_ca_id"]]).collect()


def test_iam_graph(lab: dict[str, Any], collected: Collected) -> None:
    keys = lab["keys"]
    key = lambda k: f"aws:access_key:{k['access_key_id']}"  # noqa: E731
    secret = f"aws:secret:{lab['secret_arn']}"
    db = f"aws:secret:{lab['db_arn']}"
    users = ["ci-deployer", "app-backend", "data-pipeline", "ops", "self-service", "denied"]
    expected = {
        (key(keys["ci-deployer"]), "authenticates_as", U("ci-deployer")),
        (key(keys["app-backend"]), "authenticates_as", U("app-backend")),
        (key(keys["data-pipeline"][0]), "authenticates_as", U("data-pipeline")),
        (key(keys["data-pipeline"][1]), "authenticates_as", U("data-pipeline")),
        (U("ci-deployer"), "can_assume", R("deploy-role")),
        (ACCT, "can_assume", R("account-role")),
        (U("denied"), "can_assume", R("account-role")),
        ("aws:user:arn:aws:iam::999999999999:user/outsider", "can_assume", R("partner-role")),
        (U("app-backend"), "can_read", secret),
        (U("app-backend"), "can_read", db),
        (U("denied"), "can_read", secret),
        (U("denied"), "can_read", db),
        (secret, "stores", key(keys["data-pipeline"][1])),
        (db, "stores", f"aws:password:{lab['db_arn']}#db_password"),
    }
    expected |= {(U("ops"), "can_mint", U(name)) for name in users if name != "ops"}
    # every user can mint GetSessionToken sessions (reading and assuming what it does); "denied"
    # is allowed sts:GetFederationToken too (its sessions read, but assume nothing)
    session = lambda name: f"aws:session_token:arn:aws:iam::{ACCOUNT_ID}:user/{name}"  # noqa: E731
    federation = f"aws:federation_token:arn:aws:iam::{ACCOUNT_ID}:user/denied"
    expected |= {(U(name), "can_mint", session(name)) for name in users}
    expected |= {(U("denied"), "can_mint", federation), (federation, "can_read", secret), (federation, "can_read", db)}
    expected |= {(session("app-backend"), "can_read", s) for s in (secret, db)}
    expected |= {(session("denied"), "can_read", s) for s in (secret, db)}
    expected |= {(session("ci-deployer"), "can_assume", R("deploy-role")),
                 (session("denied"), "can_assume", R("account-role"))}
    rels = {"authenticates_as", "can_assume", "can_read", "can_mint", "stores"}
    got = {e for e in edge_set(collected, rels=rels) if not e[0].startswith("aws:iot_certificate:")}
    assert got == expected


def test_iot_graph(lab: dict[str, Any], collected: Collected) -> None:
    ca = f"aws:iot_ca:{lab['iot_ca_id']}"
    ca_alias = pem_ref("CERTIFICATE", lab["ca_pem"])
    assert ca_alias is not None and ca_alias.ref.startswith("x509:ca:")
    # the registry trusts the active CA registered there (moto's region and account)
    expected = {(ca_alias.ref, "derives", ca), ("aws:iot:123456789012/us-east-1", "trusts", ca)}
    for cert_id, cert_pem in lab["iot_certificate_pems"].items():
        node = f"aws:iot_certificate:{cert_id}"
        alias = pem_ref("CERTIFICATE", cert_pem)
        assert alias is not None
        thing = lab["things"][lab["iot_certificate_ids"].index(cert_id)]
        expected |= {
            (ca, "issued", node),
            (alias.ref, "derives", node),
            (node, "authenticates_as", f"aws:iot_thing:{thing}"),
            (node, "authenticates_as", "aws:iot_policy:device-telemetry"),
        }
    unlinked = f"aws:iot_certificate:{lab['unlinked']}"
    unlinked_alias = pem_ref("CERTIFICATE", lab["unlinked_pem"])
    assert unlinked_alias is not None
    expected |= {(ca, "issued", unlinked), (unlinked_alias.ref, "derives", unlinked)}
    iot = {e for e in edge_set(collected) if "iot" in e[0] + e[2]}
    assert iot == expected
    issued = {e.dst: e.attrs for e in collected.edges if e.rel.value == "issued"}
    assert issued[unlinked] == {"signature": "verified", "basis": "signature"}
    assert all(issued[f"aws:iot_certificate:{c}"] == {"signature": "verified"} for c in lab["iot_certificate_ids"])
    assert all(e.attrs == {"alias": True} for e in collected.edges if e.rel.value == "derives")


def test_nodes_and_attributes(lab: dict[str, Any], collected: Collected) -> None:
    nodes = {n.id: n for n in collected.nodes}
    kinds: dict[str, int] = {}
    for n in collected.nodes:
        kinds[n.kind.value] = kinds.get(n.kind.value, 0) + 1
    # 6 users + the account root; 4 roles; 4 keys; 2 secrets + 1 password; 1 CA; 4 certificates;
    # 6 users' session tokens + 1 federation token
    assert kinds == {"user": 7, "role": 4, "access_key": 4, "secret": 2, "password": 1, "ca": 1,
                     "certificate": DEVICES + 1, "workload": DEVICES + 1, "policy": 1, "token": 7}  # + the IoT CA registry
    ci_key = nodes[f"aws:access_key:{lab['keys']['ci-deployer']['access_key_id']}"]
    assert ci_key.status == "active" and ci_key.owner == U("ci-deployer") and ci_key.created is not None
    assert ci_key.attrs == {"user": "ci-deployer", "account": ACCOUNT_ID}
    assert nodes[R("lambda-role")].attrs["trusted_services"] == ["lambda.amazonaws.com"]
    password = nodes[f"aws:password:{lab['db_arn']}#db_password"]
    assert password.fingerprint == fingerprint(CANARY_PASSWORD)
    secret = nodes[f"aws:secret:{lab['secret_arn']}"]
    assert secret.fingerprint.startswith("sha256:") and secret.name == "prod/pipeline"
    assert nodes[U("ops")].attrs["groups"] == ["key-admins"]
    partner = next(e for e in collected.edges if e.dst == R("partner-role"))
    assert partner.attrs["conditions"] == [{"StringEquals": {"sts:ExternalId": "lab"}}]
    assert partner.attrs["uncollected"] is True


def test_findings_and_meta(collected: Collected) -> None:
    codes = {f.code for f in collected.findings}
    assert "aws.iot.list_ca_unavailable" in codes
    meta = collected.meta[ACCOUNT_ID]
    assert meta["iot_ca_discovery"].startswith("device certificates")
    assert meta["last_used_source"].startswith("credential_report")
    assert collected.meta["accounts"] == [ACCOUNT_ID]


def test_without_configured_ca_ids_the_ca_is_missing_and_said(fresh: Any, lab: dict[str, Any]) -> None:
    got = make_connector(fresh).collect()
    assert not any(n.id.startswith("aws:iot_ca:") for n in got.nodes)
    finding = next(f for f in got.findings if f.code == "aws.iot.list_ca_unavailable")
    assert "missed" in finding.message
    # certificates exist and no CA was found: said on its own, with what to do
    (none,) = [f for f in got.findings if f.code == "aws.iot.no_ca_found"]
    assert "iot_ca_ids" in none.message and none.message.startswith(f"{DEVICES + 1} IoT certificate(s)")


def test_no_secret_value_leaves_the_connector(
    fresh: Any, lab: dict[str, Any], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    got = make_connector(fresh, iot_ca_ids=[lab["iot_ca_id"]]).collect()
    text = dump(got)
    captured = capsys.readouterr()
    secrets = [CANARY_PASSWORD, lab["keys"]["ci-deployer"]["secret_access_key"],
               lab["keys"]["data-pipeline"][1]["secret_access_key"]]
    for value in secrets:
        assert value not in text
        assert value not in captured.out + captured.err
        assert value not in caplog.text


def test_several_accounts_are_collected(fresh: Any, lab: dict[str, Any]) -> None:
    # the same endpoint twice stands for two accounts: nodes come back once per account id
    got = make_connector(fresh, accounts=[{}, {"region": "us-east-1"}]).collect()
    assert got.meta["accounts"] == [ACCOUNT_ID, ACCOUNT_ID]
    assert U("ci-deployer") in {n.id for n in got.nodes}


def test_pypi_token_in_a_secret_can_publish_its_projects(fresh: Any, lab: dict[str, Any]) -> None:
    """A `pypi-` token in a Secrets Manager value gets its node and `can_publish` edges, as in Vault KV."""
    from tests.github.github_testlib import pypi_token

    sm = lab_client("secretsmanager", fresh.endpoint_url)
    value = pypi_token(["ai-gateway"])
    arn = sm.create_secret(Name="ci/pypi", SecretString=json.dumps({"PYPI_TOKEN": value}))["ARN"]
    try:
        got = make_connector(fresh).collect()
    finally:
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    token = f"pypi:api_token:{fingerprint(value).removeprefix('sha256:')}"
    edges = {(e.src, e.rel.value, e.dst) for e in got.edges}
    assert (f"aws:secret:{arn}", "stores", token) in edges
    assert (token, "can_publish", "pypi:package:ai-gateway") in edges
    node = next(n for n in got.nodes if n.id == token)
    assert node.attrs["identifier"] and value not in dump(got)
