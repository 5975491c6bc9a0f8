"""Containment before redistribution, with the wrong order made visible: the fault proxy holds
every containment call of the lab's readers back, and the journal's timestamps must still show
each replacement written only after every live reader of its store was cut off. A rotation
whose own old credential can read its store retires it before writing (`retire_first`)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3

from examples.lab.demo import RUNNER
from examples.lab.faultproxy import FaultPlan
from examples.lab.faulty_lab import lab_with_faults
from tests.incident.provider_state import sm_secret, vault_kv

HOLD = 1.5  # seconds each containment call of a reader is held back


def _journal(lb: Any, incident: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(lb.directory / ".revoke" / "revoke.db")
    rows = db.execute("SELECT seq, ts, type, action, data FROM journal WHERE incident=? ORDER BY seq", (incident,))
    out = [{"seq": s, "ts": ts, "type": t, "action": a, **json.loads(d)} for s, ts, t, a, d in rows]
    db.close()
    return out


def _writes(records: list[dict[str, Any]]) -> dict[str, str]:
    """store -> the time the write of it could start at the earliest: the record before it of
    the same rotation (a write is journaled `stored` once its call returned)."""
    out: dict[str, str] = {}
    last: dict[str, str] = {}
    for r in records:
        if r["type"] == "progress" and r.get("event") == "stored":
            out[r["store"]] = last[r["action"]]
        if r["action"]:
            last[r["action"]] = r["ts"]
    return out


def _contained(records: list[dict[str, Any]], step: str) -> str:
    """When a reader was cut off: its rotation's `retired` record, or its revoke's ok outcome."""
    for r in records:
        if r["action"] == step and (r.get("event") == "retired" or (r["type"] == "outcome" and r.get("ok"))):
            return str(r["ts"])
    raise AssertionError(f"{step} was never contained")


def test_no_store_is_written_before_every_reader_is_contained(tmp_path: Path, revoke_cli) -> None:
    held: dict[str, str] = {}

    def delay(method: str, path: str, body: bytes) -> float:
        # the readers' containment: the runner token's revoke (it reads secret/ci/aws-app) and
        # the disabling of app-backend's key (its user reads every prod/* secret)
        if path.startswith("/v1/auth/token/revoke-accessor"):
            return HOLD
        form = parse_qs(body.decode(errors="replace"))
        if form.get("Action") == ["UpdateAccessKey"] and form.get("AccessKeyId") == [held.get("app")]:
            return HOLD
        return 0.0

    with lab_with_faults(tmp_path / "lab", devices=2, plan=FaultPlan(rate=0.0, delay=delay)) as fl:
        lb = fl.lab
        app_key = vault_kv(lb, "ci/aws-app")["aws_access_key_id"]
        held["app"] = app_key
        assert revoke_cli("collect", cwd=lb.directory).returncode == 0
        run = revoke_cli("run", "compromised-ci-supply-chain", "--node", RUNNER, "--incident", "order", "--execute",
                         "--approve", cwd=lb.directory)
        assert run.returncode == 0, run.stdout + run.stderr
        records = _journal(lb, "order")
        writes = _writes(records)
        token_revoke = f"revoke:{lb.seeds['runner_token']}"
        app_rotation = f"rotate:aws:access_key:{app_key}"
        pipeline = next(s for s in writes if "secret:prod/pipeline" in s)
        # each store, and who could read it while the replacement went in
        readers = {"vault:secret:secret/ci/aws-app": [token_revoke], pipeline: [app_rotation]}
        for store, steps in readers.items():
            for step in steps:
                assert writes[store] >= _contained(records, step), (store, step, writes[store])
        # the hold was real: the token's revoke took at least HOLD seconds after its intent
        intent = next(r["ts"] for r in records if r["action"] == token_revoke and r["type"] == "intent")
        from datetime import datetime

        took = datetime.fromisoformat(_contained(records, token_revoke)) - datetime.fromisoformat(intent)
        assert took.total_seconds() >= HOLD


def test_a_key_that_reads_its_own_store_is_retired_before_the_write(demo_lab, revoke_cli) -> None:
    lb = demo_lab
    iam = boto3.client("iam", endpoint_url=lb.aws_endpoint, region_name="us-east-1")
    sm = boto3.client("secretsmanager", endpoint_url=lb.aws_endpoint, region_name="us-east-1")
    # a service whose key sits in a secret that the same key can read
    iam.create_user(UserName="reporter")
    iam.put_user_policy(UserName="reporter", PolicyName="read-own", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:svc/*"}]}))
    key = iam.create_access_key(UserName="reporter")["AccessKey"]
    sm.create_secret(Name="svc/reporter", SecretString=json.dumps({
        "aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}))
    node = f"aws:access_key:{key['AccessKeyId']}"
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    plan = revoke_cli("plan", "leaked-aws-key", "--node", node, "--format", "json", cwd=lb.directory).json()
    assert next(s for s in plan["steps"] if s["id"] == f"rotate:{node}")["retire_first"] is True

    run = revoke_cli("run", "leaked-aws-key", "--node", node, "--incident", "self", "--execute", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    events = [r.get("event") for r in _journal(lb, "self") if r["action"] == f"rotate:{node}" and r["type"] == "progress"]
    assert events == ["created", "retired", "stored"], events
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="reporter")["AccessKeyMetadata"]}
    new = sm_secret(lb, "svc/reporter")["aws_access_key_id"]
    assert keys == {key["AccessKeyId"]: "Inactive", new: "Active"}
