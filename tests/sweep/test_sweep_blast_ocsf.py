"""blast-radius-top (correctness and speed on a 10k-node graph) and the OCSF event shapes."""

from __future__ import annotations

import random
import time

from revoke.graph import resolve
from revoke.ocsf import action_event, finding_event, finding_uid
from revoke.sweep import Finding, Severity, SweepContext, default_config, run_sweep
from tests.sweep.sweep_testlib import edge, findings_of, node

TOKEN = "vault:token:ci"
SECRET = "vault:secret:secret/ci/aws-app"


def _chain() -> tuple[list, list]:  # type: ignore[type-arg]
    nodes = [
        node("host:ci-runner-7", "host"),
        node(TOKEN, "token", attrs={"ttl": 3600}),
        node(SECRET, "secret"),
        node("vault:policy:ci-read", "policy"),
        *[node(f"aws:access_key:AKIA{i}", "access_key") for i in range(3)],
        node("aws:user:arn:aws:iam::1:user/app", "user"),
        node("aws:role:arn:aws:iam::1:role/deploy", "role"),
        node("aws:access_key:AKIADEAD", "access_key", status="inactive"),
    ]
    edges = [
        edge("host:ci-runner-7", "stores", TOKEN),
        edge(TOKEN, "authenticates_as", "vault:policy:ci-read"),
        edge("vault:policy:ci-read", "can_read", SECRET),
        *[edge(SECRET, "stores", f"aws:access_key:AKIA{i}") for i in range(3)],
        *[edge(f"aws:access_key:AKIA{i}", "authenticates_as", "aws:user:arn:aws:iam::1:user/app") for i in range(3)],
        edge("aws:user:arn:aws:iam::1:user/app", "can_assume", "aws:role:arn:aws:iam::1:role/deploy"),
        edge("aws:access_key:AKIADEAD", "authenticates_as", "aws:user:arn:aws:iam::1:user/app"),
        edge("aws:access_key:AKIADEAD", "can_read", SECRET),  # would be the biggest, but it is dead
    ]
    return nodes, edges


def test_blast_radius_top_ranks_live_credentials_with_counts_by_kind() -> None:
    nodes, edges = _chain()
    found = findings_of("blast-radius-top", nodes, edges)
    assert [f.node for f in found] == [TOKEN, SECRET, "aws:access_key:AKIA0", "aws:access_key:AKIA1",
                                       "aws:access_key:AKIA2"]
    top = found[0]
    assert top.severity == Severity.INFO and top.targets == []
    assert top.evidence["reach"] == 7 and top.evidence["rank"] == 1
    assert top.evidence["by_kind"] == {"policy": 1, "secret": 1, "access_key": 3, "user": 1, "role": 1}
    assert top.evidence["credentials"] == 4 and top.evidence["holders"] == 3
    assert "#1 by blast radius: compromise exposes 7 nodes (3 access_key" in top.reason
    # the host reaches more than anything, but holders are not candidates
    assert "host:ci-runner-7" not in {f.node for f in found}
    assert [f.node for f in findings_of("blast-radius-top", nodes, edges, top=1)] == [TOKEN]
    assert [f.node for f in findings_of("blast-radius-top", nodes, edges, min_reach=5)] == [TOKEN, SECRET]


def _big_graph(n_hosts: int = 1500, n_keys: int = 6000, n_principals: int = 2500, seed: int = 7) -> tuple[list, list]:  # type: ignore[type-arg]
    rnd = random.Random(seed)
    nodes = [node(f"host:h{i}", "host") for i in range(n_hosts)]
    nodes += [node(f"aws:access_key:AKIA{i:06d}", "access_key") for i in range(n_keys)]
    nodes += [node(f"aws:role:arn:aws:iam::1:role/r{i}", "role") for i in range(n_principals)]
    edges = []
    for i in range(n_keys):
        edges.append(edge(f"host:h{rnd.randrange(n_hosts)}", "stores", f"aws:access_key:AKIA{i:06d}"))
        role = f"aws:role:arn:aws:iam::1:role/r{rnd.randrange(n_principals)}"
        edges.append(edge(f"aws:access_key:AKIA{i:06d}", "authenticates_as", role))
    for i in range(n_principals):  # a sparse role web, so reach sizes differ
        for _ in range(rnd.randrange(3)):
            edges.append(edge(f"aws:role:arn:aws:iam::1:role/r{i}", "can_assume",
                              f"aws:role:arn:aws:iam::1:role/r{rnd.randrange(n_principals)}"))
    return nodes, edges


def test_full_sweep_on_a_10k_node_graph_is_fast() -> None:
    nodes, edges = _big_graph()
    r = resolve(nodes, edges)
    assert len(r.nodes) == 10000
    start = time.perf_counter()
    findings = run_sweep(SweepContext(r.nodes, r.edges), default_config())
    elapsed = time.perf_counter() - start
    top = [f for f in findings if f.rule == "blast-radius-top"]
    assert len(top) == 10 and top[0].evidence["candidates_walked"] == 6000
    assert [f.evidence["reach"] for f in top] == sorted((f.evidence["reach"] for f in top), reverse=True)
    print(f"sweep of 10k nodes / {len(r.edges)} edges: {elapsed:.2f}s, {len(findings)} findings")
    assert elapsed < 10, elapsed  # ~1 s measured on a 2-core machine; generous for shared CI


def test_blast_radius_top_sampling_cap() -> None:
    nodes, edges = _big_graph(200, 800, 300)
    [f, *_] = findings_of("blast-radius-top", nodes, edges, max_candidates=50)
    assert f.evidence["candidates_walked"] == 50 and f.evidence["sampled"] is True


# ---------------------------------------------------------------------------------------------------
# OCSF

FINDING = Finding(rule="vault-token-root", severity=Severity.CRITICAL, reason="Vault token has the root policy",
                  node="vault:token:abc", kind="token", provider="vault", evidence={"policies": ["root"]},
                  path=[], targets=["vault:token:abc"])


def test_detection_finding_shape() -> None:
    e = finding_event(FINDING)
    assert (e["class_uid"], e["category_uid"], e["activity_id"], e["type_uid"]) == (2004, 2, 1, 200401)
    assert (e["severity_id"], e["severity"], e["status_id"], e["is_alert"]) == (5, "Critical", 1, True)
    assert isinstance(e["time"], int) and e["time"] > 1_700_000_000_000  # epoch milliseconds
    assert e["metadata"]["version"] == "1.3.0" and e["metadata"]["product"]["name"] == "revoke"
    info = e["finding_info"]
    assert info["uid"] == finding_uid("vault-token-root", "vault:token:abc") and info["uid"].startswith("revoke:")
    assert info["analytic"] == {"uid": "vault-token-root", "name": "vault-token-root", "type_id": 1, "type": "Rule"}
    assert info["title"] == "vault-token-root: Vault token has the root policy"
    assert e["resources"] == [{"uid": "vault:token:abc", "name": "vault:token:abc", "type": "token",
                               "data": {"provider": "vault"}}]
    assert e["evidences"] == [{"data": {"policies": ["root"], "graph_path": []}}]
    assert e["unmapped"] == {"targets": ["vault:token:abc"]}
    # stable across sweeps, distinct per rule/node/path; the dict form maps the same
    assert finding_event(FINDING.to_dict())["finding_info"]["uid"] == info["uid"]
    assert finding_uid("vault-token-root", "vault:token:abd") != info["uid"]
    low = finding_event(Finding("cert-expired", Severity.INFO, "r", "x509:cert:aa", "certificate", "x509",
                                evidence={"path": "/etc/ssl/a.pem"}, path=["host:a", "x509:cert:aa"]))
    assert low["evidences"][0]["data"] == {"path": "/etc/ssl/a.pem", "graph_path": ["host:a", "x509:cert:aa"]}
    assert (low["severity_id"], low["is_alert"]) == (1, False)


def test_account_change_from_a_journal_outcome() -> None:
    record = {"seq": 7, "ts": "2026-03-31T10:00:00+00:00", "type": "outcome", "action": "rotate:aws:access_key:AKIA1",
              "node": "aws:access_key:AKIA1", "data": {"ok": True, "changed": True, "detail": "rotated"},
              "prev": "0" * 64, "hash": "f" * 64}
    e = action_event(record)
    assert (e["class_uid"], e["category_uid"], e["activity_id"], e["type_uid"]) == (3001, 3, 3, 300103)
    assert e["activity_name"] == "Password Change" and (e["status_id"], e["status"]) == (1, "Success")
    assert e["time"] == 1774951200000 and e["severity_id"] == 1
    assert e["user"] == {"uid": "aws:access_key:AKIA1", "name": "aws:access_key:AKIA1", "type_id": 99, "type": "Credential"}
    assert e["unmapped"]["verb"] == "rotate" and e["unmapped"]["seq"] == 7 and e["status_detail"] == "rotated"
    failed = action_event({"action": "revoke:vault:token:t", "node": "vault:token:t", "data": {"ok": False,
                           "error": "vault: revoke failed: 503"}, "ts": "2026-03-31T10:00:00Z"})
    assert (failed["activity_id"], failed["status_id"], failed["severity_id"]) == (5, 2, 4)
    assert failed["status_detail"] == "vault: revoke failed: 503"
    flat = action_event({"verb": "finalize", "node": "aws:access_key:AKIA1", "ok": True,
                         "principal": "aws:user:arn:aws:iam::1:user/app", "actor": "alice@host"})
    assert flat["activity_id"] == 6 and flat["user"]["uid"] == "aws:user:arn:aws:iam::1:user/app"
    assert flat["resources"][0]["uid"] == "aws:access_key:AKIA1" and flat["actor"]["user"]["name"] == "alice@host"
    other = action_event({"verb": "distribute", "node": "x509:ca:aa"})
    assert (other["activity_id"], other["activity_name"], other["status_id"]) == (99, "distribute", 0)
