"""An incident lab on the real servers: a host whose Vault token can read a KV secret holding a
Postgres role's password (`host`/`port`/`username`/`password`, as applications keep it), the role a
member of a group, and a revoke.yaml with the inventory, Vault and Postgres connectors."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import yaml

from tests.postgres.pg_testlib import SERVER, run_sql, unique

HOST = "host:app-1"
DSN_ENV = "REVOKE_TEST_PG_DSN"
VAULT_ENV = "REVOKE_TEST_VAULT_TOKEN"
PLAYBOOK = """\
name: compromised-host-db
description: A host is compromised; its Vault token is revoked and every database password it could read is rotated.
applies_to: {kinds: [host]}
actions:
  token: revoke
  password: rotate
  secret: {action: skip, reason: "a secret is a store: each credential inside it is rotated and written back"}
rotate_retire: disable
"""


@dataclass
class PgIncident:
    directory: Path
    role: str
    group: str
    old_password: str
    kv_path: str
    env: dict[str, str] = field(default_factory=dict)
    vault: Any = None

    def kv(self) -> dict[str, Any]:
        data = self.vault.secrets.kv.v2.read_secret_version(path=self.kv_path, raise_on_deleted_version=True)
        return dict(data["data"]["data"])

    def uri_password(self) -> str:
        from urllib.parse import unquote, urlsplit

        data = self.vault.secrets.kv.v2.read_secret_version(path=f"apps/{self.role}/env", raise_on_deleted_version=True)
        return unquote(urlsplit(data["data"]["data"]["DATABASE_URL"]).password or "")

    def kv_versions(self, path: str | None = None) -> int:
        meta = self.vault.secrets.kv.v2.read_secret_metadata(path=path or self.kv_path)
        return int(meta["data"]["current_version"])


def make(tmp: Path, postgres_lab: Any, bao: Any, *, canary: str | None = None) -> PgIncident:
    role, group = unique("svc"), unique("grp")
    old = canary or "old-" + secrets.token_hex(12)
    run_sql(postgres_lab, f"CREATE ROLE {group} NOLOGIN",
            f"CREATE ROLE {role} LOGIN PASSWORD '{old}' IN ROLE {group}")
    vault = hvac.Client(url=bao.url, token=bao.root_token)
    kv_path = f"apps/{role}/db"
    vault.secrets.kv.v2.create_or_update_secret(
        path=kv_path, mount_point="secret",
        secret={"host": "db.internal", "port": "5432", "username": role, "password": old, "note": "keep me"})
    # the same password in a second store, as a URI: one credential, two stores to write
    vault.secrets.kv.v2.create_or_update_secret(
        path=f"apps/{role}/env", mount_point="secret",
        secret={"DATABASE_URL": f"postgresql://{role}:{old}@db.internal:5432/postgres?sslmode=prefer"})
    policy = f"pol-{role}"
    vault.sys.create_or_update_policy(policy, f'path "secret/data/apps/{role}/*" {{ capabilities = ["read"] }}')
    token = vault.auth.token.create(policies=[policy], display_name=role)["auth"]
    directory = tmp / "lab"
    directory.mkdir()
    (directory / "inventory.yaml").write_text(yaml.safe_dump({
        "nodes": [{"id": HOST, "kind": "host"},
                  {"id": f"vault:token:{token['accessor']}", "kind": "token", "provider": "vault"}],
        "edges": [{"from": HOST, "to": f"vault:token:{token['accessor']}", "rel": "stores"}],
    }))
    (directory / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [
        {"type": "inventory", "path": "inventory.yaml"},
        {"type": "vault", "url": bao.url, "token_env": VAULT_ENV},
        {"type": "postgres", "dsn_env": DSN_ENV, "server": SERVER},
    ]}, sort_keys=False))
    (directory / "playbook.yaml").write_text(PLAYBOOK)
    env = {DSN_ENV: postgres_lab.uri(), VAULT_ENV: bao.root_token}
    return PgIncident(directory, role, group, old, kv_path, env, vault)
