"""Collect through githubkit against the double, and the pure transform of workflows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.github.transform import (
    deploy_key_id,
    env_secret_id,
    job_id,
    org_secret_id,
    pat_id,
    repo_id,
    repo_secret_id,
)
from connectors.github.workflows import parse_workflow
from examples.lab.github_double import GithubDouble
from revoke.model import NodeKind, Relation
from tests.github.github_testlib import RELEASE_WORKFLOW, ssh_public_key

WF = ".github/workflows/release.yml"


def _edges(out: Any) -> set[tuple[str, str, str]]:
    return {(e.src, e.rel.value, e.dst) for e in out.edges}


def _seed(gh: GithubDouble, org: str) -> dict[str, Any]:
    full = f"{org}/gateway"
    gh.add_repo(org, "gateway")
    gh.add_repo(org, "public-site", private=False)
    for i in range(3):
        gh.add_repo(org, f"filler{i}")
    gh.add_environment(full, "release")
    gh.add_secret(full, "PYPI_TOKEN", "lab-pypi-value", env="release")
    gh.add_secret(full, "AWS_DEPLOY_KEY", "lab-aws-value")
    gh.add_secret(full, "UNUSED", "x")
    gh.add_secret(org, "ORG_WIDE", "y", visibility="private")
    gh.add_secret(org, "CHOSEN", "z", visibility="selected", selected=[f"{org}/public-site"])
    write = gh.add_deploy_key(full, ssh_public_key(), title="release push", read_only=False)
    read = gh.add_deploy_key(full, ssh_public_key(), title="mirror")
    gh.add_workflow(full, "release.yml", RELEASE_WORKFLOW)
    gh.add_workflow(full, "broken.yml", "jobs: [not, a, mapping")
    grant, _ = gh.add_grant(org, "dev", [full], {"repository": {"contents": "write", "metadata": "read"}})
    bot = gh.add_installation(org, "release-bot", {"contents": "write", "metadata": "read"})
    gh.add_installation(org, "picky-bot", {"issues": "write"}, repository_selection="selected")
    return {"full": full, "write": write, "read": read, "grant": grant, "bot": bot}


def test_collect_models_the_seed_incident_path(gh: GithubDouble, new_org: Callable[[], str],
                                               app_connector: Callable[..., Any]) -> None:
    org = new_org()
    s = _seed(gh, org)
    full = s["full"]
    out = app_connector(org).collect()  # as a GitHub App: the org's PAT grants are listed
    nodes = {n.id: n for n in out.nodes}
    edges = _edges(out)
    action = repo_id("scanner-org/scan-action")
    publish = job_id(full, WF, "publish")
    pypi_secret, aws_secret = env_secret_id(full, "release", "PYPI_TOKEN"), repo_secret_id(full, "AWS_DEPLOY_KEY")
    # the key edge: a mutable tag of a third-party action reads every secret of the job
    assert (action, "can_read", pypi_secret) in edges and (action, "can_read", aws_secret) in edges
    assert (publish, "can_read", pypi_secret) in edges
    assert (action, "can_assume", publish) in edges  # it runs as the job (and on its runner)
    assert (action, "can_read", repo_secret_id(full, "UNUSED")) not in edges
    # pinned (full SHA) and first-party actions give no edge; the scan job reads no secret
    pinned = repo_id("pinned-org/setup-tool")
    assert pinned in nodes and not any(src == pinned for src, _, _ in edges)
    assert repo_id("actions/checkout") not in nodes
    assert nodes[publish].attrs["environment"] == "release"
    uses = {u["uses"]: u for u in nodes[publish].attrs["uses"]}
    assert uses["scanner-org/scan-action@v0.28.0"]["pinned"] is False
    assert uses["pinned-org/setup-tool@0123456789abcdef0123456789abcdef01234567"]["pinned"] is True
    # org secrets by visibility; names and dates only
    assert (repo_id(full), "can_read", org_secret_id(org, "ORG_WIDE")) in edges
    assert (repo_id(full), "can_read", org_secret_id(org, "CHOSEN")) not in edges
    assert (repo_id(f"{org}/public-site"), "can_read", org_secret_id(org, "CHOSEN")) in edges
    assert (repo_id(f"{org}/public-site"), "can_read", org_secret_id(org, "ORG_WIDE")) not in edges
    assert nodes[aws_secret].kind is NodeKind.SECRET and nodes[aws_secret].attrs["updated_at"]
    # deploy keys: write authenticates as the repo, read-only only reads it
    assert (deploy_key_id(full, s["write"]), "authenticates_as", repo_id(full)) in edges
    assert (deploy_key_id(full, s["read"]), "can_read", repo_id(full)) in edges
    # fine-grained PAT grant with contents:write
    pat = pat_id(org, s["grant"])
    assert nodes[pat].kind is NodeKind.TOKEN and nodes[pat].attrs["writes"] == ["contents"]
    assert (pat, "authenticates_as", repo_id(full)) in edges
    # an App installed on all repositories with contents:write pushes to each of them
    bot = f"github:installation:{org}/{s['bot']}"
    assert nodes[bot].attrs["writes"] == ["contents"] and (bot, "authenticates_as", repo_id(full)) in edges
    assert any(f.code == "github.installation_repositories_unlisted" for f in out.findings)
    # every one of the five repositories came through two-item pages
    assert sum(1 for n in nodes.values() if n.kind is NodeKind.REPO and n.name.startswith(org)) == 5
    assert any(f.code == "github.workflow_unreadable" and "broken.yml" in f.message for f in out.findings)
    assert "lab-pypi-value" not in repr(out) and "lab-aws-value" not in repr(out)


def test_collect_survives_a_secondary_rate_limit(gh: GithubDouble, new_org: Callable[[], str],
                                                 make_connector: Callable[..., Any]) -> None:
    org = new_org()
    gh.add_repo(org, "one")
    gh.secondary_limit(2)  # honoured with retry-after, then the reads go on
    out = make_connector(orgs=[org]).collect()
    assert repo_id(f"{org}/one") in {n.id for n in out.nodes}


def test_a_missing_token_fails_collect_with_401(gh: GithubDouble, new_org: Callable[[], str],
                                         make_connector: Callable[..., Any]) -> None:
    from connectors.github import GithubConnector

    org = new_org()
    gh.add_repo(org, "one")
    with pytest.raises(Exception, match="401"):
        GithubConnector({"type": "github", "orgs": [org], "base_url": gh.url, "token_env": "NO_SUCH_ENV_VAR",
                         "retry_seconds": 0}).collect()


def test_workflow_parsing_rules() -> None:
    jobs = {j.name: j for j in parse_workflow("""
jobs:
  call:
    uses: other-org/workflows/.github/workflows/deploy.yml@main
    secrets: inherit
  local:
    steps:
      - uses: ./.github/actions/mine
      - uses: docker://alpine:3
      - run: echo ${{ secrets.ONE }} ${{secrets[\"TWO\"]}}
""")}
    assert jobs["call"].inherits_all and jobs["call"].uses[0].repository == "other-org/workflows"
    assert not jobs["call"].uses[0].pinned
    assert jobs["local"].uses == [] and jobs["local"].secrets == {"ONE", "TWO"}


def test_options_are_checked() -> None:
    from connectors.github.connector import PROVIDER, GithubOptions
    from revoke.connector import ConnectorError

    with pytest.raises(ConnectorError, match="base_url"):
        GithubOptions.parse({"orgs": ["a"], "base_url": "http://example.com/"}, PROVIDER)
    with pytest.raises(ConnectorError, match="repos"):
        GithubOptions.parse({"repos": ["no-slash"]}, PROVIDER)
    with pytest.raises(ConnectorError, match="tokn_env"):
        GithubOptions.parse({"orgs": ["a"], "tokn_env": "X"}, PROVIDER)
    assert Relation.CAN_PUBLISH.value == "can_publish"


def test_hostile_workflow_files_cost_their_size(gh: GithubDouble, new_org: Callable[[], str],
                                                make_connector: Callable[..., Any]) -> None:
    """Workflow files come from whoever can push: an alias bomb, deep nesting and garbage are
    findings, and the rest of the repository is still collected."""
    import time

    org = new_org()
    full = f"{org}/app"
    gh.add_repo(org, "app")
    laughs = ["a0: &a0 ['${{ secrets.BOMB }}']"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    gh.add_workflow(full, "bomb.yml", "\n".join(laughs) + "\njobs:\n  b:\n    env: *a11\n    steps: [{uses: x/y@v1}]\n")
    gh.add_workflow(full, "deep.yml", "jobs: " + "[" * 5000 + "]" * 5000 + "\n")
    gh.add_workflow(full, "binary.yml", "\x00\x01 not yaml ::: [")
    gh.add_secret(full, "BOMB", "x")
    started = time.monotonic()
    out = make_connector(orgs=[org]).collect()
    assert time.monotonic() - started < 10
    edges = _edges(out)
    job = job_id(full, ".github/workflows/bomb.yml", "b")
    assert (job, "can_read", repo_secret_id(full, "BOMB")) in edges
    bad = {f.source for f in out.findings if f.code == "github.workflow_unreadable"}
    assert bad == {f"{full}/.github/workflows/deep.yml", f"{full}/.github/workflows/binary.yml"}


def test_names_with_spaces_make_ids_that_stay_one_token(gh: GithubDouble, new_org: Callable[[], str],
                                                        make_connector: Callable[..., Any], ctx: Any) -> None:
    from connectors.github.transform import secret_scope
    from revoke.model import NODE_ID_RE

    org = new_org()
    full = f"{org}/app"
    gh.add_repo(org, "app")
    gh.add_secret(full, "TOKEN", "v", env="Production / EU")
    gh.add_workflow(full, "my release.yml", "jobs:\n  'publish all#1':\n    environment: Production / EU\n"
                                            "    steps: [{run: 'echo ${{ secrets.TOKEN }}'}]\n")
    conn = make_connector(orgs=[org])
    out = conn.collect()
    assert all(NODE_ID_RE.match(n.id) for n in out.nodes), [n.id for n in out.nodes if not NODE_ID_RE.match(n.id)]
    sid = env_secret_id(full, "Production / EU", "TOKEN")
    assert secret_scope(sid) == {"repo": full, "env": "Production / EU", "name": "TOKEN"}
    assert (job_id(full, ".github/workflows/my release.yml", "publish all#1"), "can_read", sid) in _edges(out)
    # and a rotation writes into it (the environment's name URL-encoded in the path, as GitHub wants)
    from revoke.connector import Replacement, Secret
    from revoke.model import Node, NodeKind

    store = next(n for n in out.nodes if n.id == sid)
    rep = Replacement("github:token:old", "github:token:new", NodeKind.TOKEN, Secret({"token": "ghp_" + "n" * 36}))
    conn.write_store(store, Node("github:token:old", NodeKind.TOKEN, "github"), rep, ctx)
    assert gh.secret_value(full, "TOKEN", env="Production / EU") == "ghp_" + "n" * 36
    assert conn.store_holds(store) == {"github:token:new"}
