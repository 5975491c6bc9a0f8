"""Verify accounts for every certificate a CA that revoke created has issued: a live one that no
journal records (a stray left by a crash, or signed outside revoke) makes it NOT CLEAN, by name.
Judged by IoT's own certificate list."""

from __future__ import annotations

import os

import boto3
import hvac

from examples.lab.demo import RUNNER, VAULT_TOKEN_ENV
from revoke.connector import escrow_item

ESCROW = "revoke-escrow"  # as examples/lab/demo.py configures it


def test_a_certificate_the_new_ca_signed_that_no_journal_records_is_named(demo_lab, revoke_cli) -> None:
    from connectors.pki import new_leaf

    lb = demo_lab
    old_ca = f"aws:iot_ca:{lb.seeds['aws']['iot_ca_id']}"
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    run = revoke_cli("run", "compromised-ci-supply-chain", "--node", RUNNER, "--incident", "fleet", "--execute",
                     "--approve", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    vault = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    ca_item = vault.secrets.kv.v2.read_secret_version(path=f"{ESCROW}/{escrow_item(old_ca)}",
                                                      raise_on_deleted_version=True)["data"]["data"]
    new_ca = ca_item["credential"]
    iot = boto3.client("iot", endpoint_url=lb.aws_endpoint, region_name="us-east-1")
    ca_pem = iot.describe_ca_certificate(certificateId=new_ca.split(":")[-1])["certificateDescription"]["certificatePem"]
    before = {c["certificateId"] for c in iot.list_certificates()["certificates"]}

    clean_reasons = revoke_cli("verify", "--incident", "fleet", "--format", "json", cwd=lb.directory).json()["reasons"]
    assert not [r for r in clean_reasons if "in no journal" in r], clean_reasons

    # what a crash between IoT's registration and the journal's `created` record leaves: a live
    # certificate signed by the new CA, attached to nothing, recorded nowhere
    device = iot.describe_certificate(certificateId=lb.seeds["aws"]["iot_certificate_ids"][0])
    stray_pem, _ = new_leaf(device["certificateDescription"]["certificatePem"], ca_pem, ca_item["private_key_pem"])
    stray = iot.register_certificate(certificatePem=stray_pem, caCertificatePem=ca_pem, setAsActive=True)["certificateId"]
    assert stray not in before
    v = revoke_cli("verify", "--incident", "fleet", "--format", "json", cwd=lb.directory)
    assert v.returncode == 1
    named = [r for r in v.json()["reasons"] if "in no journal" in r]
    assert len(named) == 1 and named[0].startswith(f"aws:iot_certificate:{stray}: live, issued by the new CA {new_ca}")
    text = revoke_cli("verify", "--incident", "fleet", cwd=lb.directory)
    assert text.returncode == 1 and f"aws:iot_certificate:{stray}" in text.stdout

    # revoked, it is no longer a live stray
    iot.update_certificate(certificateId=stray, newStatus="REVOKED")
    reasons = revoke_cli("verify", "--incident", "fleet", "--format", "json", cwd=lb.directory).json()["reasons"]
    assert not [r for r in reasons if "in no journal" in r], reasons
