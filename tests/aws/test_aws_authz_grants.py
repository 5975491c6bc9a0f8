"""KMS grants: a grantee with `Decrypt` reads secrets under the key where the key policy alone
does not let it, and the grant is a node whose revoke (RevokeGrant, irreversible) removes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from authz_estate import ROOT, Case, allow, arn, build, deny
from aws_testlib import ACCOUNT_ID, ctx, make_connector

from connectors.aws.kms_grants import grant_node_id
from examples.lab.aws_lab import MotoServer, lab_client
from revoke.connector import Collected

READ = "secretsmanager:GetSecretValue"
ADMIN_ONLY = [allow("kms:*", Principal={"AWS": arn("role", "admin")})]  # no delegation to IAM
Statements = list[dict[str, Any]]
ADMIN: dict[str, tuple[Statements, Statements]] = {
    "admin": ([{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}], [])}


@dataclass
class GrantCase(Case):
    # grant name -> (key, grantee short name or ARN, operations, constraints); a constraint value
    # "secret:<name>" becomes that secret's ARN
    grants: dict[str, tuple[str, str, list[str], dict[str, Any]]] = field(default_factory=dict)


def grant_case(name: str, grants: dict[str, tuple[str, str, list[str], dict[str, Any]]], **kw: Any) -> GrantCase:
    users = kw.pop("users", {"alice": [allow(READ)], "bob": [allow(READ)], "carol": []})
    return GrantCase(name, users=users, roles=ADMIN, keys=kw.pop("keys", {"k": ADMIN_ONLY}),
                     secrets={"db": {"key": "k"}, "logs": {}}, grants=grants, **kw)


CASES = [
    grant_case("a Decrypt grant lets a user the key policy leaves out read",
               {"g": ("k", "user:alice", ["Decrypt"], {})},
               expected={("user:alice", "can_read", "secret:db"), ("user:alice", "can_assume", "grant:g")},
               absent={("user:bob", "can_read", "secret:db")}),
    grant_case("a grant without Decrypt reads nothing, though its grantee reaches it",
               {"g": ("k", "user:alice", ["Encrypt", "GenerateDataKey"], {})},
               expected={("user:alice", "can_assume", "grant:g")},
               absent={("user:alice", "can_read", "secret:db")}),
    grant_case("a key policy Deny beats the grant",
               {"a": ("k", "user:alice", ["Decrypt"], {}), "b": ("k", "user:bob", ["Decrypt"], {})},
               keys={"k": [*ADMIN_ONLY, deny("kms:Decrypt", Principal={"AWS": arn("user", "alice")})]},
               expected={("user:bob", "can_read", "secret:db")},
               absent={("user:alice", "can_read", "secret:db")}),
    grant_case("an identity Deny beats the grant",
               {"a": ("k", "user:alice", ["Decrypt"], {}), "b": ("k", "user:bob", ["Decrypt"], {})},
               users={"alice": [allow(READ), deny("kms:Decrypt")], "bob": [allow(READ)]},
               expected={("user:bob", "can_read", "secret:db")},
               absent={("user:alice", "can_read", "secret:db")}),
    grant_case("a grant needs GetSecretValue too",
               {"g": ("k", "user:carol", ["Decrypt"], {})},
               expected={("user:carol", "can_assume", "grant:g")},
               absent={("user:carol", "can_read", "secret:db")}),
    grant_case("encryption context constraints: this secret, another secret, a version",
               {"this": ("k", "user:alice", ["Decrypt"], {"EncryptionContextSubset": {"SecretARN": "secret:db"}}),
                "other": ("k", "user:bob", ["Decrypt"], {"EncryptionContextSubset": {
                    "SecretARN": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:other-AbCdEf"}}),
                "version": ("k", "user:carol", ["Decrypt"], {"EncryptionContextSubset": {
                    "SecretARN": "secret:db", "SecretVersionId": "v1"}})},
               users={"alice": [allow(READ)], "bob": [allow(READ)], "carol": [allow(READ)]},
               expected={("user:alice", "can_read", "secret:db")},
               absent={("user:bob", "can_read", "secret:db")},
               possible={("user:carol", "can_read", "secret:db")}),
    grant_case("the user's GetSessionToken sessions use its grant; its federated users are other principals",
               {"g": ("k", "user:alice", ["Decrypt"], {})},
               users={"alice": [allow(READ), allow("sts:GetFederationToken")]},
               expected={(f"aws:session_token:{arn('user', 'alice')}", "can_read", "secret:db"),
                         (f"aws:session_token:{arn('user', 'alice')}", "can_assume", "grant:g"),
                         (f"aws:federation_token:{arn('user', 'alice')}", "can_read", "secret:logs")},
               absent={(f"aws:federation_token:{arn('user', 'alice')}", "can_read", "secret:db")}),
    grant_case("a grant to the account root delegates to IAM",
               {"g": ("k", ROOT, ["Decrypt"], {})},
               users={"alice": [allow(READ), allow("kms:Decrypt")], "bob": [allow(READ)]},
               expected={("user:alice", "can_read", "secret:db"), ("account", "can_assume", "grant:g")},
               absent={("user:bob", "can_read", "secret:db")}),
]


def build_grants(server: MotoServer, case: GrantCase) -> dict[str, str]:
    ids = build(server, case)
    kms = lab_client("kms", server.endpoint_url)
    keys = {}
    for entry in kms.list_keys()["Keys"]:
        meta = kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]
        keys[meta.get("Description", "")] = meta["Arn"]
    for name, (key, grantee, operations, constraints) in case.grants.items():
        constraints = {kind: {k: ids[v].split(":", 2)[2] if v.startswith("secret:") else v for k, v in pairs.items()}
                       for kind, pairs in constraints.items()}
        principal = ids[grantee].split(":", 2)[2] if grantee in ids else grantee
        grant_id = kms.create_grant(KeyId=keys[key], GranteePrincipal=principal, Operations=operations,
                                    **({"Constraints": constraints} if constraints else {}))["GrantId"]
        ids[f"grant:{name}"] = grant_node_id(keys[key], grant_id)
    return ids


def check(server: MotoServer, case: GrantCase) -> tuple[Collected, dict[str, str]]:
    ids = build_grants(server, case)
    got = make_connector(server).collect()
    edges = {e.key for e in got.edges}
    conditional = {e.key for e in got.edges if e.attrs.get("conditions")}

    def resolve(triples: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        return {(ids.get(a, a), rel, ids.get(b, b)) for a, rel, b in triples}

    missing, wrong = resolve(case.expected | case.possible) - edges, resolve(case.absent) & edges
    assert not missing and not wrong, f"missing {sorted(missing)}, wrong {sorted(wrong)}"
    assert not resolve(case.expected) & conditional
    assert resolve(case.possible) <= conditional
    return got, ids


@pytest.mark.parametrize("case", CASES, ids=str)
def test_grant_edges(moto_server: MotoServer, case: GrantCase) -> None:
    check(moto_server, case)


def test_revoking_a_reached_grant_removes_the_read(moto_server: MotoServer) -> None:
    got, ids = check(moto_server, CASES[0])
    node = next(n for n in got.nodes if n.id == ids["grant:g"])
    assert node.kind.value == "token" and node.attrs["grantee"] == arn("user", "alice")
    conn = make_connector(moto_server)
    spec = conn.table.find("kms_grant", "revoke")
    assert spec is not None and spec.reversible is False and "kms:RevokeGrant" in spec.permissions
    assert conn.probe(node).live is True
    assert conn.act("revoke", node, ctx()).changed
    key_arn = node.attrs["key"]
    assert lab_client("kms", moto_server.endpoint_url).list_grants(KeyId=key_arn)["Grants"] == []
    probe = conn.probe(node)
    assert probe.live is False and "list_grants" in probe.signal
    assert conn.act("revoke", node, ctx()).changed is False  # repeatable
    after = {e.key for e in conn.collect().edges}
    assert (ids["user:alice"], "can_read", ids["secret:db"]) not in after


def test_a_leaked_key_whose_user_holds_a_grant_plans_its_irreversible_revoke(moto_server: MotoServer, revoke_cli: Any,
                                                                           tmp_path: Path) -> None:
    _, ids = check(moto_server, CASES[0])
    key_id = lab_client("iam", moto_server.endpoint_url).create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    (tmp_path / "revoke.yaml").write_text(f"connectors:\n  - type: aws\n    endpoint_url: {moto_server.endpoint_url}\n")
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    res = revoke_cli("plan", "leaked-aws-key", "--node", f"aws:access_key:{key_id}", "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    steps = {s["id"]: s for s in res.json()["steps"]}
    step = steps[f"revoke:{ids['grant:g']}"]
    assert step["reversible"] is False and step["path"][-1] == ids["grant:g"]
    assert ids["secret:db"] in {s["node"] for s in steps.values()}  # reached through the grant
