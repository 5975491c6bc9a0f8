"""The demo's database: the role `examples.lab.postgres_demo` creates is the one the demo's Vault
secret names (same server, same role), and the secret's password logs in to it."""

from __future__ import annotations

import os
import secrets
from typing import Any

import hvac
import pytest

from connectors.postgres.ids import role_id
from connectors.recognize import recognize
from examples.lab import postgres_lab
from examples.lab.postgres_demo import PG_DSN_ENV, seed_demo
from examples.lab.vault_lab import seed_demo as seed_vault
from tests.postgres.pg_testlib import can_login


def test_the_demo_secret_names_the_demo_role(bao: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    password = secrets.token_urlsafe(18)
    seed_vault(bao.url, bao.root_token, app_aws=("AKIAEXAMPLEEXAMPLE12", "x" * 40), gcp_key_json="{}",
               db_password=password)
    value = hvac.Client(url=bao.url, token=bao.root_token).secrets.kv.v2.read_secret_version(
        path="ci/db", raise_on_deleted_version=True)["data"]["data"]
    pg = postgres_lab.start()  # its own server: the demo creates a database and fixed role names
    monkeypatch.delenv(PG_DSN_ENV, raising=False)
    try:
        block = seed_demo(pg, password)
        assert os.environ[PG_DSN_ENV] == pg.uri()
        [found] = recognize(value)
        assert found.attrs["authenticates_as"] == role_id(block["server"], "ci")
        assert can_login(pg, "ci", value["password"])
        from connectors.postgres import PostgresConnector

        conn = PostgresConnector(block)
        try:
            out = conn.collect()
        finally:
            conn.close()
        edges = {(e.src, e.rel.value, e.dst) for e in out.edges}
        assert (role_id(block["server"], "ci"), "can_assume", role_id(block["server"], "app_writers")) in edges
        assert next(n for n in out.nodes if n.id == role_id(block["server"], "ci")).attrs["databases"] == ["app"]
    finally:
        os.environ.pop(PG_DSN_ENV, None)
        pg.stop()
