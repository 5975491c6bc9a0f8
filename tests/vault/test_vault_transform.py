"""Pure transforms on recorded payloads (shapes as OpenBao 2.7 returns them; values made up)."""

from __future__ import annotations

import json

from connectors.vault.acl import capabilities, merged_rules
from connectors.vault.transform import transform_audit_parents, transform_parents, transform_raw_tokens
from revoke.model import fingerprint

RAW = [
    {"type": 1, "id": "root-value", "accessor": "ACCROOT", "parent": "", "policies": ["root"]},
    {"type": 1, "id": "s.parentvalue0000000000000", "accessor": "ACCP", "parent": "root-value"},
    {"type": 1, "id": "s.childvalue00000000000000", "accessor": "ACCC", "parent": "s.parentvalue0000000000000"},
    {"type": 1, "id": "s.orphanvalue0000000000000", "accessor": "ACCO", "parent": ""},
    {"type": 1, "id": "s.lostparent00000000000000", "accessor": "ACCL", "parent": "s.revoked"},
]


def test_raw_entries_give_parents_and_fingerprints_only() -> None:
    pairs, fps = transform_raw_tokens(RAW)
    assert pairs == {("ACCROOT", "ACCP"), ("ACCP", "ACCC")}
    assert fps["ACCC"] == fingerprint("s.childvalue00000000000000")
    assert "value" not in json.dumps([sorted(pairs), fps]).replace("sha256", "")


def audit_line(path: str, parent_hmac: str, child_hmac: str, **data: object) -> str:
    return json.dumps({
        "type": "response",
        "request": {"path": path, "client_token_accessor": parent_hmac, "data": data},
        "response": {"auth": {"accessor": child_hmac}},
    })


def test_audit_log_parents() -> None:
    hashes = {"hmac-sha256:p": "ACCP", "hmac-sha256:c": "ACCC", "hmac-sha256:o": "ACCO", "hmac-sha256:r": "ACCR"}
    lines = [
        audit_line("auth/token/create", "hmac-sha256:p", "hmac-sha256:c"),
        audit_line("auth/token/create-orphan", "hmac-sha256:p", "hmac-sha256:o"),
        audit_line("auth/token/create", "hmac-sha256:p", "hmac-sha256:r", no_parent=True),
        json.dumps({"type": "request", "request": {"path": "auth/token/create"}}),
        "not json",
    ]
    assert transform_audit_parents(lines, hashes) == {("ACCP", "ACCC")}
    lookups = {"ACCP": {"orphan": False}, "ACCC": {"orphan": True}}
    assert transform_parents({("ACCP", "ACCC")}, lookups, "audit") == []  # an orphan has no parent


def test_acl_rules_follow_vault_priority() -> None:
    rules = merged_rules([
        'path "secret/data/ci/*" { capabilities = ["read"] }',
        'path "secret/data/+/db" { capabilities = ["read"] }\npath "secret/data/team/*" { capabilities = ["list"] }',
        '{"path": {"secret/data/ci/locked": {"capabilities": ["deny"]}}}',
        'path "secret/data/old" { policy = "write" }',
    ])
    assert capabilities(rules, "secret/data/ci/aws") == ["read"]
    assert capabilities(rules, "secret/data/ci/deep/er") == ["read"]  # `*` crosses `/`
    assert capabilities(rules, "secret/data/ci") == ["deny"]  # `ci/*` does not cover `ci`
    assert capabilities(rules, "secret/data/ci/locked") == ["deny"]  # exact rule wins, deny
    assert capabilities(rules, "secret/data/other/db") == ["read"]  # `+` is one segment
    assert capabilities(rules, "secret/data/other/x/db") == ["deny"]
    assert capabilities(rules, "secret/data/team/db") == ["list"]  # the later glob is more specific
    assert "update" in capabilities(rules, "secret/data/old")
