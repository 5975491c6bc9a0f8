"""IoT call budgets against moto: what a reissue and a collection cost per device, counted at the
SDK (`before-call`), with the provider's state read back."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from aws_testlib import ctx, dump, make_connector

from connectors.aws.iot_known import KNOWN
from connectors.pki import load_pem
from examples.lab.aws_lab import lab_client, seed_demo
from examples.lab.pki import make_ca, pem, pem_key
from revoke.connector import ConnectorError
from revoke.model import Node, NodeKind


@pytest.fixture(scope="module")
def lab(fresh: Any) -> dict[str, Any]:
    ca, ca_key = make_ca("Call Budget CA")
    return seed_demo(fresh.endpoint_url, pem(ca).encode(), pem_key(ca_key).encode(), devices=3)


def counted(aws: Any) -> Counter[str]:
    """Every IoT operation the connector sends from now on, by name."""
    calls: Counter[str] = Counter()
    for attempts in (None, 1):
        client = aws.accounts[0].client("iot", attempts=attempts)
        client.meta.events.register("before-call.iot", lambda model, **_: calls.update([model.name]))
    return calls


def device(iot: Any, cid: str, ca_id: str) -> Node:
    arn = iot.describe_certificate(certificateId=cid)["certificateDescription"]["certificateArn"]
    return Node(id=f"aws:iot_certificate:{cid}", kind=NodeKind.CERTIFICATE, provider="aws", status="active",
                attrs={"arn": arn, "ca": ca_id})


def test_a_reissue_under_a_new_ca_costs_eight_iot_calls_seven_after_a_collection(fresh: Any, lab: dict[str, Any]) -> None:
    aws = make_connector(fresh)
    iot = lab_client("iot", fresh.endpoint_url)
    old_ca = Node(id=f"aws:iot_ca:{lab['iot_ca_id']}", kind=NodeKind.CA, provider="aws")
    new_ca = aws.create_replacement(old_ca, ctx())
    KNOWN.forget_all()  # a run in a process that never collected: the old PEM is described
    calls = counted(aws)
    node = device(iot, lab["iot_certificate_ids"][0], lab["iot_ca_id"])
    # what the executor does for one device: siblings, the replacement, then the old one's revoke
    assert aws.siblings(node) == set()
    made = aws.create_replacement(node, ctx(replacements={old_ca.id: new_ca.new_id}))
    calls.pop("DescribeCACertificate", None)  # the new CA's PEM, read once per run
    assert aws.act("revoke", node, ctx(options={"first_attempt": True})).changed
    assert dict(calls) == {"ListPrincipalThings": 1, "ListThingPrincipals": 1, "DescribeCertificate": 1,
                           "RegisterCertificate": 1, "ListAttachedPolicies": 1, "AttachThingPrincipal": 1,
                           "AttachPolicy": 1, "UpdateCertificate": 1}
    # provider state: the replacement holds the old certificate's thing and policy, the old one is revoked
    new_cid = made.new_id.split(":")[-1]
    new_arn = iot.describe_certificate(certificateId=new_cid)["certificateDescription"]["certificateArn"]
    assert iot.list_principal_things(principal=new_arn)["things"] == made.attrs["things"] == ["device-0000"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=new_arn)["policies"]] == ["device-telemetry"]
    assert iot.describe_certificate(certificateId=node.id.split(":")[-1])["certificateDescription"][
        "status"] == "REVOKED"
    # after a collection in this process (the demo, `revoke run` collecting first): no describe,
    # the old certificate was seen attached to its thing by siblings, its PEM is known
    aws.collect()
    calls.clear()
    other = device(iot, lab["iot_certificate_ids"][1], lab["iot_ca_id"])
    assert aws.siblings(other) == set()
    made = aws.create_replacement(other, ctx(replacements={old_ca.id: new_ca.new_id}))
    assert aws.act("revoke", other, ctx(options={"first_attempt": True})).changed
    calls.pop("DescribeCACertificate", None)
    assert sum(calls.values()) == 7 and "DescribeCertificate" not in calls, calls
    assert made.attrs["method"] == "signed by the new CA" and made.attrs["things"] == ["device-0001"]
    assert load_pem(made.material.get("certificate_pem") or "").subject == load_pem(
        lab["iot_certificate_pems"][lab["iot_certificate_ids"][1]]).subject


def test_a_certificate_deleted_since_it_was_known_is_not_reissued(fresh: Any) -> None:
    iot = lab_client("iot", fresh.endpoint_url)
    gone = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName="gone-thing")
    iot.attach_thing_principal(thingName="gone-thing", principal=gone["certificateArn"])
    aws = make_connector(fresh)
    aws.collect()  # its PEM is known from here on
    iot.detach_thing_principal(thingName="gone-thing", principal=gone["certificateArn"])
    iot.update_certificate(certificateId=gone["certificateId"], newStatus="INACTIVE")
    iot.delete_certificate(certificateId=gone["certificateId"])
    node = Node(id=f"aws:iot_certificate:{gone['certificateId']}", kind=NodeKind.CERTIFICATE, provider="aws",
                status="active", attrs={"arn": gone["certificateArn"]})
    assert aws.siblings(node) == set()
    with pytest.raises(ConnectorError, match="certificate not found"):
        aws.create_replacement(node, ctx())
    assert not [c for c in iot.list_certificates()["certificates"] if c["status"] == "ACTIVE"
                and c["certificateId"] not in {gone["certificateId"]}
                and iot.list_principal_things(principal=c["certificateArn"])["things"] == ["gone-thing"]]


def test_siblings_read_is_used_once_and_only_for_its_own_node(fresh: Any, lab: dict[str, Any]) -> None:
    aws = make_connector(fresh)
    iot = lab_client("iot", fresh.endpoint_url)
    one, two = (device(iot, cid, lab["iot_ca_id"]) for cid in lab["iot_certificate_ids"][1:3])
    aws.siblings(one)
    calls = counted(aws)
    made = aws.create_replacement(two, ctx())  # another node: its own things, read live
    assert calls["ListPrincipalThings"] == 1 and made.attrs["things"] == ["device-0002"]
    made = aws.create_replacement(one, ctx())  # the siblings read of `one`, taken
    assert calls["ListPrincipalThings"] == 1 and made.attrs["things"] == ["device-0001"]
    aws.create_replacement(one, ctx())  # taken once: a second replacement reads again
    assert calls["ListPrincipalThings"] == 2


def test_a_collection_lists_principals_in_the_direction_with_fewer_calls(fresh: Any, lab: dict[str, Any]) -> None:
    iot = lab_client("iot", fresh.endpoint_url)
    for i in range(30):  # things without certificates (provisioned, not yet enrolled)
        iot.create_thing(thingName=f"spare-{i:02d}")
    KNOWN.forget_all()  # nothing known from earlier tests: every active certificate is described
    aws = make_connector(fresh)
    calls = counted(aws)
    got = aws.collect()
    certs = iot.list_certificates()["certificates"]
    active = [c for c in certs if c["status"] == "ACTIVE"]
    assert calls["DescribeCertificate"] == len(active)
    # a second collection in this process describes none of them again, and sees the same graph
    calls.clear()
    again = aws.collect()
    assert calls["DescribeCertificate"] == 0
    assert dump(again) == dump(got)
    assert calls["ListThingPrincipals"] + calls["ListPrincipalThings"] == min(len(certs), 33)
    # the same edges either way: every certificate a thing holds authenticates as that thing
    edges = {(e.src, e.dst) for e in got.edges if e.rel.value == "authenticates_as" and "iot_thing" in e.dst}
    expected = {(f"aws:iot_certificate:{p.rsplit('/', 1)[-1]}", f"aws:iot_thing:{t}")
                for t in [f"device-{i:04d}" for i in range(3)]
                for p in iot.list_thing_principals(thingName=t)["principals"]}
    assert edges == expected and len(expected) >= 3


def test_the_next_collection_does_not_describe_what_a_reissue_registered(fresh: Any, lab: dict[str, Any]) -> None:
    iot = lab_client("iot", fresh.endpoint_url)
    aws = make_connector(fresh)
    aws.collect()  # every certificate there is now is known
    old_ca = Node(id=f"aws:iot_ca:{lab['iot_ca_id']}", kind=NodeKind.CA, provider="aws")
    new_ca = aws.create_replacement(old_ca, ctx())
    node = device(iot, lab["iot_certificate_ids"][2], lab["iot_ca_id"])
    made = aws.create_replacement(node, ctx(replacements={old_ca.id: new_ca.new_id}))
    aws.remember_created({new_ca.new_id})
    calls = counted(aws)
    got = aws.collect()
    new_cid = made.new_id.split(":")[-1]
    assert calls["DescribeCertificate"] == 0
    # what the graph says of the new certificate matches the provider: its CA signed it (IoT's
    # link and the signature), the x509 id of its PEM is its alias, its expiry is the certificate's
    new = next(n for n in got.nodes if n.id == made.new_id)
    pem_text = iot.describe_certificate(certificateId=new_cid)["certificateDescription"]["certificatePem"]
    assert new.status == "active" and new.expires == load_pem(pem_text).not_valid_after_utc
    edges = {(e.src, e.rel.value, str(e.attrs.get("signature", ""))) for e in got.edges if e.dst == made.new_id}
    assert (new_ca.new_id, "issued", "verified") in edges
    assert any(src.startswith("x509:cert:") and rel == "derives" for src, rel, _ in edges)
