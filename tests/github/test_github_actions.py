"""GitHub actions and probes, judged by the double's own state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from connectors.github import GithubConnector
from connectors.github.transform import deploy_key_id, env_secret_id, org_secret_id, pat_id, repo_secret_id, token_id
from examples.lab.github_double import GithubDouble
from revoke.connector import ActionContext, ConnectorError, GraphLookups, Replacement, Secret
from revoke.model import Node, NodeKind, fingerprint
from tests.github.github_testlib import ssh_public_key


def _node(out: Any, node_id: str) -> Node:
    return next(n for n in out.nodes if n.id == node_id)


def test_leaked_token_is_revoked_by_value(gh: GithubDouble, new_org: Callable[[], str],
                                          make_connector: Callable[..., Any], ctx: ActionContext,
                                          env_values: Callable[[str, str], None]) -> None:
    org = new_org()
    leaked, other = gh.add_token("maintainer"), gh.add_token("bystander")
    env_values("LAB_LEAKED", f"{leaked}\nnot-a-token")
    conn = make_connector(orgs=[org], leaked_tokens_env="LAB_LEAKED")
    node = _node(conn.collect(), token_id(fingerprint(leaked)))
    assert node.status == "active" and node.owner == "maintainer" and leaked not in repr(node)
    dry = conn.act("revoke", node, replace(ctx, dry_run=True))
    assert not dry.changed and gh.token_live(leaked)
    assert conn.probe(node).live is True
    done = conn.act("revoke", node, ctx)
    assert done.changed and not gh.token_live(leaked) and gh.token_live(other)
    probe = conn.probe(node)
    assert probe.live is False and "401" in probe.signal
    assert not conn.act("revoke", node, ctx).changed  # idempotent: GET /user already answers 401
    # irreversible, and the plan says so before any call
    assert GithubConnector.irreversible_reason("revoke", node, GraphLookups())


def test_token_without_its_value_cannot_be_revoked(make_connector: Callable[..., Any], new_org: Callable[[], str],
                                                   ctx: ActionContext) -> None:
    conn = make_connector(orgs=[new_org()])
    node = Node(token_id(fingerprint("ghp_" + "x" * 36)), NodeKind.TOKEN, "github")
    with pytest.raises(ConnectorError, match="leaked_tokens_env"):
        conn.act("revoke", node, ctx)
    assert conn.probe(node).live is None


def test_pat_grant_revoked_from_the_org(gh: GithubDouble, new_org: Callable[[], str],
                                        app_connector: Callable[..., Any], ctx: ActionContext) -> None:
    org = new_org()
    gh.add_repo(org, "app")
    grant, _ = gh.add_grant(org, "dev", [f"{org}/app"], {"repository": {"workflows": "write"}})
    conn = app_connector(org)
    node = _node(conn.collect(), pat_id(org, grant))
    assert conn.probe(node).live is True
    assert conn.act("revoke", node, ctx).changed
    assert grant not in gh.state.orgs[org].grants
    assert conn.probe(node).live is False
    assert not conn.act("revoke", node, ctx).changed


def test_deploy_key_rotation(gh: GithubDouble, new_org: Callable[[], str], make_connector: Callable[..., Any],
                             ctx: ActionContext) -> None:
    from cryptography.hazmat.primitives import serialization

    org = new_org()
    full = f"{org}/app"
    gh.add_repo(org, "app")
    old_id = gh.add_deploy_key(full, ssh_public_key(), title="push", read_only=False)
    conn = make_connector(orgs=[org])
    old = _node(conn.collect(), deploy_key_id(full, old_id))
    assert conn.siblings(old) == set()
    rep = conn.create_replacement(old, ctx)
    new_key_id = int(rep.new_id.rsplit("/", 1)[1])
    registered = gh.state.repos[full].deploy_keys[new_key_id]
    assert registered.read_only is False  # same access as the key it replaces
    private = serialization.load_ssh_private_key(str(rep.material.get("private_key_pem")).encode(), None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert registered.key == public.decode()
    assert conn.siblings(old) == {rep.new_id}
    assert conn.act("rotate", old, ctx).changed  # retiring the old key deletes it
    assert old_id not in gh.state.repos[full].deploy_keys and new_key_id in gh.state.repos[full].deploy_keys
    assert conn.probe(old).live is False
    assert conn.probe(Node(rep.new_id, NodeKind.SSH_KEY, "github")).live is True
    spec = GithubConnector.table.find("deploy_key", "rotate")
    assert spec is not None and spec.reversible is False
    conn.discard_replacement(rep.new_id, ctx)
    assert new_key_id not in gh.state.repos[full].deploy_keys


@pytest.mark.parametrize("scope", ["repo", "env", "org"])
def test_actions_secret_rotation_writes_a_sealed_box(gh: GithubDouble, new_org: Callable[[], str],
                                                     make_connector: Callable[..., Any], ctx: ActionContext,
                                                     scope: str) -> None:
    org = new_org()
    full = f"{org}/app"
    gh.add_repo(org, "app")
    where, env = (org, "") if scope == "org" else (full, "release" if scope == "env" else "")
    gh.add_secret(where, "AWS_DEPLOY_KEY", "AKIAOLD:old-secret", env=env, updated_at="2024-01-01T00:00:00Z")
    sid = {"repo": repo_secret_id(full, "AWS_DEPLOY_KEY"), "env": env_secret_id(full, "release", "AWS_DEPLOY_KEY"),
           "org": org_secret_id(org, "AWS_DEPLOY_KEY")}[scope]
    conn = make_connector(orgs=[org])
    store = _node(conn.collect(), sid)
    old = Node("aws:access_key:AKIAOLDOLDOLDOLDOLD1", NodeKind.ACCESS_KEY, "aws")
    rep = Replacement(old.id, "aws:access_key:AKIANEWNEWNEWNEWNEW1", NodeKind.ACCESS_KEY,
                      Secret({"access_key_id": "AKIANEWNEWNEWNEWNEW1", "secret_access_key": "n" * 40}))
    dry = conn.write_store(store, old, rep, replace(ctx, dry_run=True))
    assert not dry.changed and gh.secret_value(where, "AWS_DEPLOY_KEY", env=env) == "AKIAOLD:old-secret"
    result = conn.write_store(store, old, rep, ctx)
    assert gh.secret_value(where, "AWS_DEPLOY_KEY", env=env) == "AKIANEWNEWNEWNEWNEW1:" + "n" * 40
    assert gh.secret_meta(where, "AWS_DEPLOY_KEY", env=env).updated_at > "2024-01-01T00:00:00Z"
    assert result.data["updated_at"] and "n" * 40 not in repr(result)
    # what it holds is recorded beside it (ids and times only) and believed while the secret is unchanged
    assert conn.store_holds(store) == {rep.new_id}
    assert (sid, "stores", rep.new_id) in {(e.src, e.rel.value, e.dst) for e in conn.collect().edges}
    gh.add_secret(where, "AWS_DEPLOY_KEY", "someone-else", env=env, updated_at="2099-01-01T00:00:00Z")
    assert conn.store_holds(store) == set()


def test_declared_actions_and_permissions() -> None:
    perms = GithubConnector.permissions
    assert "revoke" in perms and "write_store" in perms
    assert GithubConnector.actions[NodeKind.TOKEN] == frozenset({"revoke"})
    assert GithubConnector.actions[NodeKind.SSH_KEY] == frozenset({"revoke", "disable", "rotate"})


def test_leaked_installation_token_revokes_itself(gh: GithubDouble, new_org: Callable[[], str],
                                                  make_connector: Callable[..., Any], ctx: ActionContext,
                                                  env_values: Callable[[str, str], None]) -> None:
    org = new_org()
    gh.add_repo(org, "app")
    ghs = gh.add_installation_token(org)
    env_values("LAB_LEAKED_GHS", ghs)
    conn = make_connector(orgs=[org], leaked_tokens_env="LAB_LEAKED_GHS")
    node = _node(conn.collect(), token_id(fingerprint(ghs)))
    assert node.status == "active" and conn.probe(node).live is True
    assert conn.act("revoke", node, ctx).changed and not gh.token_live(ghs)
    probe = conn.probe(node)
    assert probe.live is False and "/installation/repositories: 401" in probe.signal
