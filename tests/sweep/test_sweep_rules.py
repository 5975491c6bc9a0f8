"""Each key, token and storage rule with a positive and a negative case."""

from __future__ import annotations

from revoke.sweep import builtin_rules, findings_to_nodes
from tests.sweep.sweep_testlib import ago, ahead, edge, findings_of, flagged, node

USER = "aws:user:arn:aws:iam::123456789012:user/ci-deployer"
SA = "gcp:service_account:deployer@lab-project.iam.gserviceaccount.com"


def test_every_builtin_rule_is_tested_here_in_pki_or_in_github() -> None:
    assert set(builtin_rules()) == {
        "key-unused", "key-never-used", "key-rotation-overdue", "multiple-active-keys", "unused-by-observed-data",
        "vault-token-no-expiry", "vault-token-orphan", "vault-token-root",
        "secret-duplicated", "credential-multiple-holders", "holder-long-lived-credential",
        "cert-expiring", "cert-expired", "cert-bypasses-authorization",
        "cert-ca-expired", "cert-ca-unknown", "weak-key", "weak-signature",
        "trust-store-dead-ca", "trust-store-unknown-ca",
        "blast-radius-top",
        "ci-action-unpinned", "deploy-key-write", "ci-secret-not-rotated", "pat-broad-write",
    }


def test_key_unused() -> None:
    nodes = [
        node("aws:access_key:AKIAIDLE", "access_key", created=ago(400), last_used=ago(120)),
        node("aws:access_key:AKIABUSY", "access_key", created=ago(400), last_used=ago(2)),
        node("gcp:service_account_key:k1", "service_account_key", created=ago(400), last_used=ago(200)),
        # dead keys are not hygiene findings: nothing to act on
        node("aws:access_key:AKIAOFF", "access_key", created=ago(400), last_used=ago(300), status="inactive"),
        node("aws:access_key:AKIANEVER", "access_key", created=ago(400)),  # the other rule's business
    ]
    assert flagged("key-unused", nodes) == {"aws:access_key:AKIAIDLE", "gcp:service_account_key:k1"}
    assert flagged("key-unused", nodes, days=150) == {"gcp:service_account_key:k1"}
    [f] = [f for f in findings_of("key-unused", nodes) if f.node == "aws:access_key:AKIAIDLE"]
    assert f.severity == "medium" and f.evidence["idle_days"] == 120 and f.targets == ["aws:access_key:AKIAIDLE"]
    assert "last used 120 days ago" in f.reason


def test_key_never_used_only_where_the_provider_reports_use() -> None:
    nodes = [
        node("aws:access_key:AKIANEVER", "access_key", created=ago(30)),
        node("aws:access_key:AKIAFRESH", "access_key", created=ago(1)),  # within the grace period
        node("aws:access_key:AKIAUSED", "access_key", created=ago(30), last_used=ago(3)),
        # GCP keys carry no last_used at all: unknown, not never
        node("gcp:service_account_key:k2", "service_account_key", created=ago(30)),
    ]
    assert flagged("key-never-used", nodes) == {"aws:access_key:AKIANEVER"}
    assert flagged("key-never-used", nodes, providers=["aws", "gcp"]) == {"aws:access_key:AKIANEVER",
                                                                           "gcp:service_account_key:k2"}


def test_key_rotation_overdue() -> None:
    nodes = [
        node("aws:access_key:AKIAOLD", "access_key", created=ago(200), last_used=ago(1)),
        node("aws:access_key:AKIAYOUNG", "access_key", created=ago(10), last_used=ago(1)),
        node("gcp:service_account_key:k3", "service_account_key", created=ago(91)),
        node("aws:access_key:AKIANODATE", "access_key"),
    ]
    assert flagged("key-rotation-overdue", nodes) == {"aws:access_key:AKIAOLD", "gcp:service_account_key:k3"}
    assert flagged("key-rotation-overdue", nodes, max_age_days=365) == set()


def test_multiple_active_keys_per_principal() -> None:
    nodes = [
        node(USER, "user"),
        node(SA, "service_account"),
        node("aws:access_key:AKIA1", "access_key", created=ago(10)),
        node("aws:access_key:AKIA2", "access_key", created=ago(5)),
        node("gcp:service_account_key:a", "service_account_key"),
        node("gcp:service_account_key:b", "service_account_key", status="disabled"),
    ]
    edges = [
        edge("aws:access_key:AKIA1", "authenticates_as", USER),
        edge("aws:access_key:AKIA2", "authenticates_as", USER),
        edge("gcp:service_account_key:a", "authenticates_as", SA),
        edge("gcp:service_account_key:b", "authenticates_as", SA),  # disabled: one active key
    ]
    [f] = findings_of("multiple-active-keys", nodes, edges)
    assert f.node == USER and f.kind == "user"
    assert [k["id"] for k in f.evidence["keys"]] == ["aws:access_key:AKIA1", "aws:access_key:AKIA2"]
    # a person decides which key goes: nothing is handed to a rotation playbook
    assert f.targets == []
    assert flagged("multiple-active-keys", nodes, edges, max_active=2) == set()


def _token(acc: str, **attrs: object) -> object:
    expires = attrs.pop("expires", None)
    base = {"policies": ["default"], "orphan": False, "ttl": 3600, "path": "auth/token/create"}
    return node(f"vault:token:{acc}", "token", expires=expires, attrs={**base, **attrs})


def test_vault_token_no_expiry() -> None:
    nodes = [
        _token("forever", ttl=0),
        _token("hourly", ttl=3600, expires=ahead(1 / 24)),
        _token("expired", ttl=0, expires=ago(1)),  # dead already
        node("vault:secret_id:approle/ci/acc1", "token"),  # secret-id without TTL
        node("vault:secret_id:approle/ci/acc2", "token", expires=ahead(1)),
        node("aws:access_key:AKIAX", "access_key"),  # not a Vault token
    ]
    assert flagged("vault-token-no-expiry", nodes) == {"vault:token:forever", "vault:secret_id:approle/ci/acc1"}
    [f] = findings_of("vault-token-no-expiry", [nodes[0]])
    assert f.severity == "high" and f.evidence["ttl"] == 0 and f.evidence["policies"] == ["default"]


def test_vault_token_orphan() -> None:
    nodes = [
        _token("orph", orphan=True, path="auth/token/create-orphan"),
        _token("child", orphan=False),
        _token("approle-login", orphan=True, path="auth/approle/login"),  # orphans by design
    ]
    assert flagged("vault-token-orphan", nodes) == {"vault:token:orph"}
    assert flagged("vault-token-orphan", nodes, paths=[]) == {"vault:token:orph", "vault:token:approle-login"}


def test_vault_token_root_and_the_collector_token_is_never_a_target() -> None:
    nodes = [
        _token("rootish", policies=["root"]),
        _token("collector", policies=["root"], collector=True),
        _token("reader", policies=["ci-read", "default"]),
    ]
    found = {f.node: f for f in findings_of("vault-token-root", nodes)}
    assert set(found) == {"vault:token:rootish", "vault:token:collector"}
    assert found["vault:token:rootish"].severity == "critical"
    assert found["vault:token:rootish"].targets == ["vault:token:rootish"]
    assert found["vault:token:collector"].targets == [] and "collector" in found["vault:token:collector"].reason
    assert findings_to_nodes(found.values(), "critical") == ["vault:token:rootish"]


def test_secret_duplicated_by_fingerprint_but_not_aliases() -> None:
    fp = "sha256:" + "ab" * 32
    nodes = [
        node("vault:password:secret/ci/db#password", "password", fingerprint=fp),
        node("aws:password:arn:aws:secretsmanager:eu-west-1:1:secret:db#password", "password", fingerprint=fp),
        node("vault:password:secret/ci/other#password", "password", fingerprint="sha256:" + "cd" * 32),
        # one private key seen by two providers, joined by an alias edge: one copy
        node("x509:private_key:" + "11" * 32, "private_key", fingerprint="sha256:" + "ef" * 32),
        node("vault:api_key:secret/ci/k#key", "private_key", fingerprint="sha256:" + "ef" * 32),
        node("vault:secret:secret/ci/db", "secret"),
        node("host:ci-runner-7", "host"),
    ]
    edges = [
        edge("x509:private_key:" + "11" * 32, "derives", "vault:api_key:secret/ci/k#key", alias=True),
        edge("vault:secret:secret/ci/db", "stores", "vault:password:secret/ci/db#password"),
        edge("host:ci-runner-7", "stores", "aws:password:arn:aws:secretsmanager:eu-west-1:1:secret:db#password"),
    ]
    [f] = findings_of("secret-duplicated", nodes, edges)
    copies = ["aws:password:arn:aws:secretsmanager:eu-west-1:1:secret:db#password", "vault:password:secret/ci/db#password"]
    assert f.evidence["copies"] == copies and f.targets == copies
    assert f.evidence["holders"] == ["host:ci-runner-7", "vault:secret:secret/ci/db"]
    assert f.evidence["fingerprint"] == fp


def test_credential_multiple_holders() -> None:
    nodes = [
        node("host:a", "host"), node("host:b", "host"), node("repo:app", "repo"),
        node("aws:access_key:AKIASPREAD", "access_key"),
        node("aws:access_key:AKIAONCE", "access_key"),
        node("x509:cert:" + "22" * 32, "certificate"),  # public material: copies are fine
    ]
    edges = [
        edge("host:a", "stores", "aws:access_key:AKIASPREAD"), edge("repo:app", "stores", "aws:access_key:AKIASPREAD"),
        edge("host:a", "stores", "aws:access_key:AKIAONCE"),
        edge("host:a", "stores", "x509:cert:" + "22" * 32), edge("host:b", "stores", "x509:cert:" + "22" * 32),
    ]
    [f] = findings_of("credential-multiple-holders", nodes, edges)
    assert f.node == "aws:access_key:AKIASPREAD" and f.evidence["holders"] == ["host:a", "repo:app"]
    assert flagged("credential-multiple-holders", nodes, edges, max_holders=2) == set()


def test_holder_long_lived_credential() -> None:
    nodes = [
        node("host:ci-runner-7", "host"), node("repo:infra", "repo"), node("package:gw", "package"),
        node("aws:access_key:AKIALONG", "access_key"),
        _token("short", ttl=3600, expires=ahead(1)),
        node("vault:password:secret/ci/db#password", "password"),
        node("x509:private_key:" + "33" * 32, "private_key"),  # a key file never expires: not this rule's kind
    ]
    edges = [
        edge("host:ci-runner-7", "stores", "aws:access_key:AKIALONG"),
        edge("host:ci-runner-7", "stores", "vault:token:short"),
        edge("host:ci-runner-7", "stores", "x509:private_key:" + "33" * 32),
        edge("repo:infra", "stores", "vault:password:secret/ci/db#password"),
        edge("package:gw", "stores", "aws:access_key:AKIALONG"),  # a package is not a holder kind here
    ]
    found = findings_of("holder-long-lived-credential", nodes, edges)
    assert {(f.evidence["holder"], f.node) for f in found} == {
        ("host:ci-runner-7", "aws:access_key:AKIALONG"), ("repo:infra", "vault:password:secret/ci/db#password")}
    assert all(f.path == [f.evidence["holder"], f.node] for f in found)
    assert flagged("holder-long-lived-credential", nodes, edges, holder_kinds=["package"]) == {"aws:access_key:AKIALONG"}


def test_findings_to_nodes_threshold_order_and_dedup() -> None:
    nodes = [
        _token("root", policies=["root"], ttl=0),
        node("aws:access_key:AKIAOLD", "access_key", created=ago(200), last_used=ago(150)),
    ]
    from revoke.graph import resolve
    from revoke.sweep import SweepContext, run_sweep

    r = resolve(nodes, [])
    findings = run_sweep(SweepContext(r.nodes, r.edges))
    assert findings_to_nodes(findings, "high") == ["vault:token:root"]
    assert findings_to_nodes(findings, "medium") == ["vault:token:root", "aws:access_key:AKIAOLD"]
    # dicts (from `sweep --format json`) work the same
    assert findings_to_nodes([f.to_dict() for f in findings], "medium") == ["vault:token:root", "aws:access_key:AKIAOLD"]
