"""Collect against a real Postgres 18: exact edge sets for memberships and for who may set whose
password, the server in every id, and a finding (not a failure) when pg_authid is unreadable."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.postgres.ids import role_id, server_name, split_role
from tests.postgres.pg_testlib import SERVER, connector, run_sql, unique


def _mine(edges: list[Any], names: set[str]) -> set[tuple[str, str, str]]:
    return {(e.src, e.rel.value, e.dst) for e in edges
            if split_role(e.src)[1] in names and split_role(e.dst)[1] in names}


def test_roles_memberships_and_who_can_set_passwords(postgres_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    grp, app, ops, boss, plain, quiet = (unique(p) for p in ("grp", "app", "ops", "boss", "plain", "quiet"))
    run_sql(postgres_lab,
            f"CREATE ROLE {grp} NOLOGIN",
            f"CREATE ROLE {app} LOGIN PASSWORD 'a-password' IN ROLE {grp}",
            f"CREATE ROLE {ops} LOGIN CREATEROLE PASSWORD 'o-password'",
            f"GRANT {app} TO {ops} WITH ADMIN OPTION",
            f"CREATE ROLE {boss} LOGIN SUPERUSER PASSWORD 'b-password'",
            f"CREATE ROLE {plain} LOGIN PASSWORD 'p-password' VALID UNTIL '2001-01-01'",
            # a membership that grants nothing (no SET, no INHERIT, no ADMIN) opens nothing
            f"CREATE ROLE {quiet} LOGIN PASSWORD 'q-password'",
            f"GRANT {grp} TO {quiet} WITH INHERIT FALSE, SET FALSE")
    conn = connector(postgres_lab, monkeypatch)
    try:
        out = conn.collect()
    finally:
        conn.close()
    names = {grp, app, ops, boss, plain, quiet}
    r = {n: role_id(SERVER, n) for n in names}
    others = names - {boss}
    assert _mine(out.edges, names) == {
        (r[app], "can_assume", r[grp]),
        (r[ops], "can_assume", r[app]),  # ADMIN OPTION: it can grant itself the role
        (r[ops], "can_mint", r[app]),    # CREATEROLE reaches only roles it administers (16+)
        *{(r[boss], "can_mint", r[n]) for n in others},  # a superuser may set every password
    }
    nodes = {n.id: n for n in out.nodes}
    assert nodes[r[grp]].status == "nologin" and nodes[r[app]].status == "active"
    assert nodes[r[boss]].attrs["superuser"] and nodes[r[ops]].attrs["createrole"]
    assert nodes[r[plain]].attrs["valid_until"].startswith("2001-01-01")
    assert nodes[r[app]].attrs["password"] == "scram-sha-256" and nodes[r[grp]].attrs["password"] == "none"
    assert nodes[r[app]].attrs["databases"] == ["postgres"]
    assert not out.findings
    assert out.meta["pg_authid"] is True and out.meta["server"] == SERVER
    # the lab superuser reaches every role; nobody sets a predefined role's password
    assert (role_id(SERVER, "postgres"), "can_mint", r[app]) in {(e.src, e.rel.value, e.dst) for e in out.edges}
    assert not [e for e in out.edges if e.rel.value == "can_mint" and split_role(e.dst)[1].startswith("pg_")]


def test_pg_authid_unreadable_is_a_finding(postgres_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ops = unique("ops")
    run_sql(postgres_lab, f"CREATE ROLE {ops} LOGIN CREATEROLE PASSWORD 'ops-password'")
    conn = connector(postgres_lab, monkeypatch, user=ops, password="ops-password")
    try:
        out = conn.collect()
    finally:
        conn.close()
    assert [f.code for f in out.findings] == ["pg_authid_unreadable"]
    assert "ops-password" not in out.findings[0].message
    node = next(n for n in out.nodes if n.id == role_id(SERVER, ops))
    assert "password" not in node.attrs and out.meta["pg_authid"] is False


def test_the_server_is_part_of_every_id(postgres_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `server:`, the DSN's host names the server: a socket directory, quoted."""
    from connectors.postgres import PostgresConnector

    monkeypatch.setenv("PG_A", postgres_lab.uri())
    conn = PostgresConnector({"dsn_env": "PG_A"})
    try:
        ids = {n.id for n in conn.collect().nodes}
    finally:
        conn.close()
    expected = server_name(postgres_lab.socket_dir, None)
    assert expected.startswith("%2F") and "/" not in expected
    assert role_id(expected, "postgres") in ids
    assert server_name("DB.Internal", "6432") == "db.internal:6432" != server_name("db.internal", None)
