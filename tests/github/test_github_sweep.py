"""The CI rules, each with a positive and a negative case, over graphs shaped as the GitHub
connector records them."""

from __future__ import annotations

from tests.sweep.sweep_testlib import ago, edge, findings_of, node

JOB = "github:workflow_job:acme/gateway/.github/workflows/release.yml#publish"
LOOSE = {"uses": "scanner-org/scan-action@v0.28.0", "pinned": False, "third_party": True}
PINNED = {"uses": "scanner-org/scan-action@" + "a" * 40, "pinned": True, "third_party": True}
CHECKOUT = {"uses": "actions/checkout@v4", "pinned": False, "third_party": False}


def test_ci_action_unpinned() -> None:
    secret = ["github:secret:acme/gateway/PYPI_TOKEN"]
    hits = findings_of("ci-action-unpinned", [node(JOB, "workload", attrs={"secrets": secret, "uses": [LOOSE, CHECKOUT]})])
    assert len(hits) == 1 and "scanner-org/scan-action@v0.28.0" in hits[0].reason and hits[0].severity.value == "high"
    assert "actions/checkout" not in hits[0].reason
    assert not findings_of("ci-action-unpinned", [node(JOB, "workload", attrs={"secrets": secret, "uses": [PINNED]})])
    assert not findings_of("ci-action-unpinned", [node(JOB, "workload", attrs={"secrets": [], "uses": [LOOSE]})])


def test_deploy_key_write() -> None:
    key = "github:deploy_key:acme/gateway/7"
    assert findings_of("deploy-key-write", [node(key, "ssh_key", attrs={"read_only": False, "repo": "acme/gateway"})])
    assert not findings_of("deploy-key-write", [node(key, "ssh_key", attrs={"read_only": True})])
    assert not findings_of("deploy-key-write", [node(key, "ssh_key", status="deleted", attrs={"read_only": False})])


def test_ci_secret_not_rotated() -> None:
    sid, key = "github:secret:acme/gateway/AWS_DEPLOY_KEY", "aws:access_key:AKIAEXAMPLEEXAMPLE12"
    old = node(sid, "secret", attrs={"updated_at": ago(400).isoformat()})
    hits = findings_of("ci-secret-not-rotated", [old, node(key, "access_key")], [edge(sid, "stores", key)], days=365)
    assert len(hits) == 1 and hits[0].targets == [key]
    fresh = node(sid, "secret", attrs={"updated_at": ago(10).isoformat()})
    assert not findings_of("ci-secret-not-rotated", [fresh], days=365)


def test_pat_broad_write() -> None:
    pat = "github:pat:acme/12"
    repos = [f"acme/r{i}" for i in range(6)]
    assert findings_of("pat-broad-write", [node(pat, "token", attrs={"fine_grained": True, "writes": ["contents"],
                                                                     "repositories": repos})])
    assert not findings_of("pat-broad-write", [node(pat, "token", attrs={"fine_grained": True, "writes": [],
                                                                         "repositories": repos})])
    assert not findings_of("pat-broad-write", [node(pat, "token", attrs={"fine_grained": True, "writes": ["contents"],
                                                                         "repositories": repos[:2]})])
