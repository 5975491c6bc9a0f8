"""The exact graph collected from a seeded OpenBao server, both parent sources, the ACL
fallback for a non-root collector, and canaries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from vault_testlib import World, assert_no_canaries, connector, dump, seed_world

from connectors.postgres.ids import password_id
from connectors.recognize import pem_objects, pem_ref
from examples.lab.vault_lab import OpenBaoServer
from revoke.model import fingerprint

CI = ["aws-app", "db", "gcp-deployer", "nested", "tls"]
ALL = [f"ci/{p}" for p in CI] + ["team/db", "team/x/db"]


@pytest.fixture(scope="module")
def world(bao: OpenBaoServer) -> World:
    return seed_world(bao)


@pytest.fixture(scope="module")
def collected(bao: OpenBaoServer, world: World) -> Iterator[dict[str, Any]]:
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for source in ("raw", "audit"):
            conn = connector(bao, mp, parent_source=source, audit_log=str(bao.audit_log), kv_page_size=2)
            out[source] = conn.collect()
            conn.close()
    yield out


def tok(acc: str) -> str:
    return f"vault:token:{acc}"


def sec(path: str) -> str:
    return f"vault:secret:secret/{path}"


def expected_edges(world: World, collected: Any) -> set[tuple[str, str, str]]:
    ids = world.ids
    root = tok(collected.meta["collector_accessor"])
    runner, child, grand = tok(ids["runner_accessor"]), tok(ids["child_accessor"]), tok(world.grandchild_accessor)
    orphan, login = tok(world.orphan_accessor), tok(ids["approle"]["login_accessor"])
    role = "vault:approle:approle/ci-deploy"
    issuer = f"vault:pki_issuer:pki/{ids['pki']['issuer_id']}"
    certs = [f"vault:pki_cert:pki/{s}" for s in ids["pki"]["serials"]]
    key_ref = pem_ref(*pem_objects(world.key_pem)[0])
    assert key_ref is not None
    gcp_key = "gcp:service_account_key:0123456789abcdef0123456789abcdef01234567"
    db_pw = password_id("db.internal:5432", "ci", fingerprint(world.db_password))
    edges = {
        (root, "parent_of", runner), (runner, "parent_of", child), (child, "parent_of", grand),
        (root, "authenticates_as", "vault:policy:root"),
        (orphan, "authenticates_as", "vault:policy:team-db"), (orphan, "authenticates_as", "vault:policy:default"),
        (role, "authenticates_as", "vault:policy:ci-read"),
        (f"vault:secret_id:approle/ci-deploy/{ids['approle']['secret_id_accessor']}", "authenticates_as", role),
        (role, "can_mint", login), (root, "can_mint", role),
        (sec("ci/aws-app"), "stores", f"aws:access_key:{world.aws[0]}"),
        (sec("ci/gcp-deployer"), "stores", gcp_key),
        (gcp_key, "authenticates_as", "gcp:service_account:deployer@lab-project.iam.gserviceaccount.com"),
        # host/username/password: a Postgres role's password, linked to its role (connectors.recognize)
        (sec("ci/db"), "stores", db_pw), (db_pw, "authenticates_as", "postgres:role:db.internal:5432/ci"),
        (sec("ci/tls"), "stores", key_ref.ref),
        (sec("ci/nested"), "stores", grand),  # a token found by value resolves to its accessor node
        (sec("team/db"), "stores", "vault:password:secret/team/db#password"),
        (sec("team/x/db"), "stores", "vault:password:secret/team/x/db#password"),
        # `+` matches one segment only (team/x/db is out), and for team/db the more specific
        # `secret/data/team/*` rule (list only) wins over `secret/data/+/db`: no read there
        (orphan, "can_read", sec("ci/db")),
    }
    for token in (runner, child, grand, login):
        edges |= {(token, "authenticates_as", "vault:policy:ci-read"), (token, "authenticates_as",
                                                                          "vault:policy:default")}
        edges |= {(token, "can_read", sec(f"ci/{p}")) for p in CI}
    edges |= {(root, "can_read", sec(p)) for p in ALL}
    edges |= {(issuer, "issued", c) for c in certs}
    for node in collected.nodes:  # alias edges: x509 ids computed from the DER we never saw here
        if node.id.startswith("vault:pki_"):
            kind = "ca" if node.id.startswith("vault:pki_issuer") else "cert"
            edges.add((f"x509:{kind}:{node.attrs['sha256']}", "derives", node.id))
    return edges


@pytest.mark.parametrize("source", ["raw", "audit"])
def test_exact_graph(world: World, collected: dict[str, Any], source: str) -> None:
    snap = collected[source]
    got = {e.key for e in snap.edges}
    want = expected_edges(world, snap)
    assert got - want == set(), "unexpected edges"
    assert want - got == set(), "missing edges"
    assert snap.meta["parent_source"] == ("raw" if source == "raw" else "audit:lab")
    assert snap.meta["capabilities_source"] == "sys/capabilities-accessor"
    assert snap.findings == []


def test_nodes(world: World, collected: dict[str, Any]) -> None:
    snap = collected["raw"]
    nodes = {n.id: n for n in snap.nodes}
    ids = world.ids
    kinds = {}
    for n in snap.nodes:
        kinds.setdefault(n.kind.value, set()).add(n.id)
    assert kinds["password"] == {"vault:password:secret/team/db#password",
                                 "vault:password:secret/team/x/db#password"}
    assert kinds["secret"] == {sec(p) for p in ALL}
    assert kinds["policy"] == {"vault:policy:ci-read", "vault:policy:team-db", "vault:policy:default",
                               "vault:policy:root"}
    assert len(kinds["certificate"]) == 2 and len(kinds["ca"]) == 1 and len(kinds["role"]) == 1
    runner = nodes[tok(ids["runner_accessor"])]
    assert runner.attrs["policies"] == ["ci-read", "default"] and runner.attrs["orphan"] is False
    assert runner.attrs["meta"] == {"host": "ci-runner-7"} and runner.expires is not None
    assert nodes[tok(world.orphan_accessor)].attrs["orphan"] is True
    login = nodes[tok(ids["approle"]["login_accessor"])]
    assert login.attrs["orphan"] is True and login.attrs["meta"]["role_name"] == "ci-deploy"
    # raw storage showed the values: fingerprints let a token found by value elsewhere resolve
    assert runner.fingerprint == fingerprint(ids["runner_token"])
    assert nodes[tok(world.grandchild_accessor)].fingerprint == fingerprint(world.grandchild_token)
    assert nodes[sec("ci/db")].attrs["fields"] == ["host", "password", "username"]
    # the audit source sees no values: only the token found by value in a secret gets one
    audit_fps = {n.id for n in collected["audit"].nodes if n.kind.value == "token" and n.fingerprint}
    assert audit_fps == {tok(world.grandchild_accessor)}


def test_no_canaries_in_snapshot_or_logs(bao: OpenBaoServer, world: World, collected: dict[str, Any],
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         caplog: pytest.LogCaptureFixture) -> None:
    for snap in collected.values():
        assert_no_canaries(dump(snap), world.canaries)
    caplog.set_level(logging.DEBUG)
    conn = connector(bao, monkeypatch, kv_page_size=2)
    snap = conn.collect()
    conn.close()
    captured = capsys.readouterr()
    assert "vault.collect" in captured.out + captured.err + caplog.text
    assert_no_canaries(captured.out + captured.err + caplog.text + dump(snap), world.canaries)


COLLECTOR_POLICY = """
path "auth/token/accessors" { capabilities = ["list", "sudo"] }
path "auth/token/lookup-accessor" { capabilities = ["update"] }
path "sys/policies/acl" { capabilities = ["list"] }
path "sys/policies/acl/*" { capabilities = ["read"] }
path "sys/mounts" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["list", "read"] }
path "secret/data/*" { capabilities = ["read"] }
"""


def test_non_root_collector_falls_back_to_acl_rules(bao: OpenBaoServer, world: World, collected: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = bao.client()
    root.sys.create_or_update_policy("revoke-collector", COLLECTOR_POLICY)
    token = root.auth.token.create_orphan(policies=["revoke-collector"], ttl="10m")["auth"]
    conn = connector(bao, monkeypatch, token=token["client_token"], parent_source="auto")
    snap = conn.collect()
    conn.close()
    codes = {f.code for f in snap.findings}
    assert "vault.capabilities_accessor_forbidden" in codes
    assert "vault.no_parent_source" in codes  # raw storage refused and no audit log configured
    assert snap.meta["capabilities_source"] == "acl-fallback" and snap.meta["parent_source"] == "none"
    root_acc = collected["raw"].meta["collector_accessor"]
    want = {e.key for e in collected["raw"].edges if e.rel.value == "can_read" and root_acc not in e.src}
    got = {e.key for e in snap.edges if e.rel.value == "can_read" and "root" not in str(e.src)
           and e.src != tok(token["accessor"]) and e.src != tok(root_acc)}
    assert got == want
    assert_no_canaries(dump(snap), [*world.canaries, token["client_token"]])
