"""The lab's Postgres server checks passwords for every role but the superuser: tests that prove a
rotation by a failed login rely on it."""

from __future__ import annotations

import psycopg
import pytest


def test_a_role_logs_in_with_its_password_only(postgres_lab) -> None:
    db = postgres_lab.new_database()
    with postgres_lab.admin() as conn:
        conn.execute("CREATE ROLE lab_check LOGIN PASSWORD 'right-one'")
    with psycopg.connect(postgres_lab.uri(db, "lab_check", "right-one")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("lab_check",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_lab.uri(db, "lab_check", "wrong-one"))
