"""Provider faults during an incident: transient ones are retried until the run completes;
a permanent one leaves the incident open, verify names it, and a later re-run finishes."""

from __future__ import annotations

import json
import os

import grpc
import hvac

from examples.lab.demo import RUNNER, VAULT_TOKEN_ENV
from tests.incident.incident_testlib import manual_tasks

PLAYBOOK = "compromised-ci-supply-chain"


def test_transient_faults_are_retried(revoke_cli, demo_lab) -> None:
    lb = demo_lab
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    lb.gcp.fail_next("CreateServiceAccountKey", grpc.StatusCode.UNAVAILABLE, times=2)
    lb.gcp.fail_next("DisableServiceAccountKey", grpc.StatusCode.RESOURCE_EXHAUSTED, times=2)
    # a real OpenBao rate-limit quota: 429s on token calls
    root = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    root.adapter.post("/v1/sys/quotas/rate-limit/tight", json={"rate": 2, "interval": "1s", "path": "auth/token"})
    run = revoke_cli("run", PLAYBOOK, "--node", RUNNER, "--incident", "f1", "--execute", "--approve", cwd=lb.directory)
    root.delete("sys/quotas/rate-limit/tight")
    assert run.returncode == 0, run.stdout + run.stderr
    retries = int(run.stdout.split(" retries")[0].rsplit(" ", 1)[-1])
    assert retries >= 4, run.stdout
    assert revoke_cli("attest", "--incident", "f1", *manual_tasks(lb, "f1"), "--note", "rotated by the DBA",
                      cwd=lb.directory).returncode == 0
    assert revoke_cli("verify", "--incident", "f1", cwd=lb.directory).returncode == 0


def test_permanent_failure_leaves_incident_open(revoke_cli, demo_lab) -> None:
    lb = demo_lab
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    lb.gcp.deny("CreateServiceAccountKey")
    run = revoke_cli("run", PLAYBOOK, "--node", RUNNER, "--incident", "f2", "--execute", "--approve", cwd=lb.directory)
    assert run.returncode == 1
    assert "FAILED rotate:gcp:service_account_key:" in run.stdout and "PERMISSION_DENIED" in run.stdout.upper()
    assert revoke_cli("attest", "--incident", "f2", *manual_tasks(lb, "f2"), "--note", "rotated by the DBA",
                      cwd=lb.directory).returncode == 0
    ver = revoke_cli("verify", "--incident", "f2", "--format", "json", cwd=lb.directory)
    assert ver.returncode == 1
    body = json.loads(ver.stdout)
    assert any(s.startswith("rotate:gcp:service_account_key:") for s in body["failed_steps"])
    # the key stays live: its probe says so, even though its only path (the revoked token) is dead
    assert any(p["node"] == lb.seeds["gcp_key"] and p["live"] is True for p in body["probes"])
    lb.gcp.clear_faults()
    again = revoke_cli("run", PLAYBOOK, "--incident", "f2", "--execute", cwd=lb.directory)
    assert again.returncode == 0, again.stdout
    assert revoke_cli("verify", "--incident", "f2", cwd=lb.directory).returncode == 0
