"""Reachability semantics: chains, diamonds, cycles, self-loops, several sources, the
credential/holder split, `fp:` references, stubs and merged snapshots."""

from __future__ import annotations

from core_testlib import build, chain_graph, edge, node, paths, radius, reached, t

from revoke.graph import merge_nodes, resolve, stub_node
from revoke.model import CREDENTIAL_KINDS, Node, NodeKind

CHAIN = [
    ("host:a", "stores", "vault:token:t1"),
    ("vault:token:t1", "can_read", "vault:secret:s"),
    ("vault:secret:s", "stores", "aws:access_key:K"),
    ("aws:access_key:K", "authenticates_as", "aws:user:u"),
    ("host:other", "stores", "aws:access_key:OTHER"),
]


def test_chain_depths_paths_and_hops() -> None:
    g = chain_graph(CHAIN)
    r = radius(g, ["host:a"])
    assert reached(r) == {"host:a": 0, "vault:token:t1": 1, "vault:secret:s": 2, "aws:access_key:K": 3, "aws:user:u": 4}
    assert paths(r)["aws:user:u"] == ("host:a", "vault:token:t1", "vault:secret:s", "aws:access_key:K", "aws:user:u")
    assert r.hops("aws:user:u") == [
        ("host:a", "stores", "vault:token:t1"),
        ("vault:token:t1", "can_read", "vault:secret:s"),
        ("vault:secret:s", "stores", "aws:access_key:K"),
        ("aws:access_key:K", "authenticates_as", "aws:user:u"),
    ]
    assert r.hops("host:a") == []
    assert "aws:access_key:OTHER" not in r
    assert r.hops("aws:access_key:OTHER") is None
    assert r.path_ids("no:such:node") is None


def test_credentials_and_holders_are_split_by_kind() -> None:
    g = chain_graph(CHAIN)
    data = radius(g, ["host:a"]).to_json()
    assert data["sources"] == ["host:a"]
    assert {e["id"] for e in data["credentials"]} == {"vault:token:t1", "vault:secret:s", "aws:access_key:K"}
    assert {e["id"] for e in data["holders"]} == {"host:a", "aws:user:u"}
    assert all(NodeKind(e["kind"]) in CREDENTIAL_KINDS for e in data["credentials"])
    assert not any(NodeKind(e["kind"]) in CREDENTIAL_KINDS for e in data["holders"])
    # sorted by depth, then id
    assert [e["id"] for e in data["credentials"]] == ["vault:token:t1", "vault:secret:s", "aws:access_key:K"]


def test_diamond_picks_one_shortest_path() -> None:
    g = chain_graph([
        ("host:a", "stores", "vault:token:b"),
        ("host:a", "stores", "vault:token:c"),
        ("vault:token:b", "can_read", "vault:secret:d"),
        ("vault:token:c", "can_read", "vault:secret:d"),
        ("vault:secret:d", "stores", "aws:access_key:e"),
    ])
    r = radius(g, ["host:a"])
    assert reached(r) == {"host:a": 0, "vault:token:b": 1, "vault:token:c": 1, "vault:secret:d": 2, "aws:access_key:e": 3}
    p = paths(r)
    assert p["vault:secret:d"] in {("host:a", "vault:token:b", "vault:secret:d"), ("host:a", "vault:token:c", "vault:secret:d")}
    assert p["aws:access_key:e"][:-1] == p["vault:secret:d"]


def test_uneven_diamond_takes_the_short_arm() -> None:
    g = chain_graph([
        ("host:a", "stores", "vault:token:long1"),
        ("vault:token:long1", "parent_of", "vault:token:long2"),
        ("vault:token:long2", "can_read", "vault:secret:d"),
        ("host:a", "stores", "vault:token:short"),
        ("vault:token:short", "can_read", "vault:secret:d"),
        ("vault:secret:d", "stores", "aws:access_key:e"),
    ])
    r = radius(g, ["host:a"])
    assert paths(r)["aws:access_key:e"] == ("host:a", "vault:token:short", "vault:secret:d", "aws:access_key:e")
    assert reached(r)["aws:access_key:e"] == 3


def test_role_assume_cycle_and_self_loop() -> None:
    g = chain_graph([
        ("aws:access_key:K", "authenticates_as", "aws:role:A"),
        ("aws:role:A", "can_assume", "aws:role:B"),
        ("aws:role:B", "can_assume", "aws:role:A"),
        ("aws:role:B", "can_assume", "aws:role:B"),
        ("aws:role:B", "can_read", "aws:secret:S"),
    ])
    assert reached(radius(g, ["aws:access_key:K"])) == {
        "aws:access_key:K": 0, "aws:role:A": 1, "aws:role:B": 2, "aws:secret:S": 3}
    # a source inside the cycle stays at depth 0, its self-loop does not make it its own child
    r = radius(g, ["aws:role:B"])
    assert reached(r) == {"aws:role:B": 0, "aws:role:A": 1, "aws:secret:S": 1}
    assert paths(r)["aws:role:B"] == ("aws:role:B",)
    assert paths(r)["aws:role:A"] == ("aws:role:B", "aws:role:A")


def test_multiple_sources_share_one_walk() -> None:
    g = chain_graph(CHAIN)
    r = radius(g, ["host:a", "vault:secret:s", "host:other"])
    assert reached(r) == {
        "host:a": 0, "vault:secret:s": 0, "host:other": 0,  # sources, even when reachable from another
        "vault:token:t1": 1, "aws:access_key:K": 1, "aws:user:u": 2, "aws:access_key:OTHER": 1,
    }
    p = paths(r)
    assert p["aws:access_key:K"] == ("vault:secret:s", "aws:access_key:K")
    assert p["vault:secret:s"] == ("vault:secret:s",)
    assert r.to_json()["sources"] == ["host:a", "vault:secret:s", "host:other"]


def test_duplicate_source_indices_are_harmless() -> None:
    g = chain_graph(CHAIN)
    assert reached(radius(g, ["host:a", "host:a"])) == reached(radius(g, ["host:a"]))


def test_fp_reference_resolves_to_the_node_with_that_fingerprint() -> None:
    tok = Node("vault:token:acc1", NodeKind.TOKEN, "vault", fingerprint="sha256:" + "ab" * 32)
    res = resolve(
        [node("host:h"), tok],
        [edge("host:h", "stores", "fp:sha256:" + "ab" * 32), edge("host:h", "stores", "fp:sha256:" + "cd" * 32)],
    )
    assert {e.key for e in res.edges} == {
        ("host:h", "stores", "vault:token:acc1"),
        ("host:h", "stores", "fp:sha256:" + "cd" * 32),
    }
    # the unresolved reference is kept as a stub (never dropped) and reported
    assert res.unresolved == ["fp:sha256:" + "cd" * 32]
    assert set(res.nodes) == {"host:h", "vault:token:acc1", "fp:sha256:" + "cd" * 32}
    assert res.nodes["fp:sha256:" + "cd" * 32].attrs == {"stub": True}


def test_references_to_uncollected_nodes_become_stubs_in_the_radius() -> None:
    res = resolve(
        [node("vault:secret:secret/ci/aws-app", "secret")],
        [
            edge("vault:secret:secret/ci/aws-app", "stores", "aws:access_key:AKIANOTCOLLECTED"),
            edge("vault:secret:secret/ci/aws-app", "stores", "gcp:service_account_key:k1"),
        ],
    )
    stub = res.nodes["aws:access_key:AKIANOTCOLLECTED"]
    assert (stub.kind, stub.provider, stub.attrs) == (NodeKind.ACCESS_KEY, "aws", {"stub": True})
    assert res.nodes["gcp:service_account_key:k1"].kind is NodeKind.SERVICE_ACCOUNT_KEY
    unhinted = resolve([node("host:h")], [edge("host:h", "stores", "saas:thing:x")])
    hinted_edge = edge("host:h", "stores", "saas:thing:y")
    hinted_edge.attrs["dst_kind"] = "api_key"
    assert unhinted.nodes["saas:thing:x"].kind is NodeKind.SECRET  # unknown type: a credential, never dropped
    assert resolve([node("host:h")], [hinted_edge]).nodes["saas:thing:y"].kind is NodeKind.API_KEY
    g = build(list(res.nodes.values()), res.edges)
    data = radius(g, ["vault:secret:secret/ci/aws-app"]).to_json()
    assert {e["id"] for e in data["credentials"]} == {
        "vault:secret:secret/ci/aws-app", "aws:access_key:AKIANOTCOLLECTED", "gcp:service_account_key:k1"}


def test_same_node_from_two_snapshots_is_merged() -> None:
    from_inventory = Node("aws:access_key:K", NodeKind.ACCESS_KEY, "aws", owner="team-ci", labels={"env": "ci"})
    from_aws = Node("aws:access_key:K", NodeKind.ACCESS_KEY, "aws", created=t("2025-01-01"),
                    status="inactive", labels={"team": "platform"}, attrs={"user": "ci-deployer"})
    res = resolve([from_inventory, from_aws, node("host:h")],
                  [edge("host:h", "stores", "aws:access_key:K", since="2026-01-02"),
                   edge("host:h", "stores", "aws:access_key:K", since="2026-01-01")])
    merged = res.nodes["aws:access_key:K"]
    assert (merged.owner, merged.status, merged.created.year) == ("team-ci", "inactive", 2025)
    assert merged.labels == {"env": "ci", "team": "platform"}
    assert merged.attrs == {"user": "ci-deployer"}
    # the duplicated edge is one edge with the union of its validity
    assert len(res.edges) == 1 and res.edges[0].since.day == 1
    g = build(list(res.nodes.values()), res.edges)
    assert g.n_nodes == 2 and g.n_edges == 1
    assert not g.live[g.lookup("aws:access_key:K")]


def test_a_stub_merged_with_the_real_node_takes_its_kind() -> None:
    stub = stub_node("aws:account:123456789012")
    real = Node("aws:account:123456789012", NodeKind.ROLE, "aws", status="active")
    merged = merge_nodes(stub, real)
    assert (merged.kind, merged.attrs) == (NodeKind.ROLE, {})
    # a stub arriving second never downgrades what is known
    known = Node("aws:user:u", NodeKind.USER, "aws", status="disabled")
    assert merge_nodes(known, stub_node("aws:user:u")).status == "disabled"


def test_expired_and_revoked_nodes_are_not_live() -> None:
    g = build([node("aws:access_key:A", status="revoked"),
               Node("x509:cert:c", NodeKind.CERTIFICATE, expires=t("2020-01-01")),
               node("aws:access_key:B")], [])
    assert {g.ids[i] for i in range(g.n_nodes) if g.live[i]} == {"aws:access_key:B"}


def test_deep_chain_depths_and_paths() -> None:
    # deeper than the per-level fast path handles: depths come from pointer doubling
    chain = [(f"vault:token:t{i:03d}", "parent_of", f"vault:token:t{i + 1:03d}") for i in range(150)]
    g = chain_graph([*chain, ("vault:token:t075", "can_read", "vault:secret:mid")])
    r = radius(g, ["vault:token:t000"])
    depths = reached(r)
    assert depths == {**{f"vault:token:t{i:03d}": i for i in range(151)}, "vault:secret:mid": 76}
    # a long path is printed as its first and last 8 ids around "…", with its whole length
    long = next(e for e in r.to_json()["credentials"] if e["id"] == "vault:token:t150")
    assert long["path_length"] == 151
    assert long["path"] == [*(f"vault:token:t{i:03d}" for i in range(8)), "…",
                            *(f"vault:token:t{i:03d}" for i in range(143, 151))]
    assert len(r.path_ids("vault:token:t150") or []) == 151
    assert int(r.depth[g.lookup("vault:token:t150")]) == 150


def test_depths_from_a_non_breadth_first_order() -> None:
    import numpy as np

    from revoke.blast_paths import reached_depths

    # 3 <- 0 -> 1 -> 2: breadth-first as 0, 1, 3, 2; depth-first (as a windowed walk may pop) as 0, 1, 2, 3
    pred = np.array([-1, 0, 1, 0])
    assert reached_depths(pred, np.array([0, 1, 3, 2])).tolist() == [0, 1, 1, 2]
    assert reached_depths(pred, np.array([0, 1, 2, 3])).tolist() == [0, 1, 2, 1]
