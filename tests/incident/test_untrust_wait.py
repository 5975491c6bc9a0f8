"""A CA's retirement waits for every trust store to drop it: executed where revoke can rewrite the
store, attested by a person where it cannot. Judged by IoT's own CA status and the bundle file."""

from __future__ import annotations

import os

import boto3

from examples.lab.demo import RUNNER

PLAYBOOK = "compromised-ci-supply-chain"


def _ca_status(lb) -> str:
    iot = boto3.client("iot", endpoint_url=lb.aws_endpoint, region_name="us-east-1")
    return iot.describe_ca_certificate(certificateId=lb.seeds["aws"]["iot_ca_id"])["certificateDescription"]["status"]


def test_the_runner_bundle_loses_the_internal_ca_before_it_is_retired(revoke_cli, demo_lab) -> None:
    lb = demo_lab
    bundle = lb.directory / "pki" / "runner-trust" / "ca-bundle.pem"
    before = bundle.read_bytes()
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    run = revoke_cli("run", PLAYBOOK, "--node", RUNNER, "--incident", "t1", "--execute", "--approve", cwd=lb.directory)
    assert run.returncode == 0, run.stdout + run.stderr
    # the bundle kept its comment and the public root, and lost the internal CA; the CA is retired
    after = bundle.read_bytes()
    assert after.startswith(b"# the CI runner's CA bundle\n") and after.count(b"BEGIN CERTIFICATE") == 1
    assert before.count(b"BEGIN CERTIFICATE") == 2 and after in before
    assert _ca_status(lb) == "INACTIVE"


def test_retirement_waits_for_a_manual_untrust_until_it_is_attested(revoke_cli, demo_lab) -> None:
    lb = demo_lab
    # the runner's bundle is a link to a shared file: revoke may not rewrite it, a person must
    bundle = lb.directory / "pki" / "runner-trust" / "ca-bundle.pem"
    shared = lb.directory / "shared-ca-bundle.pem"
    os.replace(bundle, shared)
    os.symlink(shared, bundle)
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    args = ("run", PLAYBOOK, "--node", RUNNER, "--incident", "t2", "--execute", "--approve")
    run = revoke_cli(*args, cwd=lb.directory)
    assert run.returncode == 1, run.stdout + run.stderr
    waiting = [line for line in run.stdout.splitlines() if line.strip().startswith("WAITING retire_ca:aws:iot_ca:")]
    assert waiting and "waits for the attestation of" in waiting[0], run.stdout
    # the old CA is still ACTIVE in IoT: nothing went ahead of the person's part
    assert _ca_status(lb) == "ACTIVE"
    task = waiting[0].split("waits for the attestation of ", 1)[1].split(" ", 1)[0].rstrip(",")
    assert task.startswith("x509:ca:")  # the runner is compromised: the task sits on the CA it trusts

    assert revoke_cli("attest", "--incident", "t2", task, "--note", "removed from the shared bundle",
                      cwd=lb.directory).returncode == 0
    again = revoke_cli(*args, cwd=lb.directory)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _ca_status(lb) == "INACTIVE"
