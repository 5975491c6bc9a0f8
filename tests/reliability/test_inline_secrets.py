"""Credentials typed into revoke.yaml are refused by shape and by key name, never by an exact-name
list; and no error line quotes the file it failed on. Every payload carries a canary that must
appear neither in the output nor in the store (the store's `last_error` once kept a token given
to `token_env:`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from revoke.config import load_config
from tests.reliability.hostile_testlib import inventory_config, make_workspace, one_error_line
from tests.reliability.reliability_testlib import Workspace, record_figures

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCANARY\n-----END PRIVATE KEY-----"


@pytest.fixture(scope="module")
def ws(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    w = make_workspace(tmp_path_factory.mktemp("secrets"))
    assert revoke_cli("collect", **w.cli).returncode == 0
    w.snapshot()
    yield w


# (connector block as YAML flow or block text, canary, the field named in the error)
INLINE: list[tuple[str, str, str]] = [
    ("{type: vault, url: 'http://127.0.0.1:8200', Token: CANARYvalue1}", "CANARYvalue1", "Token"),
    ("{type: vault, url: 'http://127.0.0.1:8200', vault_token: CANARYvalue2}", "CANARYvalue2", "vault_token"),
    ("{type: aws, aws_secret_access_key: CANARYvalue3}", "CANARYvalue3", "aws_secret_access_key"),
    ("{type: gcp, projects: [p], key_json: CANARYvalue4}", "CANARYvalue4", "key_json"),
    ("{type: vault, url: 'http://admin:CANARYpass5@127.0.0.1:8200'}", "CANARYpass5", "url"),
    ("{type: vault, url: 'http://127.0.0.1:8200', token_env: s.CANARYCANARYCANARYCANARY6}", "CANARYCANARYCANARYCANARY6",
     "token_env"),
    ("{type: vault, url: 'http://127.0.0.1:8200', token_env: 'CANARY value 7'}", "CANARY value 7", "token_env"),
    ("{type: aws, access_key_id_env: AKIACANARY0000000008}", "AKIACANARY0000000008", "access_key_id_env"),
    ("{type: vault, url: 'http://127.0.0.1:8200', Private-Key: CANARYvalue9}", "CANARYvalue9", "Private-Key"),
    ("{type: aws, PASSWORD: CANARYvalue10}", "CANARYvalue10", "PASSWORD"),
    ("{type: aws, accounts: [{region: us-east-1, Secret_Key: CANARYvalue11}]}", "CANARYvalue11", "Secret_Key"),
    ("{type: inventory, path: inventory.yaml, name: ghp_CANARYCANARYCANARYCANARYCANARY12ab}",
     "ghp_CANARYCANARYCANARYCANARYCANARY12ab", "name"),
    ("type: x509\n    paths: [pki]\n    holder: |\n      " + PEM.replace("\n", "\n      "), "CANARY", "holder"),
    ("{type: aws, endpoint_url: 'https://eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkxNCJ9.CANARYsig14@x'}", "CANARYsig14",
     "endpoint_url"),
    ("{type: gcp, projects: [p], sa: '{\"type\": \"service_account\", \"private_key\": \"CANARY15\"}'}", "CANARY15", "sa"),
    ("{type: aws, profile: wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARYKEY1}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARYKEY1",
     "profile"),
]


def test_credentials_in_revoke_yaml_are_refused_by_shape_and_name(revoke_cli, ws: Workspace) -> None:
    failures = []
    before = ws.snapshot()
    for index, (block, canary, field) in enumerate(INLINE):
        cfg = ws.root / f"inline-{index}.yaml"
        cfg.write_text(f"connectors:\n  - {{type: inventory, path: inventory.yaml}}\n  - {block}\n")
        res = revoke_cli("collect", **(ws.cli | {"config": cfg}))
        try:
            line = one_error_line(res.returncode, res.stderr)
            assert re.search(rf"{re.escape(str(cfg))}:[345]: field '{re.escape(field)}': ", line), line
            assert canary not in res.stdout + res.stderr, "the value was echoed"
            assert ws.snapshot() == before, "the store changed"
            assert canary.encode() not in ws.store.read_bytes()
        except AssertionError as exc:
            failures.append(f"{block[:60]}: {str(exc)[:300]}")
    record_figures("inline_secrets", {"payloads": len(INLINE)})
    assert not failures, "\n".join(failures)
    _references_and_secret_looking_paths_are_accepted(ws.root / "accepted")


def _references_and_secret_looking_paths_are_accepted(root: Path) -> None:
    """The other side of the class: names of variables, and paths and ids that merely look
    related, are not credentials."""
    root.mkdir()
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [
        {"type": "vault", "url": "http://ops@127.0.0.1:8200", "token_env": "VAULT_TOKEN"},
        {"type": "aws", "access_key_id_env": "AWS_ACCESS_KEY_ID", "secret_access_key_env": "AWS_SECRET_ACCESS_KEY",
         "session_token_env": "AWS_SESSION_TOKEN", "profile": "incident-response",
         "iot_ca_ids": ["a" * 64, "0123456789abcdef0123456789abcdef01234567"]},
        {"type": "gcp", "projects": ["p"], "credentials_env": "GOOGLE_CREDENTIALS"},
        {"type": "x509", "paths": ["./secrets/tls", "./private_keys"], "holders": {"./secrets/tls": "host:web-1"}},
    ]}))
    conf = load_config(root / "revoke.yaml")
    assert [c.type for c in conf.connectors] == ["vault", "aws", "gcp", "x509"]


def test_a_store_url_with_a_password_in_revoke_yaml_is_refused(revoke_cli, ws: Workspace) -> None:
    cfg = ws.root / "store-url.yaml"
    cfg.write_text("connectors: []\nstore: 'postgresql://revoke:CANARYdbpass@db.internal/revoke'\n")
    res = revoke_cli("collect", **(ws.cli | {"config": cfg}))
    assert "field 'store': the value looks like a URL with a password" in one_error_line(res.returncode, res.stderr)
    assert "CANARYdbpass" not in res.stderr


# -- no error line quotes the file it failed on ------------------------------------------------------
SHADOW = ("root:$6$CANARYsalt$CANARYhashCANARYhashCANARYhash:19000:0:99999:7:::\n"
          "daemon:*:19000:0:99999:7:::\n")
# (file name, content, the loader reading it) -- every file holds the word CANARY in a value
ECHO: list[tuple[str, str, str]] = [
    ("shadow", SHADOW, "inventory"),
    ("shadow-map", "root: $6$CANARY$hash\nbin: x\n", "inventory"),
    ("kind.yaml", "nodes: [{id: host:a, kind: CANARYkind}]\n", "inventory"),
    ("id.yaml", "nodes: [{id: 'CANARY id with spaces', kind: host}]\n", "inventory"),
    ("created.yaml", "nodes: [{id: host:a, kind: host, created: CANARYdate}]\n", "inventory"),
    ("name.yaml", "nodes: [{id: host:a, kind: host, name: [CANARYname]}]\n", "inventory"),
    ("rel.yaml", "nodes: [{id: host:a, kind: host}]\nedges: [{from: host:a, to: host:a, rel: CANARYrel}]\n", "inventory"),
    ("key.yaml", "nodes: []\n'CANARY secret: value': 1\n", "inventory"),
    ("akia.yaml", "nodes: []\nAKIACANARY0000000001: x\n", "inventory"),
    ("tag.yaml", "nodes: !CANARYtag [1]\n", "inventory"),
    ("dup.json", '{"nodes": [], "edges": [], "CANARY key one": 1, "CANARY key one": 2}', "inventory"),
    ("type.yaml", "connectors: [{type: CANARYtype}]\n", "config"),
    ("duration.yaml", "name: p\nfinalize: {grace_period: CANARYduration}\n", "playbook"),
    ("kinds.yaml", "name: p\napplies_to: {kinds: [CANARYkind]}\n", "playbook"),
    ("action.yaml", "name: p\nactions: {access_key: CANARYaction}\n", "playbook"),
    ("days.yaml", "rules:\n  key-unused: {days: CANARYdays}\n", "rules"),
    ("severity.yaml", "rules:\n  key-unused: {severity: CANARYsev}\n", "rules"),
]


def test_no_error_line_quotes_the_file(revoke_cli, ws: Workspace) -> None:
    failures = []
    for name, content, where in ECHO:
        path = ws.root / name
        path.write_text(content)
        cfg = ws.config
        if where == "inventory":
            cfg, argv = inventory_config(ws, "echo-config.yaml", name), ["collect"]
        elif where == "config":
            cfg, argv = path, ["collect"]
        elif where == "playbook":
            argv = ["plan", name, "--node", "host:ci-runner-7"]
        else:
            argv = ["sweep", "--rules", name]
        res = revoke_cli(*argv, **(ws.cli | {"config": cfg}))
        try:
            line = one_error_line(res.returncode, res.stderr)
            assert name in line, line
            assert "CANARY" not in res.stdout + res.stderr, line
        except AssertionError as exc:
            failures.append(f"{name}: {str(exc)[:300]}")
    record_figures("no_echo", {"payloads": len(ECHO)})
    assert not failures, "\n".join(failures)
