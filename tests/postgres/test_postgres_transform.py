"""The pure half on recorded catalog payloads: exact edge sets for Postgres before and from 16 (when
CREATEROLE stopped reaching every role), and a Secrets Manager value naming a role's password."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from connectors.aws.collect import summarize_secret_value
from connectors.aws.transform import transform_secrets
from connectors.postgres.ids import password_id, role_id
from connectors.postgres.transform import transform_server
from revoke.model import fingerprint

S = "db.internal:5432"


def _role(name: str, *, login: bool = True, sup: bool = False, createrole: bool = False) -> dict[str, Any]:
    return {"name": name, "login": login, "superuser": sup, "createrole": createrole, "inherit": True,
            "valid_until": None, "replication": False, "bypassrls": False, "oid": 1}


def _payload(version: int, members: list[dict[str, Any]]) -> dict[str, Any]:
    return {"server": S, "info": {"version": version, "user": "postgres"}, "connect": {}, "verifiers": None,
            "roles": [_role("admin", sup=True), _role("ops", createrole=True), _role("app"), _role("grp", login=False),
                      _role("pg_monitor", login=False), _role("pg_checkpoint", login=False)],
            "members": members}


def _edges(payload: dict[str, Any]) -> set[tuple[str, str, str]]:
    def short(node_id: str) -> str:
        return node_id.rsplit("/", 1)[1]

    return {(short(e.src), e.rel.value, short(e.dst)) for e in transform_server(payload).edges}


def test_before_16_createrole_reaches_every_role_but_superusers() -> None:
    payload = _payload(150004, [{"role": "grp", "member": "app"}, {"role": "pg_monitor", "member": "ops"}])
    assert _edges(payload) == {
        ("app", "can_assume", "grp"), ("ops", "can_assume", "pg_monitor"),
        ("admin", "can_mint", "ops"), ("admin", "can_mint", "app"), ("admin", "can_mint", "grp"),
        ("ops", "can_mint", "app"), ("ops", "can_mint", "grp"),
    }
    ids = {n.id for n in transform_server(payload).nodes}
    assert role_id(S, "pg_monitor") in ids and role_id(S, "pg_checkpoint") not in ids  # only through members


def test_from_16_createrole_reaches_what_it_administers() -> None:
    payload = _payload(180006, [
        {"role": "app", "member": "ops", "admin_option": True, "inherit_option": False, "set_option": False},
        {"role": "grp", "member": "app", "admin_option": False, "inherit_option": False, "set_option": False},
    ])
    assert _edges(payload) == {
        ("ops", "can_assume", "app"),  # ADMIN OPTION only: it may grant itself the role
        ("admin", "can_mint", "ops"), ("admin", "can_mint", "app"), ("admin", "can_mint", "grp"),
        ("ops", "can_mint", "app"),
    }


def test_a_secrets_manager_value_names_the_role() -> None:
    value = json.dumps({"engine": "postgres", "host": "db.internal", "port": 5432, "username": "app",
                        "password": "pw-in-sm", "dbname": "app"})
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
    item = {"arn": arn, "name": "prod/db", **summarize_secret_value(value)}
    data = SimpleNamespace(secrets=[item], account_id="123456789012", region="eu-west-1")
    _nodes, edges = transform_secrets(data)  # type: ignore[arg-type]
    pw = password_id(S, "app", fingerprint("pw-in-sm"))
    assert {(s, r, d) for s, r, d, _ in edges} == {
        (f"aws:secret:{arn}", "stores", pw), (pw, "authenticates_as", role_id(S, "app"))}
    assert "pw-in-sm" not in json.dumps(item)
