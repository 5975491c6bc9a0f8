"""Actions against moto, each read back from the server; idempotency; probes; errors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_testlib import ACCOUNT_ID, ctx, iam, make_connector

from connectors.recognize import recognize
from examples.lab.aws_lab import lab_client, seed_demo
from examples.lab.pki import make_ca, pem, pem_key
from revoke.connector import ActionContext, ConnectorError, Secret
from revoke.model import Node, NodeKind


@pytest.fixture(scope="module")
def lab(fresh: Any) -> dict[str, Any]:
    ca, ca_key = make_ca("Actions Test CA")
    return seed_demo(fresh.endpoint_url, pem(ca).encode(), pem_key(ca_key).encode(), devices=2)


@pytest.fixture(scope="module")
def aws(fresh: Any) -> Any:
    return make_connector(fresh)


def key_node(key_id: str, user: str | None = None) -> Node:
    attrs = {"user": user, "account": ACCOUNT_ID} if user else {}
    return Node(id=f"aws:access_key:{key_id}", kind=NodeKind.ACCESS_KEY, provider="aws", attrs=attrs)


def key_status(server: Any, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in iam(server).list_access_keys(UserName=user)["AccessKeyMetadata"]}


def new_user(server: Any, name: str, keys: int) -> list[str]:
    client = iam(server)
    client.create_user(UserName=name)
    return [client.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(keys)]


def test_disable_revoke_rollback_finalize(fresh: Any, aws: Any) -> None:
    (key,) = new_user(fresh, "life", 1)
    node = key_node(key, "life")
    first = aws.act("disable", node, ctx())
    assert first.changed and key_status(fresh, "life") == {key: "Inactive"}
    assert not aws.act("disable", node, ctx()).changed
    assert not aws.act("revoke", node, ctx()).changed
    back = aws.act("rollback", node, ctx())
    assert back.changed and key_status(fresh, "life") == {key: "Active"}
    assert not aws.act("rollback", node, ctx()).changed
    with pytest.raises(ConnectorError, match="still Active"):
        aws.act("finalize", node, ctx())
    assert aws.act("revoke", node, ctx()).changed
    assert aws.act("finalize", node, ctx()).changed and key_status(fresh, "life") == {}
    assert not aws.act("finalize", node, ctx()).changed
    assert not aws.act("revoke", node, ctx()).changed
    with pytest.raises(ConnectorError, match="cannot restore"):
        aws.act("rollback", node, ctx())


def test_user_found_from_the_key_alone_and_dry_run_changes_nothing(fresh: Any, aws: Any) -> None:
    (key,) = new_user(fresh, "bare", 1)
    dry = aws.act("revoke", key_node(key), ActionContext(incident="i"))
    assert not dry.changed and key_status(fresh, "bare") == {key: "Active"}
    assert aws.act("revoke", key_node(key), ctx()).data == {"user": "bare"}
    assert key_status(fresh, "bare") == {key: "Inactive"}


def test_unknown_key_revoke_is_done_rollback_is_an_error_naming_the_node(aws: Any) -> None:
    # a key that no longer exists cannot authenticate: revoking it again is a no-op, but bringing
    # it back is impossible and must say so
    node = key_node("AKIAUNKNOWN000000000")
    res = aws.act("revoke", node, ctx())
    assert res.ok and not res.changed and "no longer exists" in res.detail
    with pytest.raises(ConnectorError) as info:
        aws.act("rollback", node, ctx())
    assert info.value.node == node.id and node.id in str(info.value)
    assert not info.value.retryable


def test_connection_errors_are_retryable() -> None:
    broken = make_connector_at("http://127.0.0.1:9")
    with pytest.raises(ConnectorError) as info:
        broken.act("revoke", key_node("AKIAUNKNOWN000000001", "x"), ctx())
    assert info.value.retryable and "EndpointConnectionError" in str(info.value)


def make_connector_at(url: str) -> Any:
    from revoke.connector import connector_class

    return connector_class("aws")({"endpoint_url": url, "max_attempts": 1})


def test_replacement_within_the_two_key_limit(fresh: Any, aws: Any) -> None:
    # room left: a second key is simply created
    (one,) = new_user(fresh, "roomy", 1)
    made = aws.create_replacement(key_node(one, "roomy"), ctx())
    assert set(key_status(fresh, "roomy")) == {one, made.new_id.split(":")[-1]}
    assert made.attrs == {"user": "roomy"}
    assert aws.siblings(key_node(one, "roomy")) == {made.new_id}
    # two keys, the other one Inactive: that one is deleted to make room
    old, spare = new_user(fresh, "spare", 2)
    iam(fresh).update_access_key(UserName="spare", AccessKeyId=spare, Status="Inactive")
    made = aws.create_replacement(key_node(old, "spare"), ctx())
    assert made.attrs["deleted_inactive_key"] == spare
    assert key_status(fresh, "spare") == {old: "Active", made.new_id.split(":")[-1]: "Active"}
    # two Active keys: the compromised one is deactivated and deleted first, and the result says so
    old, other = new_user(fresh, "full", 2)
    made = aws.create_replacement(key_node(old, "full"), ctx())
    assert made.attrs["deleted_old_key_first"] == old
    assert key_status(fresh, "full") == {other: "Active", made.new_id.split(":")[-1]: "Active"}
    assert repr(made.material) == "Secret(<redacted 2 fields>)"


def test_two_key_limit_is_real(fresh: Any) -> None:
    new_user(fresh, "limit", 2)
    with pytest.raises(Exception, match="LimitExceeded"):
        iam(fresh).create_access_key(UserName="limit")


def test_discard_replacement(fresh: Any, aws: Any) -> None:
    (key,) = new_user(fresh, "discard", 1)
    made = aws.create_replacement(key_node(key, "discard"), ctx())
    first = aws.discard_replacement(made.new_id, ctx())
    assert first.changed and key_status(fresh, "discard") == {key: "Active"}
    assert not aws.discard_replacement(made.new_id, ctx()).changed


def test_rotate_into_a_secret_keeps_its_json_shape(fresh: Any, aws: Any, lab: dict[str, Any]) -> None:
    old_key = lab["keys"]["data-pipeline"][1]
    old = key_node(old_key["access_key_id"], "data-pipeline")
    store = Node(id=f"aws:secret:{lab['secret_arn']}", kind=NodeKind.SECRET, provider="aws")
    assert aws.store_holds(store) == {old.id}
    made = aws.create_replacement(old, ctx())
    # data-pipeline had two Active keys: the compromised one made room
    assert made.attrs["deleted_old_key_first"] == old_key["access_key_id"]
    result = aws.write_store(store, old, made, ctx())
    assert result.changed and result.data["version_id"]
    sm = lab_client("secretsmanager", fresh.endpoint_url)
    value = json.loads(sm.get_secret_value(SecretId=lab["secret_arn"])["SecretString"])
    material = made.material.reveal()
    assert value == {"aws_access_key_id": material["access_key_id"],
                     "aws_secret_access_key": material["secret_access_key"], "bucket": "lab-pipeline-data"}
    assert aws.store_holds(store) == {made.new_id}
    again = aws.write_store(store, old, made, ctx())
    assert not again.changed
    versions = sm.list_secret_version_ids(SecretId=lab["secret_arn"])["Versions"]
    assert len(versions) == 2


def test_write_store_refuses_a_secret_without_the_credential(fresh: Any, aws: Any) -> None:
    sm = lab_client("secretsmanager", fresh.endpoint_url)
    arn = sm.create_secret(Name="unrelated", SecretString=json.dumps({"k": "v"}))["ARN"]
    store = Node(id=f"aws:secret:{arn}", kind=NodeKind.SECRET, provider="aws")
    (key,) = new_user(fresh, "stranger", 1)
    from revoke.connector import Replacement

    fake = Replacement(key_node(key).id, "aws:access_key:AKIANEW0000000000000", NodeKind.ACCESS_KEY,
                       Secret({"access_key_id": "AKIANEW0000000000000", "secret_access_key": "x" * 40}))
    with pytest.raises(ConnectorError, match="holds neither") as info:
        aws.write_store(store, key_node(key), fake, ctx())
    assert info.value.node == store.id


def test_key_probe_names_its_signal(fresh: Any, aws: Any) -> None:
    (key,) = new_user(fresh, "probed", 1)
    node = key_node(key, "probed")
    live = aws.probe(node)
    assert live.live is True and live.signal == "list_access_keys: Active"
    # by default nothing is signed with the compromised key id (CloudTrail would log it)
    assert live.detail == "list_access_keys: Active; sts: not tried"
    # asked for, STS corroborates; moto's accepts a wrong secret: reported and ignored
    corroborated = make_connector(fresh, probe_sts=True).probe(node)
    assert corroborated.live is True and "endpoint checks no signatures" in corroborated.detail
    aws.act("revoke", node, ctx())
    dead = aws.probe(node)
    assert dead.live is False and dead.signal == "list_access_keys: Inactive"
    aws.act("finalize", node, ctx())
    gone = aws.probe(node)
    assert gone.live is False and gone.signal == "list_access_keys: absent (deleted)"
    unknown = aws.probe(key_node("AKIAUNKNOWN000000002"))
    assert unknown.live is False and "NoSuchEntity" in unknown.signal


def test_revoke_sessions(fresh: Any, aws: Any, lab: dict[str, Any]) -> None:
    role = Node(id=f"aws:role:{lab['role_arn']}", kind=NodeKind.ROLE, provider="aws")
    when = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)
    first = aws.act("revoke_sessions", role, ctx(now=when))
    assert first.changed and first.data == {"policy": "AWSRevokeOlderSessions", "cutoff": "2026-03-31T10:00:00Z"}
    doc = iam(fresh).get_role_policy(RoleName="deploy-role", PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    doc = doc if isinstance(doc, dict) else json.loads(doc)
    stmt = doc["Statement"][0]
    assert stmt["Effect"] == "Deny" and stmt["Action"] == ["*"] and stmt["Resource"] == ["*"]
    assert stmt["Condition"] == {"DateLessThan": {"aws:TokenIssueTime": "2026-03-31T10:00:00Z"}}
    # same incident, later clock: nothing to do
    assert not aws.act("revoke_sessions", role, ctx()).changed
    # another incident moves the cutoff forward
    assert aws.act("revoke_sessions", role, ctx("inc-2")).changed
    assert aws.act("rollback", role, ctx()).changed
    assert not aws.act("rollback", role, ctx()).changed
    names = iam(fresh).list_role_policies(RoleName="deploy-role")["PolicyNames"]
    assert "AWSRevokeOlderSessions" not in names


def cert(cert_id: str) -> Node:
    return Node(id=f"aws:iot_certificate:{cert_id}", kind=NodeKind.CERTIFICATE, provider="aws")


def iot_status(server: Any, cert_id: str) -> str:
    return lab_client("iot", server.endpoint_url).describe_certificate(certificateId=cert_id)[
        "certificateDescription"]["status"]


def test_iot_certificate_revoke_rollback_probe(fresh: Any, aws: Any, lab: dict[str, Any]) -> None:
    cid = lab["iot_certificate_ids"][0]
    assert aws.probe(cert(cid)).signal == "describe_certificate: ACTIVE"
    assert aws.act("revoke", cert(cid), ctx()).changed and iot_status(fresh, cid) == "REVOKED"
    assert not aws.act("revoke", cert(cid), ctx()).changed
    probe = aws.probe(cert(cid))
    assert probe.live is False and probe.signal == "describe_certificate: REVOKED"
    assert aws.act("rollback", cert(cid), ctx()).changed and iot_status(fresh, cid) == "ACTIVE"
    assert not aws.act("rollback", cert(cid), ctx()).changed


def test_iot_ca_replacement_then_reissue_under_it(fresh: Any, aws: Any, lab: dict[str, Any]) -> None:
    old_ca = Node(id=f"aws:iot_ca:{lab['iot_ca_id']}", kind=NodeKind.CA, provider="aws")
    new_ca = aws.create_replacement(old_ca, ctx())
    iot = lab_client("iot", fresh.endpoint_url)
    new_ca_id = new_ca.new_id.split(":")[-1]
    assert iot.describe_ca_certificate(certificateId=new_ca_id)["certificateDescription"]["status"] == "ACTIVE"
    cid = lab["iot_certificate_ids"][1]
    made = aws.create_replacement(cert(cid), ctx(replacements={old_ca.id: new_ca.new_id}))
    assert made.attrs["method"] == "signed by the new CA" and made.attrs["ca"] == new_ca_id
    new_cid = made.new_id.split(":")[-1]
    assert [c["certificateId"] for c in iot.list_certificates_by_ca(caCertificateId=new_ca_id)["certificates"]] == [
        new_cid]
    new_arn = iot.describe_certificate(certificateId=new_cid)["certificateDescription"]["certificateArn"]
    assert iot.list_principal_things(principal=new_arn)["things"] == made.attrs["things"] == ["device-0001"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=new_arn)["policies"]] == ["device-telemetry"]
    assert next(f.ref for f in recognize(made.material.get("certificate_pem") or "")).startswith("x509:cert:")
    # reissue is idempotent: the new certificate on the same thing counts
    again = aws.act("reissue", cert(cid), ctx())
    assert not again.changed and again.data["new_id"] == made.new_id
    assert aws.siblings(cert(cid)) == {made.new_id}
    # the old CA cannot be deleted while certificates it issued are ACTIVE
    assert aws.act("revoke", old_ca, ctx()).changed
    assert not aws.act("revoke", old_ca, ctx()).changed
    with pytest.raises(ConnectorError, match="still ACTIVE"):
        aws.act("finalize", old_ca, ctx())
    # discarding the replacement certificate detaches and deletes it
    assert aws.discard_replacement(made.new_id, ctx()).changed
    assert aws.probe(cert(new_cid)).signal == "describe_certificate: not found (deleted)"
    assert not aws.discard_replacement(made.new_id, ctx()).changed


def test_reissue_without_a_new_ca_uses_iot_keys(fresh: Any, aws: Any) -> None:
    iot = lab_client("iot", fresh.endpoint_url)
    made_old = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName="lonely")
    iot.attach_thing_principal(thingName="lonely", principal=made_old["certificateArn"])
    made = aws.create_replacement(cert(made_old["certificateId"]), ctx())
    assert made.attrs["method"] == "create_keys_and_certificate"
    assert made.attrs["things"] == ["lonely"] and made.attrs["policies"] == []
    assert aws.act("revoke", cert(made_old["certificateId"]), ctx()).changed
    assert aws.act("finalize", cert(made_old["certificateId"]), ctx()).changed
    assert not aws.act("finalize", cert(made_old["certificateId"]), ctx()).changed


def test_actions_log_no_secret_material(
    fresh: Any, aws: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    (key,) = new_user(fresh, "quiet", 1)
    made = aws.create_replacement(key_node(key, "quiet"), ctx())
    secret = made.material.get("secret_access_key") or ""
    out = capsys.readouterr()
    assert secret and secret not in out.out + out.err + caplog.text


def test_unsupported_action_is_refused(aws: Any) -> None:
    node = Node(id=f"aws:user:arn:aws:iam::{ACCOUNT_ID}:user/x", kind=NodeKind.USER, provider="aws")
    with pytest.raises(ConnectorError, match="not supported"):
        aws.act("revoke", node, ctx())
