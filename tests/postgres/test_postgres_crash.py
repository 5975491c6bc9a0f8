"""SIGKILL the executor between `ALTER ROLE ... PASSWORD` and the store writes (and between the two
store writes), resume, and judge by the servers: exactly one live password, the one every store
holds, and the old one refused. The password set before the crash died with the process: nobody
holds it, and the resumed run replaces it rather than leaving a store without a working value."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from connectors.postgres import scram
from connectors.postgres.ids import password_tag
from revoke.model import fingerprint
from tests.postgres.pg_incident import HOST, make
from tests.postgres.pg_testlib import can_login

# records the run appends after its plan: 1 run.start, 2-3 the token's revoke, 4 the rotation's
# intent, 5 `created` (the role has the new password), 6-7 `stored` (one per store)
KILLS = {5: "created", 6: "stored"}


def _last(directory: Path) -> tuple[str, str]:
    db = sqlite3.connect(directory / ".revoke" / "revoke.db")
    kind, data = db.execute("SELECT type, data FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return kind, json.loads(data).get("event", "")


@pytest.mark.parametrize("k", sorted(KILLS))
def test_resume_after_sigkill_leaves_one_live_password_everywhere(
        tmp_path: Path, postgres_lab: Any, bao: Any, revoke_cli: Any, k: int) -> None:
    lab = make(tmp_path, postgres_lab, bao)
    cli = {"cwd": lab.directory, "env": lab.env}
    assert revoke_cli("collect", **cli).returncode == 0
    crashed = revoke_cli("run", "playbook.yaml", "--node", HOST, "--incident", "c1", "--execute",
                         **{**cli, "env": {**lab.env, "REVOKE_FAULT_KILL_AFTER": str(k)}})
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr
    assert _last(lab.directory) == ("progress", KILLS[k])
    # the role's password changed in the crashed run: the old one is already refused
    assert not can_login(postgres_lab, lab.role, lab.old_password)

    resumed = revoke_cli("run", "playbook.yaml", "--incident", "c1", "--execute", **cli)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    live = lab.kv()["password"]
    assert lab.uri_password() == live != lab.old_password
    assert can_login(postgres_lab, lab.role, live) and not can_login(postgres_lab, lab.role, lab.old_password)
    # the one verifier the role has is the one made for the stored password
    with postgres_lab.admin() as conn:
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (lab.role,)).fetchone()[0]
    assert scram.read(verifier).tag == password_tag(fingerprint(live))
    verify = revoke_cli("verify", "--incident", "c1", "--format", "json", **cli)
    assert verify.returncode == 0 and verify.json()["clean"], verify.stdout
