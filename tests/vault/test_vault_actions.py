"""Each action's effect read back from the real server, run twice for idempotency."""

from __future__ import annotations

from typing import Any

import pytest
from vault_testlib import World, assert_no_canaries, aws_pair, connector, seed_world

from connectors.postgres.ids import password_id
from examples.lab.vault_lab import OpenBaoServer
from revoke.connector import ActionContext, ConnectorError, Replacement, Secret
from revoke.model import Node, NodeKind, fingerprint


@pytest.fixture(scope="module")
def world(bao: OpenBaoServer) -> World:
    return seed_world(bao)


@pytest.fixture
def conn(bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    c = connector(bao, monkeypatch)
    yield c
    c.close()


def ctx(**kw: Any) -> ActionContext:
    return ActionContext(incident="INC-1", dry_run=False, **kw)


def nodes_by_id(conn: Any) -> dict[str, Node]:
    return {n.id: n for n in conn.collect().nodes}


def token_tree(bao: OpenBaoServer) -> list[dict[str, Any]]:
    parent = bao.client().auth.token.create(policies=["ci-read"], ttl="1h")["auth"]
    child = bao.client(parent["client_token"]).auth.token.create(policies=["ci-read"], ttl="1h")["auth"]
    grand = bao.client(child["client_token"]).auth.token.create(policies=["ci-read"], ttl="1h")["auth"]
    return [parent, child, grand]


def test_token_revoke_takes_the_subtree_and_is_idempotent(bao: OpenBaoServer, world: World, conn: Any) -> None:
    tree = token_tree(bao)
    ids = [f"vault:token:{t['accessor']}" for t in tree]
    assert [conn.probe(Node(i, NodeKind.TOKEN)).live for i in ids] == [True, True, True]
    dry = conn.act("revoke", Node(ids[0], NodeKind.TOKEN), ActionContext(incident="INC-1"))
    assert dry.changed is False and conn.probe(Node(ids[0], NodeKind.TOKEN)).live is True
    first = conn.act("revoke", Node(ids[0], NodeKind.TOKEN), ctx())
    assert first.ok and first.changed
    probes = [conn.probe(Node(i, NodeKind.TOKEN)) for i in ids]
    assert [p.live for p in probes] == [False, False, False]
    assert probes[2].signal == "lookup-accessor: 400 invalid accessor"
    second = conn.act("revoke", Node(ids[0], NodeKind.TOKEN), ctx())
    assert second.ok and second.changed is False


def test_revoke_orphan_by_accessor_is_a_clear_error(bao: OpenBaoServer, world: World, conn: Any) -> None:
    tree = token_tree(bao)
    with pytest.raises(ConnectorError, match="unsupported by accessor"):
        conn.act("revoke_orphan", Node(f"vault:token:{tree[0]['accessor']}", NodeKind.TOKEN), ctx())
    assert conn.probe(Node(f"vault:token:{tree[1]['accessor']}", NodeKind.TOKEN)).live is True


def test_write_store_aws_pair_keeps_other_fields(bao: OpenBaoServer, world: World, conn: Any) -> None:
    kv = bao.client().secrets.kv.v2
    kv.patch("ci/aws-app", secret={"region": "eu-west-1"}, mount_point="secret")
    store = nodes_by_id(conn)["vault:secret:secret/ci/aws-app"]
    old = Node(f"aws:access_key:{world.aws[0]}", NodeKind.ACCESS_KEY, "aws")
    new_id, new_secret = aws_pair()
    rep = Replacement(old.id, f"aws:access_key:{new_id}", NodeKind.ACCESS_KEY,
                      Secret({"access_key_id": new_id, "secret_access_key": new_secret}))
    assert old.id in conn.store_holds(store)
    first = conn.write_store(store, old, rep, ctx())
    assert first.changed and first.data["version"] == store.attrs["version"] + 1
    data = kv.read_secret_version("ci/aws-app", mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    assert data == {"aws_access_key_id": new_id, "aws_secret_access_key": new_secret, "region": "eu-west-1"}
    holds = conn.store_holds(store)
    assert rep.new_id in holds and old.id not in holds
    second = conn.write_store(store, old, rep, ctx())
    assert second.ok and second.changed is False
    assert kv.read_secret_metadata("ci/aws-app", mount_point="secret")["data"]["current_version"] == first.data[
        "version"]
    assert_no_canaries(repr(first) + repr(second) + repr(rep), [new_secret])
    # finalize destroys the versions that held the old key, once
    fin = conn.act("finalize", store, ctx())
    assert fin.changed
    versions = kv.read_secret_metadata("ci/aws-app", mount_point="secret")["data"]["versions"]
    assert {v for v, info in versions.items() if not info["destroyed"]} == {str(first.data["version"])}
    assert conn.act("finalize", store, ctx()).changed is False


def test_rotate_token_stored_by_value(bao: OpenBaoServer, world: World, conn: Any) -> None:
    nodes = nodes_by_id(conn)
    old = nodes[f"vault:token:{world.grandchild_accessor}"]
    store = nodes["vault:secret:secret/ci/nested"]
    assert old.fingerprint == fingerprint(world.grandchild_token)
    rep = conn.create_replacement(old, ctx())
    new_token = rep.material.get("token")
    assert new_token and rep.new_id.startswith("vault:token:")
    looked = bao.client().auth.token.lookup(new_token)["data"]
    assert looked["policies"] == ["ci-read", "default"] and looked["orphan"] is True
    assert conn.siblings(old) == {rep.new_id}
    assert conn.write_store(store, old, rep, ctx()).changed
    holds = conn.store_holds(store)
    assert "fp:" + fingerprint(new_token) in holds and "fp:" + old.fingerprint not in holds
    assert conn.write_store(store, old, rep, ctx()).changed is False
    assert bao.client().secrets.kv.v2.read_secret_version(
        "ci/nested", mount_point="secret", raise_on_deleted_version=True)["data"]["data"]["note"] == "x"
    # the replacement survives revoking the old token's tree (it is an orphan)
    conn.act("revoke", old, ctx())
    assert conn.probe(Node(rep.new_id, NodeKind.TOKEN)).live is True
    discard = conn.discard_replacement(rep.new_id, ctx())
    assert discard.changed and conn.probe(Node(rep.new_id, NodeKind.TOKEN)).live is False
    assert conn.discard_replacement(rep.new_id, ctx()).changed is False


def test_write_store_password_and_manual_probe(bao: OpenBaoServer, world: World, conn: Any) -> None:
    nodes = nodes_by_id(conn)
    assert conn.probe(nodes["vault:password:secret/team/db#password"]).live is None  # nobody manages it: manual
    # the demo's database password is a Postgres role's (host/username/password): known to the graph
    # only by reference, without a fingerprint, it is found in the value by its id
    old = Node(password_id("db.internal:5432", "ci", fingerprint(world.db_password)), NodeKind.PASSWORD, "postgres")
    new_id = password_id("db.internal:5432", "ci", fingerprint("new-db-password-123"))
    store = nodes["vault:secret:secret/ci/db"]
    rep = Replacement(old.id, new_id, NodeKind.PASSWORD, Secret({"password": "new-db-password-123"}))
    assert conn.write_store(store, old, rep, ctx()).changed
    held = conn.store_holds(store)
    assert new_id in held and "fp:" + fingerprint("new-db-password-123") in held and old.id not in held
    assert conn.write_store(store, old, rep, ctx()).changed is False
    data = bao.client().secrets.kv.v2.read_secret_version("ci/db", mount_point="secret",
                                                          raise_on_deleted_version=True)["data"]["data"]
    assert data["host"] == "db.internal" and data["username"] == "ci"


def test_pki_cert_revoke_is_on_the_crl(world: World, conn: Any) -> None:
    node = Node(f"vault:pki_cert:pki/{world.ids['pki']['serials'][0]}", NodeKind.CERTIFICATE)
    before = conn.probe(node)
    assert before.live is True and before.signal == "crl: serial absent (signature verified)"
    assert conn.act("revoke", node, ctx()).changed
    after = conn.probe(node)
    assert after.live is False and after.signal == "crl: serial present (signature verified)"
    assert conn.act("revoke", node, ctx()).changed is False


def test_issuer_replacement_then_reissue_then_revoke(bao: OpenBaoServer, world: World, conn: Any) -> None:
    from cryptography import x509

    nodes = nodes_by_id(conn)
    old_issuer = nodes[f"vault:pki_issuer:pki/{world.ids['pki']['issuer_id']}"]
    cert = nodes[f"vault:pki_cert:pki/{world.ids['pki']['serials'][1]}"]
    new_issuer = conn.create_replacement(old_issuer, ctx())
    assert new_issuer.new_id != old_issuer.id and new_issuer.kind is NodeKind.CA
    rep = conn.create_replacement(cert, ctx(replacements={old_issuer.id: new_issuer.new_id}))
    new_cert = x509.load_pem_x509_certificate(rep.material.get("certificate_pem").encode())
    ca = x509.load_pem_x509_certificate(new_issuer.material.get("certificate_pem").encode())
    new_cert.verify_directly_issued_by(ca)
    assert new_cert.subject.rfc4514_string() == cert.attrs["subject"]
    assert (rep.material.get("private_key_pem") or "").startswith("-----BEGIN PRIVATE KEY-----")
    snap = {n.id: n for n in conn.collect().nodes}
    assert rep.new_id in snap and snap[rep.new_id].attrs["issuer_id"] == new_issuer.attrs["issuer_id"]
    assert conn.act("revoke", old_issuer, ctx()).changed
    assert conn.probe(old_issuer).live is False and conn.probe(Node(new_issuer.new_id, NodeKind.CA)).live is True
    assert conn.act("revoke", old_issuer, ctx()).changed is False
    assert conn.discard_replacement(rep.new_id, ctx()).changed
    assert conn.probe(Node(rep.new_id, NodeKind.CERTIFICATE)).live is False


def test_approle_secret_id_destroy_revokes_its_tokens(world: World, conn: Any) -> None:
    a = world.ids["approle"]
    node = Node(f"vault:secret_id:approle/ci-deploy/{a['secret_id_accessor']}", NodeKind.TOKEN)
    login = Node(f"vault:token:{a['login_accessor']}", NodeKind.TOKEN)
    assert conn.probe(node).live is True and conn.probe(login).live is True
    first = conn.act("destroy", node, ctx())
    assert first.changed and first.data["revoked_tokens"] == [login.id]
    assert conn.probe(node).live is False and conn.probe(login).live is False
    second = conn.act("destroy", node, ctx())  # the real server answers 500 to a second destroy
    assert second.ok and second.changed is False


def test_lease_revoke(bao: OpenBaoServer, conn: Any) -> None:
    root = bao.client()
    root.write_data("pki/roles/leased", data={"allowed_domains": "lab.internal", "allow_subdomains": True,
                                              "key_type": "ec", "key_bits": 256, "generate_lease": True})
    lease_id = root.write_data("pki/issue/leased", data={"common_name": "l.lab.internal"})["lease_id"]
    node_id = f"vault:lease:{lease_id}"
    assert node_id in nodes_by_id(conn)
    node = Node(node_id, NodeKind.TOKEN)
    assert conn.probe(node).live is True
    assert conn.act("revoke", node, ctx()).changed
    assert conn.probe(node).live is False
    assert conn.act("revoke", node, ctx()).changed is False
    # revoke_prefix: every lease the role issued goes, once
    more = [root.write_data("pki/issue/leased", data={"common_name": f"m{i}.lab.internal"})["lease_id"]
            for i in range(2)]
    assert conn.act("revoke_prefix", Node(f"vault:lease:{more[0]}", NodeKind.TOKEN), ctx()).changed
    assert [conn.probe(Node(f"vault:lease:{m}", NodeKind.TOKEN)).live for m in more] == [False, False]
    assert conn.act("revoke_prefix", Node(f"vault:lease:{more[0]}", NodeKind.TOKEN), ctx()).changed is False


def test_unsupported_and_rollback_are_clear(conn: Any) -> None:
    with pytest.raises(ConnectorError, match="cannot undo"):
        conn.act("rollback", Node("vault:token:abc", NodeKind.TOKEN), ctx())
    with pytest.raises(ConnectorError, match="not supported"):
        conn.act("revoke", Node("vault:password:secret/ci/db#password", NodeKind.PASSWORD), ctx())


def test_concurrent_revokes_from_threads(bao: OpenBaoServer, world: World, conn: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    root = bao.client()
    accs = [root.auth.token.create(policies=["default"], ttl="10m")["auth"]["accessor"] for _ in range(12)]
    nodes = [Node(f"vault:token:{a}", NodeKind.TOKEN) for a in accs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda n: conn.act("revoke", n, ctx()), nodes))
        probes = list(pool.map(conn.probe, nodes))
    assert all(r.changed for r in results) and not any(p.live for p in probes)
