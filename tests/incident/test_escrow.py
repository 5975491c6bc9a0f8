"""Replacement material is delivered, never discarded: the escrow, or no replacement at all.

Judged by the providers' own state: IAM's access keys, IoT's certificates and CAs, and what the
escrow (a KV v2 path of the lab's OpenBao) holds.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

import boto3
import hvac
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from examples.lab.demo import RUNNER, VAULT_TOKEN_ENV
from revoke.connector import escrow_item
from tests.incident.provider_state import aws_keys, sm_secret, vault_kv

ESCROW = "revoke-escrow"  # under the lab's KV v2 mount `secret`, as examples/lab/demo.py configures it


def _vault(lb: Any) -> Any:
    return hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])


def _iot(lb: Any) -> Any:
    return boto3.client("iot", endpoint_url=lb.aws_endpoint, region_name="us-east-1")


def _escrow_item(lb: Any, old_id: str) -> dict[str, Any] | None:
    """The escrowed replacement of `old_id`: its own item, or its member of a fleet's batch item."""
    try:
        return vault_kv(lb, f"{ESCROW}/{escrow_item(old_id)}")
    except hvac.exceptions.InvalidPath:
        pass
    for name in _escrow_items(lb):
        data = vault_kv(lb, f"{ESCROW}/{name}")
        member = (data.get("members") or {}).get(escrow_item(old_id))
        if data.get("batch") == "members" and member:
            return dict(member)
    return None


def _escrow_items(lb: Any) -> list[str]:
    try:
        return list(_vault(lb).secrets.kv.v2.list_secrets(path=ESCROW)["data"]["keys"])
    except hvac.exceptions.InvalidPath:
        return []


def _without_escrow(lb: Any) -> None:
    config = yaml.safe_load(lb.config.read_text())
    config.pop("escrow", None)
    lb.config.write_text(yaml.safe_dump(config, sort_keys=False))


def _held_key_ids(lb: Any) -> set[str]:
    """Every access key id some store or the escrow holds, read from the stores themselves."""
    held = {vault_kv(lb, "ci/aws-app")["aws_access_key_id"], sm_secret(lb, "prod/pipeline")["aws_access_key_id"]}
    for name in _escrow_items(lb):
        held.add(str(vault_kv(lb, f"{ESCROW}/{name}").get("access_key_id", "")))
    return held


def _orphans(lb: Any, before: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Active keys made since `before` that nobody can use: no store and no escrow holds them."""
    held = _held_key_ids(lb)
    out = {}
    for user, keys in aws_keys(lb).items():
        made = [k for k, s in keys.items() if s == "Active" and k not in before[user] and k not in held]
        if made:
            out[user] = made
    return out


def _plan(revoke_cli: Any, lb: Any, playbook: str, node: str) -> dict[str, Any]:
    res = revoke_cli("plan", playbook, "--node", node, "--format", "json", cwd=lb.directory)
    assert res.returncode == 0, res.stdout + res.stderr
    return dict(res.json())


def test_without_an_escrow_a_key_only_its_compromised_host_held_is_contained_not_replaced(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    _without_escrow(lb)
    runner_key = lb.seeds["runner_key"]
    key_id = runner_key.split(":")[-1]
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    steps = {s["id"]: s for s in _plan(revoke_cli, lb, "compromised-ci-supply-chain", RUNNER)["steps"]}
    assert f"disable:{runner_key}" in steps and f"rotate:{runner_key}" not in steps
    task = steps[f"reprovision:{runner_key}->{RUNNER}"]
    assert task["verb"] == "manual" and task["node"] == runner_key  # never the compromised host itself
    assert task["reason"] == f"{runner_key} was contained, not replaced: issue a new one when you re-provision {RUNNER}"

    before = aws_keys(lb)
    run = revoke_cli("run", "leaked-aws-key", "--node", runner_key, "--incident", "leak", "--execute", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"issue a new one when you re-provision {RUNNER}" in run.stdout
    # the provider's own state: the leaked key is Inactive, and no new key was minted for nobody
    assert aws_keys(lb)["ci-deployer"] == {key_id: "Inactive"}
    assert _orphans(lb, before) == {}
    assert _escrow_items(lb) == []


def test_the_escrow_receives_what_no_store_may(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    runner_key = lb.seeds["runner_key"]
    key_id = runner_key.split(":")[-1]
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    steps = {s["id"]: s for s in _plan(revoke_cli, lb, "leaked-aws-key", runner_key)["steps"]}
    rotate = steps[f"rotate:{runner_key}"]
    where = f"vault:secret/{ESCROW}/{escrow_item(runner_key)}"
    assert rotate["escrow"]["where"] == where
    # the runner is not a source here: its re-provisioning is a task on the host, naming the escrow
    task = steps[f"distribute:{runner_key}->{RUNNER}"]
    assert task["node"] == RUNNER and where in task["reason"]

    before = aws_keys(lb)
    run = revoke_cli("run", "leaked-aws-key", "--node", runner_key, "--incident", "leak", "--execute", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    keys = aws_keys(lb)["ci-deployer"]
    new_id = next(k for k, s in keys.items() if s == "Active")
    assert keys[key_id] == "Inactive" and len(keys) == 2
    item = _escrow_item(lb, runner_key)
    assert item is not None and item["access_key_id"] == new_id and item["replaces"] == runner_key
    assert item["credential"] == f"aws:access_key:{new_id}"
    assert _orphans(lb, before) == {}

    # the journal has the item and the fingerprint, never the value; so has the report
    db = sqlite3.connect(lb.directory / ".revoke" / "revoke.db")
    rows = [json.loads(d) for (d,) in db.execute("SELECT data FROM journal WHERE type='progress'")]
    raw = b"".join(bytes(r[0], "utf-8") for r in db.execute("SELECT data FROM journal"))
    db.close()
    escrowed = [r for r in rows if r.get("event") == "escrowed"]
    assert [(r["escrow"], r["new"]) for r in escrowed] == [(where, f"aws:access_key:{new_id}")]
    assert escrowed[0]["fingerprint"].startswith("sha256:")
    assert item["secret_access_key"].encode() not in raw
    report = revoke_cli("report", "--incident", "leak", "--format", "json", cwd=lb.directory).json()
    assert [(x["escrow"], x["new"], x["escrowed"]) for x in report["escrowed"]] == [
        (where, f"aws:access_key:{new_id}", True)]
    assert report["escrowed"][0]["deliver_to"] == [{"task": f"distribute:{runner_key}->{RUNNER}", "node": RUNNER,
                                                     "attested": False}]
    md = revoke_cli("report", "--incident", "leak", "--format", "md", cwd=lb.directory).stdout
    assert "## Escrowed" in md and where in md and item["secret_access_key"] not in md

    # verify reads the escrow back: an item lost out of band is a reason the incident is not clean
    _vault(lb).secrets.kv.v2.delete_metadata_and_all_versions(path=f"{ESCROW}/{escrow_item(runner_key)}")
    v = revoke_cli("verify", "--incident", "leak", "--format", "json", cwd=lb.directory)
    assert v.returncode == 1
    assert f"the escrow {where} does not hold the replacement aws:access_key:{new_id}" in v.json()["reasons"]


def test_a_secrets_manager_escrow_receives_it_too(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    config = yaml.safe_load(lb.config.read_text())
    config["escrow"] = {"type": "aws", "prefix": "revoke/escrow/"}
    lb.config.write_text(yaml.safe_dump(config, sort_keys=False))
    runner_key = lb.seeds["runner_key"]
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    before = aws_keys(lb)
    run = revoke_cli("run", "leaked-aws-key", "--node", runner_key, "--incident", "leak", "--execute", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    name = f"revoke/escrow/{escrow_item(runner_key)}"
    assert f"aws:secretsmanager:{name}" in run.stdout
    new_id = next(k for k, s in aws_keys(lb)["ci-deployer"].items() if s == "Active")
    item = sm_secret(lb, name)
    assert item["access_key_id"] == new_id and item["replaces"] == runner_key and item["secret_access_key"]
    assert _escrow_items(lb) == []  # nothing went to Vault
    assert new_id not in before["ci-deployer"]
    v = revoke_cli("verify", "--incident", "leak", "--format", "json", cwd=lb.directory)
    assert not [r for r in v.json()["reasons"] if "does not hold" in r or "cannot read" in r], v.json()["reasons"]


def _public(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_public(pem: str) -> bytes:
    return serialization.load_pem_private_key(pem.encode(), password=None).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_reissued_device_certificates_and_the_new_ca_key_reach_the_escrow(demo_lab, revoke_cli) -> None:
    from revoke.graph import GraphView
    from revoke.store import Store

    lb = demo_lab
    old_ca = f"aws:iot_ca:{lb.seeds['aws']['iot_ca_id']}"
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    run = revoke_cli("run", "compromised-ci-supply-chain", "--node", RUNNER, "--incident", "fleet", "--execute",
                     "--approve", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    iot = _iot(lb)
    state = {c["certificateId"]: c["status"] for c in iot.list_certificates()["certificates"]}
    ca_item = _escrow_item(lb, old_ca)
    assert ca_item is not None
    new_ca_id = ca_item["credential"].split(":")[-1]
    new_ca = iot.describe_ca_certificate(certificateId=new_ca_id)["certificateDescription"]
    assert new_ca["status"] == "ACTIVE" and _key_public(ca_item["private_key_pem"]) == _public(new_ca["certificatePem"])

    things = lb.seeds["aws"]["things"]
    new_certs = []
    for i, old_id in enumerate(lb.seeds["aws"]["iot_certificate_ids"]):
        old = f"aws:iot_certificate:{old_id}"
        assert state[old_id] == "REVOKED"
        item = _escrow_item(lb, old)
        assert item is not None, old
        new_id = item["credential"].split(":")[-1]
        new_certs.append(new_id)
        # IoT's own record: active, on the device's thing, signed by the new CA; the escrowed key is its key
        desc = iot.describe_certificate(certificateId=new_id)["certificateDescription"]
        assert desc["status"] == "ACTIVE" and desc["certificatePem"] == item["certificate_pem"]
        assert _key_public(item["private_key_pem"]) == _public(desc["certificatePem"])
        assert desc["certificateArn"] in iot.list_thing_principals(thingName=things[i])["principals"]
    # the fleet shares one item (5 devices, up to 25 per item), written in fewer writes than devices
    fleet = [n for n in _escrow_items(lb) if "-certificates-" in n]
    assert fleet == [f"{escrow_item(old_ca)}-certificates-0000"]
    versions = _vault(lb).secrets.kv.v2.read_secret_metadata(path=f"{ESCROW}/{fleet[0]}")["data"]["current_version"]
    assert len(vault_kv(lb, f"{ESCROW}/{fleet[0]}")["members"]) == len(things) and versions < len(things)
    # one manual task per device, naming its thing and its escrow item
    plan = json.loads(sqlite3.connect(lb.directory / ".revoke" / "revoke.db").execute(
        "SELECT data FROM journal WHERE incident='fleet' AND type='plan'").fetchone()[0])
    tasks = {s["node"]: s["reason"] for s in plan["steps"] if s["verb"] == "manual" and s["id"].startswith("distribute:")}
    for i, old_id in enumerate(lb.seeds["aws"]["iot_certificate_ids"]):
        reason = tasks[f"aws:iot_thing:{things[i]}"]
        assert reason.startswith("deliver the new certificate and key of ")
        assert escrow_item(f"aws:iot_certificate:{old_id}") in reason
    report = revoke_cli("report", "--incident", "fleet", "--format", "md", cwd=lb.directory).stdout
    assert f"### certificate ({len(things)})" in report and "### ca (1)" in report
    # verify reads the new CA's key back from the escrow too
    _vault(lb).secrets.kv.v2.delete_metadata_and_all_versions(path=f"{ESCROW}/{escrow_item(old_ca)}")
    reasons = revoke_cli("verify", "--incident", "fleet", "--format", "json", "--no-collect",
                         cwd=lb.directory).json()["reasons"]
    assert [r for r in reasons if f"does not hold the replacement aws:iot_ca:{new_ca_id}" in r], reasons

    # the next collection finds the CA revoke created and links every new certificate to it
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    store = Store(lb.store_url)
    view = GraphView(store.load_compiled())
    for new_id in new_certs:
        assert view.preds(f"aws:iot_certificate:{new_id}", "issued") == [f"aws:iot_ca:{new_ca_id}"], new_id
    store.close()


def test_without_an_escrow_no_ca_and_no_device_key_is_made(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    _without_escrow(lb)
    old_ca = f"aws:iot_ca:{lb.seeds['aws']['iot_ca_id']}"
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    steps = _plan(revoke_cli, lb, "compromised-ci-supply-chain", RUNNER)["steps"]
    verbs = {(s["verb"], s["node"]) for s in steps}
    assert ("create_ca", old_ca) not in verbs and ("retire_ca", old_ca) in verbs
    certs = [s for s in steps if s["kind"] == "certificate" and s["provider"] == "aws"]
    assert {s["verb"] for s in certs} == {"revoke"} and not any(s["reversible"] for s in certs)
    things = [s["node"] for s in steps if s["id"].startswith("reprovision:aws:iot_certificate:")]
    assert sorted(things) == sorted(f"aws:iot_thing:{t}" for t in lb.seeds["aws"]["things"])

    before = {c["certificateId"] for c in _iot(lb).list_certificates()["certificates"]}
    keys_before = aws_keys(lb)
    run = revoke_cli("run", "compromised-ci-supply-chain", "--node", RUNNER, "--incident", "fleet", "--execute",
                     "--approve", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    after = {c["certificateId"]: c["status"] for c in _iot(lb).list_certificates()["certificates"]}
    assert set(after) == before  # nothing new registered in IoT
    assert all(after[c] == "REVOKED" for c in lb.seeds["aws"]["iot_certificate_ids"])
    assert _orphans(lb, keys_before) == {} and _escrow_items(lb) == []


@pytest.mark.parametrize(("block", "field"), [
    ({"type": "vault", "path": "secret/x", "pth": "y"}, "pth: unknown key"),
    ({"type": "vault"}, "path: Field required"),
    ({"type": "s3", "bucket": "b"}, "field type"),
    # the whole-file credential scan refuses it first, at its own line, wherever it sits
    ({"type": "aws", "prefix": "revoke/escrow/", "secret_access_key": "x"},
     "revoke.yaml:9: field 'secret_access_key': credentials are taken by reference only"),
    ({"type": "aws", "prefix": "bad prefix!"}, "prefix"),
    ({"type": "aws", "prefix": "p/", "connector": "nope"}, "no `type: aws` connector named 'nope'"),
])
def test_a_bad_escrow_block_is_refused_with_its_line(tmp_path, revoke_cli, block: dict[str, Any], field: str) -> None:
    (tmp_path / "inventory.yaml").write_text("nodes: []\nedges: []\n")
    config = {"connectors": [{"type": "inventory", "path": "inventory.yaml"},
                             {"type": "aws", "endpoint_url": "http://127.0.0.1:9"}], "escrow": block}
    (tmp_path / "revoke.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    res = revoke_cli("collect", cwd=tmp_path, in_process=True)
    line = res.error_line()
    assert "revoke.yaml:" in line and field in line, line
    if "secret_access_key" not in block:
        assert "escrow" in line, line
    assert not (tmp_path / ".revoke").exists() or not any((tmp_path / ".revoke").iterdir())



@pytest.mark.parametrize("k", [4, 5, 6, 7, 8, 9])
def test_an_escrowed_rotation_resumes_after_sigkill_with_one_replacement_held(demo_lab, revoke_cli, k: int) -> None:
    """SIGKILL after the k-th journal record (around created / escrowed / retired), resume: exactly
    one new key, Active, and it is the one the escrow holds; the leaked key Inactive."""
    lb = demo_lab
    runner_key = lb.seeds["runner_key"]
    key_id = runner_key.split(":")[-1]
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    crashed = revoke_cli("run", "leaked-aws-key", "--node", runner_key, "--incident", "c", "--execute",
                         env={"REVOKE_FAULT_KILL_AFTER": str(k)}, cwd=lb.directory)
    assert crashed.returncode in (-9, 0), crashed.stderr
    resumed = revoke_cli("run", "leaked-aws-key", "--incident", "c", "--execute", cwd=lb.directory)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    keys = aws_keys(lb)["ci-deployer"]
    active = [kid for kid, s in keys.items() if s == "Active"]
    assert keys[key_id] == "Inactive" and len(active) == 1, (k, keys)
    item = _escrow_item(lb, runner_key)
    assert item is not None and item["access_key_id"] == active[0], k
    v = revoke_cli("verify", "--incident", "c", "--format", "json", cwd=lb.directory)
    assert not [r for r in v.json()["reasons"] if "does not hold" in r or "cannot read" in r], v.json()["reasons"]
