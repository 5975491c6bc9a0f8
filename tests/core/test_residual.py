"""Residual reachability: a dead credential is still reported, but blocks every path through it."""

from __future__ import annotations

import pytest
from core_testlib import W, build, dead_credentials, edge, node, paths, radius, reached

NODES = [
    node("host:runner"),
    node("vault:token:dead", status="revoked"),
    node("vault:token:live"),
    node("vault:secret:behind_dead"),
    node("vault:secret:shared"),
    node("aws:access_key:replacement"),
    node("aws:access_key:via_shared"),
]
EDGES = [
    edge("host:runner", "stores", "vault:token:dead"),
    edge("host:runner", "stores", "vault:token:live"),
    edge("vault:token:dead", "can_read", "vault:secret:behind_dead"),
    edge("vault:secret:behind_dead", "stores", "aws:access_key:replacement"),
    edge("vault:token:dead", "can_read", "vault:secret:shared"),
    edge("vault:token:live", "parent_of", "vault:token:dead"),
    edge("vault:token:live", "can_read", "vault:secret:shared"),
    edge("vault:secret:shared", "stores", "aws:access_key:via_shared"),
]


@pytest.mark.parametrize("window", [None, W], ids=["plain", "window"])
def test_dead_credential_blocks_paths_through_it(window) -> None:
    g = build(NODES, EDGES)
    blocked = dead_credentials(g)
    assert {g.ids[i] for i in blocked.nonzero()[0]} == {"vault:token:dead"}
    r = radius(g, ["host:runner"], blocked=blocked, window=window)
    assert reached(r) == {
        "host:runner": 0,
        "vault:token:dead": 1,  # still reported: it was exposed
        "vault:token:live": 1,
        "vault:secret:shared": 2,  # another live path reaches it
        "aws:access_key:via_shared": 3,
    }
    assert paths(r)["vault:secret:shared"] == ("host:runner", "vault:token:live", "vault:secret:shared")
    # without blocking, the replacement behind the dead token would be flagged
    assert "aws:access_key:replacement" in radius(g, ["host:runner"], window=window)


@pytest.mark.parametrize("window", [None, W], ids=["plain", "window"])
def test_a_dead_source_reaches_nothing_further(window) -> None:
    g = build(NODES, EDGES)
    r = radius(g, ["vault:token:dead"], blocked=dead_credentials(g), window=window)
    assert reached(r) == {"vault:token:dead": 0}


def test_all_blocked_false_is_the_plain_walk() -> None:
    g = build(NODES, EDGES)
    import numpy as np

    none = np.zeros(g.n_nodes, dtype=bool)
    assert reached(radius(g, ["host:runner"], blocked=none)) == reached(radius(g, ["host:runner"]))
