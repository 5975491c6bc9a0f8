"""Residual reachability: a dead credential is still reported, but blocks every path through it."""

from __future__ import annotations

import numpy as np
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
    assert "aws:access_key:replacement" in radius(g, ["host:runner"], window=window, blocked=np.zeros(g.n_nodes, bool))
    if window is None:
        # blocking the dead is what a walk does by default
        assert reached(radius(g, ["host:runner"])) == reached(r)


def test_window_counts_a_dead_credential_only_while_it_was_live() -> None:
    # died at an unknown time, first seen dead now: it was live during the window
    g = build(NODES, EDGES)
    assert "aws:access_key:replacement" in radius(g, ["host:runner"], window=W)
    # died before the window opened: nothing through it
    early = [node("vault:token:dead", status="revoked", attrs={"died_at": "2026-03-31T09:00Z"}),
             *[n for n in NODES if n.id != "vault:token:dead"]]
    g = build(early, EDGES)
    r = radius(g, ["host:runner"], window=W)
    assert "vault:token:dead" in r and "vault:secret:behind_dead" not in r
    # died mid-window: what it could reach then is exposed, a replacement created after its death is not
    mid = [node("vault:token:dead", status="revoked", attrs={"died_at": "2026-03-31T11:00Z"}),
           node("aws:access_key:replacement", created="2026-03-31T12:00Z"),
           *[n for n in NODES if n.id not in ("vault:token:dead", "aws:access_key:replacement")]]
    g = build(mid, EDGES)
    r = radius(g, ["host:runner"], window=W)
    assert "vault:secret:behind_dead" in r and "aws:access_key:replacement" not in r


@pytest.mark.parametrize("window", [None, W], ids=["plain", "window"])
def test_a_dead_source_reaches_nothing_further(window) -> None:
    g = build(NODES, EDGES)
    r = radius(g, ["vault:token:dead"], blocked=dead_credentials(g), window=window)
    assert reached(r) == {"vault:token:dead": 0}


def test_all_blocked_false_walks_through_the_dead() -> None:
    g = build(NODES, EDGES)
    none = np.zeros(g.n_nodes, dtype=bool)
    assert set(reached(radius(g, ["host:runner"], blocked=none))) == {n.id for n in NODES}
