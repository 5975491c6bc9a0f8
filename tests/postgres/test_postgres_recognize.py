"""A role's password found in a store is linked to its role by the value's own fields, with no login
attempt; each password has its own id, so a store rewritten with the replacement no longer names the
old one. Negative cases: another engine, a non-Postgres port, a login with no host."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.postgres.ids import password_id, role_id, split_role, tag_of
from connectors.recognize import recognize, substitute
from revoke.model import NodeKind, fingerprint


def _refs(value: Any) -> list[tuple[str, list[str], str]]:
    return [(f.ref, f.fields, f.attrs.get("authenticates_as", "")) for f in recognize(value)]


def _pw(server: str, role: str, password: str) -> str:
    return password_id(server, role, fingerprint(password))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"host": "db.internal", "username": "ci", "password": "pw-1"},
         [(_pw("db.internal:5432", "ci", "pw-1"), ["password"], role_id("db.internal:5432", "ci"))]),
        ("export PGHOST=db.internal\nexport PGPORT=6432\nPGUSER=app\nPGPASSWORD='pw-2'\n",
         [(_pw("db.internal:6432", "app", "pw-2"), ["PGPASSWORD"], role_id("db.internal:6432", "app"))]),
        ({"PGUSER": "app", "PGPASSWORD": "pw-3"},  # no PGHOST: libpq's local server
         [(_pw("localhost:5432", "app", "pw-3"), ["PGPASSWORD"], role_id("localhost:5432", "app"))]),
        ({"database_url": "postgresql://svc:p%40ss@DB.example.com:5433/app?sslmode=require"},
         [(_pw("db.example.com:5433", "svc", "p@ss"), ["database_url"], role_id("db.example.com:5433", "svc"))]),
        ("postgres://svc:pw-4@/app?host=/run/postgresql",
         [(_pw("%2Frun%2Fpostgresql:5432", "svc", "pw-4"), [""], role_id("%2Frun%2Fpostgresql:5432", "svc"))]),
        ({"db": {"engine": "postgres", "host": "rds.aws", "port": 5432, "username": "admin", "password": "pw-5"}},
         [(_pw("rds.aws:5432", "admin", "pw-5"), ["db.password"], role_id("rds.aws:5432", "admin"))]),
    ],
)
def test_logins_link_to_their_role(value: Any, expected: list[tuple[str, list[str], str]]) -> None:
    assert _refs(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"host": "smtp.example.com", "port": "587", "username": "mailer", "password": "pw"},  # not a Postgres port
        {"engine": "mysql", "host": "db", "username": "u", "password": "pw"},                 # another engine
        {"username": "ci", "password": "pw"},                                                 # no host: which server?
        {"url": "postgresql://svc@db/app"},                                                   # no password in it
    ],
)
def test_other_shapes_stay_unlinked(value: Any) -> None:
    assert all(not f.ref.startswith("postgres:") for f in recognize(value))


@pytest.mark.parametrize(
    "value",
    [
        {"host": "db.internal", "username": "ci", "password": "old-pw", "note": "keep me"},
        "PGHOST=db.internal\nPGUSER=ci\nPGPASSWORD=old-pw\nOTHER=1\n",
        {"dsn": "postgresql://ci:old-pw@db.internal/app?sslmode=verify-full"},
        "postgresql://ci:old-pw@db.internal/app",
    ],
)
def test_substitute_keeps_the_shape_and_drops_the_old_id(value: Any) -> None:
    old = next(f.ref for f in recognize(value))
    new_id = _pw("db.internal:5432", "ci", "new-pw")
    updated = substitute(value, old, {"password": "new-pw"}, NodeKind.PASSWORD)
    assert [f.ref for f in recognize(updated)] == [new_id]
    assert "old-pw" not in str(updated) and "new-pw" in str(updated)
    if isinstance(value, dict) and "note" in value:
        assert updated["note"] == "keep me"
    if isinstance(value, str) and "OTHER" in value:
        assert updated.endswith("OTHER=1\n")
    if "sslmode" in str(value):
        assert "sslmode=verify-full" in str(updated)


def test_ids_round_trip() -> None:
    pid = _pw("%2Frun%2Fpg:5432", "we@ird/role", "x")
    assert split_role(pid) == ("%2Frun%2Fpg:5432", "we@ird/role")
    assert tag_of(pid) == fingerprint("x")[7:23]
    with pytest.raises(ValueError):
        split_role("postgres:password:db:5432/ci")
