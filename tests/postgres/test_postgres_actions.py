"""Actions and probes against the real server, judged by real logins and the catalog: rotation by a
superuser connector and by a CREATEROLE one (which may only touch the roles it administers),
NOLOGIN containment with its sessions ended and undone by rollback, VALID UNTIL, dry runs, and a
node of another server refused."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from connectors.postgres.ids import password_id, role_id
from revoke.connector import ActionContext, ConnectorError
from revoke.model import Node, NodeKind, fingerprint
from tests.postgres.pg_testlib import SERVER, can_login, connector, run_sql, unique


def ctx(**kw: Any) -> ActionContext:
    return ActionContext(incident="t", dry_run=kw.pop("dry_run", False), **kw)


def pw_node(role: str, password: str, server: str = SERVER) -> Node:
    return Node(password_id(server, role, fingerprint(password)), NodeKind.PASSWORD, "postgres")


def test_a_superuser_rotates_any_role(postgres_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    boss, app = unique("boss"), unique("app")
    run_sql(postgres_lab, f"CREATE ROLE {boss} LOGIN SUPERUSER PASSWORD 'boss-pw'",
            f"CREATE ROLE {app} LOGIN PASSWORD 'app-old'")
    conn = connector(postgres_lab, monkeypatch, user=boss, password="boss-pw")
    try:
        old = pw_node(app, "app-old")
        assert conn.probe(old).live is None  # set outside revoke: undecidable without the value
        with pytest.raises(ConnectorError, match="dry run"):
            conn.create_replacement(old, ctx(dry_run=True))
        assert can_login(postgres_lab, app, "app-old")
        rep = conn.create_replacement(old, ctx())
        new = rep.material.get("password") or ""
        assert rep.new_id == password_id(SERVER, app, fingerprint(new)) and rep.attrs["login_check"] == "login accepted"
        assert can_login(postgres_lab, app, new) and not can_login(postgres_lab, app, "app-old")
        assert conn.probe(old).live is False
        assert conn.probe(Node(rep.new_id, NodeKind.PASSWORD)).live is True
        assert "app-old" not in repr(rep) and new not in repr(rep)
    finally:
        conn.close()


def test_createrole_reaches_only_what_it_administers(postgres_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ops, mine, other = unique("ops"), unique("mine"), unique("other")
    run_sql(postgres_lab, f"CREATE ROLE {ops} LOGIN CREATEROLE PASSWORD 'ops-pw'",
            f"CREATE ROLE {mine} LOGIN PASSWORD 'mine-old'", f"GRANT {mine} TO {ops} WITH ADMIN OPTION",
            f"CREATE ROLE {other} LOGIN PASSWORD 'other-old'")
    conn = connector(postgres_lab, monkeypatch, user=ops, password="ops-pw")
    try:
        rep = conn.create_replacement(pw_node(mine, "mine-old"), ctx())
        assert can_login(postgres_lab, mine, rep.material.get("password") or "")
        # pg_authid is unreadable for this role: rotation works, the probe says it cannot decide
        probe = conn.probe(pw_node(mine, "mine-old"))
        assert probe.live is None and "pg_authid not readable" in probe.signal
        with pytest.raises(ConnectorError) as err:
            conn.create_replacement(pw_node(other, "other-old"), ctx())
        assert err.value.code == "42501" and not err.value.retryable
        assert can_login(postgres_lab, other, "other-old")  # nothing changed
    finally:
        conn.close()


def test_disable_ends_sessions_and_rollback_allows_login(postgres_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = unique("app")
    run_sql(postgres_lab, f"CREATE ROLE {app} LOGIN PASSWORD 'app-pw'")
    node = pw_node(app, "app-pw")
    session = psycopg.connect(postgres_lab.uri(user=app, password="app-pw"), autocommit=True)
    conn = connector(postgres_lab, monkeypatch)
    try:
        dry = conn.act("disable", node, ctx(dry_run=True))
        assert dry.changed is False and dry.detail.startswith("dry run") and can_login(postgres_lab, app, "app-pw")
        first = conn.act("disable", node, ctx())
        assert first.changed and first.data["sessions_ended"] == 1
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
        assert not can_login(postgres_lab, app, "app-pw")
        probe = conn.probe(node)
        assert probe.live is False and "NOLOGIN" in probe.signal
        assert conn.act("disable", node, ctx()).changed is False
        assert conn.act("rollback", node, ctx()).changed and can_login(postgres_lab, app, "app-pw")
        assert conn.act("rollback", node, ctx()).changed is False
        role = Node(role_id(SERVER, app), NodeKind.ROLE)
        assert conn.act("disable", role, ctx()).changed and conn.probe(role).live is False
        assert conn.act("rollback", role, ctx()).changed and conn.probe(role).live is True
    finally:
        session.close()
        conn.close()


def test_expire_sets_valid_until(postgres_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = unique("app")
    run_sql(postgres_lab, f"CREATE ROLE {app} LOGIN PASSWORD 'app-pw'")
    node = pw_node(app, "app-pw")
    conn = connector(postgres_lab, monkeypatch)
    try:
        assert conn.act("expire", node, ctx()).changed
        assert not can_login(postgres_lab, app, "app-pw")
        probe = conn.probe(node)
        assert probe.live is False and "VALID UNTIL" in probe.signal
        assert conn.act("expire", node, ctx()).changed is False
    finally:
        conn.close()


def test_a_node_of_another_server_is_refused(postgres_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connector(postgres_lab, monkeypatch)
    try:
        with pytest.raises(ConnectorError, match=r"on server other\.host:5432"):
            conn.act("disable", pw_node("postgres", "x", server="other.host:5432"), ctx())
        assert conn.probe(pw_node("postgres", "x", server="other.host:5432")).live is None
    finally:
        conn.close()
