"""Pure transforms on recorded payloads (shapes as OpenBao 2.7 returns them; values made up)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from connectors.vault.acl import capabilities, merged_rules
from connectors.vault.transform import (
    AppRolePayload,
    kv2_mounts,
    mount_table,
    pki_mounts,
    secret_id_paths,
    transform_approle,
    transform_audit_parents,
    transform_can_mint,
    transform_can_read,
    transform_leases,
    transform_parents,
    transform_raw_tokens,
    transform_tokens,
)
from connectors.vault.transform_material import KvSecret, transform_kv
from revoke.model import NodeKind, fingerprint

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


# lookup-accessor data as OpenBao 2.7 returns it (a token made by a job token, an AppRole login)
JOB = {"accessor": "ACCJOB", "creation_time": 1795856363, "creation_ttl": 43200, "display_name": "token-ci-job",
       "entity_id": "", "expire_time": "2026-11-28T20:59:23.055489326Z", "explicit_max_ttl": 0, "id": "",
       "issue_time": "2026-11-28T08:59:23.055492151Z", "meta": None, "num_uses": 0, "orphan": False,
       "path": "auth/token/create", "policies": ["ci-read", "default"], "renewable": True, "ttl": 43200,
       "type": "service"}
LOGIN = {**JOB, "accessor": "ACCLOGIN", "display_name": "approle", "entity_id": "c9885623-abba-744e-ccc5-3f26e55aaffb",
         "meta": {"role_name": "ci-deploy"}, "orphan": True, "path": "auth/approle/login", "ttl": 3600}
LOOKUPS = {"ACCJOB": JOB, "ACCLOGIN": LOGIN}


def test_tokens_by_accessor_with_policies() -> None:
    nodes, edges = transform_tokens(LOOKUPS, {"ACCJOB": "sha256:ab"}, collector_accessor="ACCJOB")
    job, login = nodes
    assert (job.id, job.kind, job.name, job.fingerprint) == ("vault:token:ACCJOB", NodeKind.TOKEN, "token-ci-job", "sha256:ab")
    assert job.created == datetime.fromtimestamp(1795856363, UTC)
    assert job.expires is not None and job.expires.isoformat().startswith("2026-11-28T20:59:23")
    assert job.attrs == {"policies": ["ci-read", "default"], "orphan": False, "path": "auth/token/create",
                         "type": "service", "ttl": 43200, "meta": {}, "collector": True}
    assert login.attrs["entity_id"] == "c9885623-abba-744e-ccc5-3f26e55aaffb" and "collector" not in login.attrs
    assert {e.key for e in edges} == {(f"vault:token:{a}", "authenticates_as", f"vault:policy:{p}")
                                      for a in ("ACCJOB", "ACCLOGIN") for p in ("ci-read", "default")}


def test_approle_role_secret_id_and_login_tokens() -> None:
    role = {"bind_secret_id": True, "secret_id_num_uses": 0, "token_policies": ["ci-read"], "token_ttl": 3600}
    sid = {"cidr_list": [], "creation_time": "2026-11-28T08:59:23.110100605Z", "expiration_time": "0001-01-01T00:00:00Z",
           "metadata": {"team": "ci"}, "secret_id_accessor": "cc1696ff", "secret_id_num_uses": 0, "secret_id_ttl": 0}
    payload = AppRolePayload("approle", {"ci-deploy": role}, {"ci-deploy": {"cc1696ff": sid}})
    nodes, edges = transform_approle(payload, LOOKUPS)
    assert [(n.id, n.kind) for n in nodes] == [("vault:approle:approle/ci-deploy", NodeKind.ROLE),
                                               ("vault:secret_id:approle/ci-deploy/cc1696ff", NodeKind.TOKEN)]
    assert nodes[1].expires is None and nodes[1].attrs["metadata_keys"] == ["team"]  # the zero time is no expiry
    assert {e.key for e in edges} == {
        ("vault:approle:approle/ci-deploy", "authenticates_as", "vault:policy:ci-read"),
        ("vault:secret_id:approle/ci-deploy/cc1696ff", "authenticates_as", "vault:approle:approle/ci-deploy"),
        ("vault:approle:approle/ci-deploy", "can_mint", "vault:token:ACCLOGIN"),
    }
    assert secret_id_paths([payload]) == {"auth/approle/role/ci-deploy/secret-id": "vault:approle:approle/ci-deploy"}


def test_kv_values_become_stores_edges_and_keep_no_value() -> None:
    data = {"aws_access_key_id": "AKIAQ3EXAMPLEKEY7ABC", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYab",
            "password": "made-up-pw", "vault_token": "s.abcdefghijklmnopqrstuvwx"}
    token_fp = fingerprint("s.abcdefghijklmnopqrstuvwx")
    live = KvSecret("secret", "ci/app", data, 3, "2026-11-28T08:59:23Z", [2, 3])
    gone = KvSecret("secret", "ci/old", None, 2, "", [])
    nodes, edges = transform_kv([live, gone], {"ACCJOB": token_fp})
    by_id = {n.id: n for n in nodes}
    assert by_id["vault:secret:secret/ci/app"].attrs == {"mount": "secret", "path": "ci/app", "version": 3,
                                                         "live_versions": [2, 3], "fields": sorted(data)}
    assert by_id["vault:secret:secret/ci/old"].status == "deleted" and not by_id["vault:secret:secret/ci/old"].fingerprint
    pw = by_id["vault:password:secret/ci/app#password"]
    assert pw.kind is NodeKind.PASSWORD and pw.attrs["managed"] is False and pw.fingerprint == fingerprint("made-up-pw")
    assert {e.key for e in edges} == {("vault:secret:secret/ci/app", "stores", dst) for dst in (
        "aws:access_key:AKIAQ3EXAMPLEKEY7ABC", "vault:password:secret/ci/app#password", "vault:token:ACCJOB")}
    text = json.dumps([n.to_dict() for n in nodes] + [e.to_dict() for e in edges], default=str)
    assert not any(v in text for v in data.values() if not v.startswith("AKIA"))


def test_mount_tables_and_capability_edges() -> None:
    body = {"data": {"secret/": {"type": "kv", "options": {"version": "2"}}, "kv1/": {"type": "kv", "options": None},
                     "pki/": {"type": "pki", "options": None}, "sys/": {"type": "system"}}}
    assert kv2_mounts(mount_table(body)) == ["secret"] and pki_mounts(mount_table(body)) == ["pki"]
    assert mount_table({"approle/": {"type": "approle"}, "request_id": "x"}) == {"approle": {"type": "approle"}}
    caps = {"ACCJOB": {"secret/data/ci/app": ["read"], "auth/approle/role/r/secret-id": ["update", "deny"]},
            "ACCROOT": {"secret/data/ci/app": ["root"], "auth/approle/role/r/secret-id": ["root"]}}
    reads = transform_can_read(caps, {"secret/data/ci/app": "vault:secret:secret/ci/app"})
    mints = transform_can_mint(caps, {"auth/approle/role/r/secret-id": "vault:approle:approle/r"})
    assert [e.key for e in reads] == [("vault:token:ACCJOB", "can_read", "vault:secret:secret/ci/app"),
                                      ("vault:token:ACCROOT", "can_read", "vault:secret:secret/ci/app")]
    assert [e.key for e in mints] == [("vault:token:ACCROOT", "can_mint", "vault:approle:approle/r")]  # deny wins


def test_leases_by_id() -> None:
    leases = {"database/creds/ro/Xy12": {"id": "database/creds/ro/Xy12", "issue_time": "2026-11-28T08:59:23Z",
                                         "expire_time": "2026-11-28T09:59:23Z", "renewable": True, "ttl": 3599}}
    (node,) = transform_leases(leases)
    assert (node.id, node.kind, node.name) == ("vault:lease:database/creds/ro/Xy12", NodeKind.TOKEN, "database/creds/ro")
    assert node.attrs == {"renewable": True, "prefix": "database/creds/ro"}
