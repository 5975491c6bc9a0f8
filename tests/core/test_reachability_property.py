"""The compiled walks against networkx on random graphs: same reachable set, shortest depths,
and every reported path is a real path of that length starting at a source."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
from core_testlib import W, build, edge, node, radius
from hypothesis import given, settings
from hypothesis import strategies as st

KINDS = ["host", "token", "role", "secret", "user", "access_key"]
RELS = ["stores", "can_read", "can_assume", "authenticates_as", "parent_of"]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str, str]], list[str], set[str]]:
    n = draw(st.integers(1, 14))
    ids = [f"{KINDS[draw(st.integers(0, len(KINDS) - 1))]}:n{i}" for i in range(n)]
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.sampled_from(RELS)), max_size=40))
    edges = [(ids[a], rel, ids[b]) for a, b, rel in pairs]
    sources = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
    blocked = set(draw(st.lists(st.sampled_from(ids), max_size=4)))
    return ids, edges, sources, blocked


def _kind(node_id: str) -> str:
    return node_id.split(":")[0]


def _expected(ids: list[str], edges: list[tuple[str, str, str]], sources: list[str], blocked: set[str]) -> dict[str, int]:
    g = nx.DiGraph()
    g.add_nodes_from(ids)
    g.add_edges_from((a, b) for a, _, b in edges if a not in blocked)
    g.add_node("__super__")
    g.add_edges_from(("__super__", s) for s in sources)
    dist = nx.single_source_shortest_path_length(g, "__super__")
    return {k: v - 1 for k, v in dist.items() if k != "__super__"}


def _check(r, expected: dict[str, int], edge_pairs: set[tuple[str, str]], sources: list[str], blocked: set[str]) -> None:
    data = r.to_json()
    entries = data["credentials"] + data["holders"]
    assert {e["id"]: e["depth"] for e in entries} == expected
    for e in entries:
        path = e["path"]
        assert len(path) == e["depth"] + 1
        assert path[0] in sources and path[-1] == e["id"]
        for a, b in itertools.pairwise(path):
            assert (a, b) in edge_pairs and a not in blocked


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_plain_blocked_and_untimed_window_walks_match_networkx(case) -> None:
    ids, edges, sources, blocked = case
    g = build([node(i, _kind(i)) for i in ids], [edge(*e) for e in edges])
    pairs = {(a, b) for a, _, b in edges}
    mask = np.zeros(g.n_nodes, dtype=bool)
    mask[[g.lookup(b) for b in blocked]] = True
    free = _expected(ids, edges, sources, set())
    _check(radius(g, sources), free, pairs, sources, set())
    # without any dates, the window changes nothing
    _check(radius(g, sources, window=W), free, pairs, sources, set())
    res = _expected(ids, edges, sources, blocked)
    _check(radius(g, sources, blocked=mask), res, pairs, sources, blocked)
    _check(radius(g, sources, window=W, blocked=mask), res, pairs, sources, blocked)
