"""An incident through the CLI on the real servers, judged by real logins: collect, blast radius,
run --execute, verify. The host's Vault token is revoked first (it could read the secret the new
password goes to), the role's password is rotated, the secret rewritten in its own shape, and the
sessions opened with the old password end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.postgres.ids import password_id, role_id
from revoke.model import fingerprint
from tests.postgres.pg_incident import HOST, make
from tests.postgres.pg_testlib import SERVER, can_login, run_sql


def test_rotation_through_an_incident(tmp_path: Path, postgres_lab: Any, bao: Any, revoke_cli: Any) -> None:
    lab = make(tmp_path, postgres_lab, bao)
    cli = {"cwd": lab.directory, "env": lab.env}
    old_id = password_id(SERVER, lab.role, fingerprint(lab.old_password))
    assert revoke_cli("collect", **cli).returncode == 0

    radius = revoke_cli("blast-radius", HOST, "--format", "json", **cli).json()
    creds = {c["id"]: c for c in radius["credentials"]}
    assert creds[old_id]["provider"] == "postgres" and creds[old_id]["path"][-2] == f"vault:secret:secret/{lab.kv_path}"
    holders = {h["id"] for h in radius["holders"]}
    assert {role_id(SERVER, lab.role), role_id(SERVER, lab.group)} <= holders  # the role, then its group

    attacker = psycopg.connect(postgres_lab.uri(user=lab.role, password=lab.old_password), autocommit=True)
    run = revoke_cli("run", "playbook.yaml", "--node", HOST, "--incident", "i1", "--execute", **cli)
    assert run.returncode == 0, run.stdout + run.stderr

    stored = lab.kv()
    assert stored["password"] != lab.old_password and stored["note"] == "keep me"
    assert stored["username"] == lab.role and stored["host"] == "db.internal"
    assert lab.uri_password() == stored["password"]  # both stores, each in its own shape
    assert can_login(postgres_lab, lab.role, stored["password"])
    assert not can_login(postgres_lab, lab.role, lab.old_password)
    with pytest.raises(psycopg.OperationalError):  # the session opened with the old password ended
        attacker.execute("SELECT 1")
    attacker.close()

    verify = revoke_cli("verify", "--incident", "i1", "--format", "json", **cli)
    result = verify.json()
    assert verify.returncode == 0 and result["clean"], result["reasons"]
    probe = next(p for p in result["probes"] if p["node"] == old_id)
    assert probe["live"] is False and "replaced by revoke" in probe["signal"]

    # a second run changes nothing: the password is not rotated again
    again = revoke_cli("run", "playbook.yaml", "--incident", "i1", "--execute", **cli)
    assert again.returncode == 0, again.stderr
    assert lab.kv()["password"] == stored["password"] and can_login(postgres_lab, lab.role, stored["password"])


def test_a_role_dropped_between_collect_and_run_is_dead_not_a_failure(tmp_path: Path, postgres_lab: Any, bao: Any,
                                                                      revoke_cli: Any) -> None:
    """The next day: the role was dropped after the collection the plan was drawn from. Its rotation
    ends with nothing to rotate (the probe agrees it is dead), nothing is written, the incident is clean."""
    lab = make(tmp_path, postgres_lab, bao)
    cli = {"cwd": lab.directory, "env": lab.env}
    assert revoke_cli("collect", **cli).returncode == 0
    run_sql(postgres_lab, f"DROP ROLE {lab.role}")
    versions = lab.kv_versions()

    run = revoke_cli("run", "playbook.yaml", "--node", HOST, "--incident", "i1", "--execute", **cli)
    assert run.returncode == 0, run.stdout + run.stderr
    assert lab.kv_versions() == versions and lab.kv()["password"] == lab.old_password  # nothing written
    with postgres_lab.admin() as conn:  # not re-created
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (lab.role,)).fetchone() is None

    verify = revoke_cli("verify", "--incident", "i1", "--format", "json", **cli)
    result = verify.json()
    assert verify.returncode == 0 and result["clean"], result["reasons"]
    old_id = password_id(SERVER, lab.role, fingerprint(lab.old_password))
    probe = next(p for p in result["probes"] if p["node"] == old_id)
    assert probe["live"] is False and "does not exist" in probe["signal"]
