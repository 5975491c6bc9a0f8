"""The lab seeding: what seed_demo creates, over HTTP and in memory, and how fast."""

from __future__ import annotations

from typing import Any

import pytest
from aws_testlib import iam

from examples.lab.aws_lab import lab_client, seed_demo
from examples.lab.pki import make_ca, pem, pem_key


@pytest.fixture(scope="module")
def ca() -> tuple[bytes, bytes]:
    cert, key = make_ca("Lab Test CA")
    return pem(cert).encode(), pem_key(key).encode()


def check(server: Any, seeded: dict[str, Any], devices: int) -> None:
    client = iam(server)
    assert {u["UserName"] for u in client.list_users()["Users"]} == {"ci-deployer", "app-backend", "data-pipeline"}
    assert len(client.list_access_keys(UserName="data-pipeline")["AccessKeyMetadata"]) == 2
    iot = lab_client("iot", server.endpoint_url)
    by_ca = iot.list_certificates_by_ca(caCertificateId=seeded["iot_ca_id"])["certificates"]
    assert sorted(c["certificateId"] for c in by_ca) == sorted(seeded["iot_certificate_ids"])
    assert len(seeded["iot_certificate_ids"]) == devices
    first = seeded["iot_certificate_ids"][0]
    arn = iot.describe_certificate(certificateId=first)["certificateDescription"]["certificateArn"]
    assert iot.list_principal_things(principal=arn)["things"] == ["device-0000"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]] == ["device-telemetry"]


def test_seed_over_http(fresh: Any, ca: tuple[bytes, bytes]) -> None:
    # `localhost` is not the in-process server's registered URL, so every call goes over HTTP
    url = fresh.endpoint_url.replace("127.0.0.1", "localhost")
    seeded = seed_demo(url, *ca, devices=3)
    check(fresh, seeded, 3)


def test_seed_demo_size_and_speed(fresh: Any, ca: tuple[bytes, bytes]) -> None:
    fresh.reset()
    seeded = seed_demo(fresh.endpoint_url, *ca, devices=200)
    check(fresh, seeded, 200)
    assert seeded["seconds"] < 5, seeded["seconds"]  # ~0.5 s measured on 2 cores
