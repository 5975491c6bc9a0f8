"""Opt-in crash sweep: `REVOKE_CRASH_SWEEP=40 pytest tests/reliability/test_crash_sweep.py`.

SIGKILLs `revoke run --execute` right after its k-th journal record, for a seeded sample of k in 2..59
(the run writes about 57 records with 5 devices), resumes, and judges by provider state: every old
credential dead, exactly one replacement each, every store holding it, and a clean verify. Each
point records which record the kill landed after; REVOKE_FIGURES collects them. The default CI run
keeps tests/incident/test_crash_resume.py's 8 points; this is the longer sweep."""

from __future__ import annotations

import json
import os
import random
import sqlite3
from pathlib import Path

import pytest

from examples.lab.demo import RUNNER, lab
from tests.incident.incident_testlib import manual_tasks
from tests.incident.provider_state import vault_kv
from tests.reliability.reliability_testlib import check_one_replacement_each, demo_incident_state, record_figures

PLAYBOOK = "compromised-ci-supply-chain"
COUNT = int(os.environ.get("REVOKE_CRASH_SWEEP", "0"))
SEED = int(os.environ.get("REVOKE_CRASH_SEED", "2024"))
POINTS = sorted(random.Random(SEED).sample(range(2, 60), min(COUNT, 58))) if COUNT else []


def _landing(store: Path) -> dict[str, str]:
    db = sqlite3.connect(store)
    seq, type_, action, data = db.execute("SELECT seq, type, action, data FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    stores = 0
    if action and action.startswith(("rotate:", "reissue:")):
        plan = json.loads(db.execute("SELECT data FROM journal WHERE type='plan'").fetchone()[0])
        step = next((s for s in plan["steps"] if s["id"] == action), {})
        stores = sum(1 for t in step.get("stores", []) if t["mode"] == "write")
    db.close()
    event = json.loads(data).get("event", "")
    return {"seq": seq, "after": f"{type_} {event}".strip(), "verb": (action or "").split(":", 1)[0],
            "between_created_and_stored": event == "created" and stores > 0}


@pytest.mark.skipif(not POINTS, reason="opt-in: set REVOKE_CRASH_SWEEP=N")
@pytest.mark.parametrize("k", POINTS)
def test_kill_resume_verify(revoke_cli, tmp_path: Path, k: int) -> None:
    with lab(tmp_path / "lab", devices=5) as lb:
        assert revoke_cli("collect", cwd=lb.directory).returncode == 0
        crashed = revoke_cli("run", PLAYBOOK, "--node", RUNNER, "--incident", "c1", "--execute", "--approve",
                             env={"REVOKE_FAULT_KILL_AFTER": str(k)}, cwd=lb.directory)
        assert crashed.returncode in (-9, 0), crashed.stderr
        landing = _landing(lb.directory / ".revoke" / "revoke.db") if crashed.returncode == -9 else {"after": "completed"}
        resumed = revoke_cli("run", PLAYBOOK, "--incident", "c1", "--execute", cwd=lb.directory)
        record_figures("crash_sweep", {"k": k, **landing, "resume_rc": resumed.returncode})
        assert resumed.returncode == 0, (landing, resumed.stdout, resumed.stderr)
        state = demo_incident_state(lb)
        check_one_replacement_each(state)
        gcp_new = next(kid for kid, on in state["gcp"].items() if on)
        assert gcp_new in json.dumps(vault_kv(lb, "ci/gcp-deployer")), landing
        assert revoke_cli("attest", "--incident", "c1", *manual_tasks(lb, "c1"), "--note", "DBA",
                          cwd=lb.directory).returncode == 0
        verify = revoke_cli("verify", "--incident", "c1", cwd=lb.directory)
        assert verify.returncode == 0, (landing, verify.stdout)
