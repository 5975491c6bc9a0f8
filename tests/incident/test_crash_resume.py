"""SIGKILL the executor after its k-th journal record, resume, and judge by provider state:
no credential left live, no extra replacement, every store holding exactly the new value."""

from __future__ import annotations

import json
import os
import random
import sqlite3

import pytest

from examples.lab.demo import RUNNER
from tests.incident.provider_state import aws_keys, gcp_keys, sm_secret, vault_kv

PLAYBOOK = "compromised-ci-supply-chain"
# spread over the whole run (about 60 records), plus a seeded sample; REVOKE_CRASH_POINTS widens it
_EXTRA = int(os.environ.get("REVOKE_CRASH_POINTS", "0"))
KILL_POINTS = sorted({4, 7, 10, 13, 17, 22, 28, 35, *random.Random(7).sample(range(3, 70), _EXTRA)})


def _last_record(lb) -> tuple[str, str]:
    db = sqlite3.connect(lb.directory / ".revoke" / "revoke.db")
    row = db.execute("SELECT type, data FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return row[0], json.loads(row[1]).get("event", "")


@pytest.mark.parametrize("k", KILL_POINTS)
def test_resume_after_sigkill(revoke_cli, demo_lab, k: int) -> None:
    lb = demo_lab
    assert revoke_cli("collect", cwd=lb.directory).returncode == 0
    before = aws_keys(lb)
    crashed = revoke_cli("run", PLAYBOOK, "--node", RUNNER, "--incident", "c1", "--execute", "--approve",
                         env={"REVOKE_FAULT_KILL_AFTER": str(k)}, cwd=lb.directory)
    assert crashed.returncode in (-9, 0), crashed.stderr
    killed_after = _last_record(lb) if crashed.returncode == -9 else ("completed", "")
    resumed = revoke_cli("run", PLAYBOOK, "--incident", "c1", "--execute", cwd=lb.directory)
    assert resumed.returncode == 0, f"killed after {killed_after}: {resumed.stdout}{resumed.stderr}"

    after = aws_keys(lb)
    for user, old_keys in before.items():
        reachable_old = [kid for kid in old_keys if after.get(user, {}).get(kid) in ("Active",)]
        new = [kid for kid in after[user] if kid not in old_keys]
        if user == "data-pipeline":
            # one of its two keys is reachable (in the secret), the other not: exactly one new key
            assert len(new) == 1, (killed_after, before, after)
            assert sm_secret(lb, "prod/pipeline")["aws_access_key_id"] == new[0]
            continue
        assert reachable_old == [], (killed_after, user, after)
        assert len(new) == 1 and after[user][new[0]] == "Active", (killed_after, user, after)
    app_new = next(k for k in after["app-backend"] if k not in before["app-backend"])
    stored = vault_kv(lb, "ci/aws-app")
    assert stored["aws_access_key_id"] == app_new, killed_after
    # GCP: the old key disabled, exactly one enabled replacement, and it is the one in Vault
    gkeys = gcp_keys(lb, "deployer@lab-project.iam.gserviceaccount.com")
    enabled = [kid for kid, on in gkeys.items() if on]
    assert len(enabled) == 1, (killed_after, gkeys)
    assert enabled[0] in json.dumps(vault_kv(lb, "ci/gcp-deployer")), killed_after
