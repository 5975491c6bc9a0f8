"""Output and memory stay linear in the graph however deep it is. Every reached node's entry
carries a path from a source to the node; a long one is printed as its first PATH_HEAD and last
PATH_TAIL ids around "…" with its `path_length`, so a 20,000-long chain no longer prints 200
million ids (`revoke explain` still gives the whole path). Plan steps, which the journal keeps,
are shortened the same way."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revoke.blast import ELIDED, PATH_HEAD, PATH_TAIL, Window, blast_radius
from revoke.graph import CompiledGraph, resolve
from revoke.model import Edge, Node, NodeKind, Relation
from tests.reliability.hostile_testlib import run_bounded
from tests.reliability.reliability_testlib import record_figures

WHOLE = PATH_HEAD + PATH_TAIL + 1  # longest path printed whole


def _graph(chain: int, branches: list[tuple[int, int]]) -> CompiledGraph:
    """host:src -> k1 -> ... -> k<chain>, plus a side token hanging off chain node a for each (a, b)
    and a shortcut edge from node a to node b (so some nodes have shorter paths than their index)."""
    ids = ["host:src", *(f"vault:token:k{i:05d}" for i in range(1, chain + 1))]
    nodes = [Node(ids[0], NodeKind.HOST)] + [Node(i, NodeKind.TOKEN, provider="vault") for i in ids[1:]]
    edges = [Edge(a, b, Relation.PARENT_OF) for a, b in itertools.pairwise(ids)]
    for n, (a, b) in enumerate(branches):
        src, dst = ids[a % len(ids)], ids[b % len(ids)]
        side = f"vault:secret:side{n}"
        nodes.append(Node(side, NodeKind.SECRET, provider="vault"))
        edges += [Edge(src, side, Relation.CAN_READ), Edge(src, dst, Relation.CAN_READ)]
    resolved = resolve(nodes, edges)
    return CompiledGraph.build(resolved.nodes, resolved.edges)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(chain=st.integers(1, 80), branches=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 80)), max_size=6),
       windowed=st.booleans())
def test_every_printed_path_runs_from_a_source_to_its_node(chain: int, branches: list[tuple[int, int]],
                                                           windowed: bool) -> None:
    graph = _graph(chain, branches)
    window = Window.parse("2026-03-31T10:00Z/2026-03-31T13:00Z") if windowed else None
    radius = blast_radius(graph, [graph.lookup("host:src")], window=window)  # type: ignore[list-item]
    data = radius.to_json()
    for entry in data["credentials"] + data["holders"]:
        whole = radius.path_ids(entry["id"])
        assert whole is not None and whole[0] == "host:src" and whole[-1] == entry["id"]
        assert len(whole) == entry["depth"] + 1
        if len(whole) <= WHOLE:
            assert entry["path"] == whole and "path_length" not in entry
        else:
            assert entry["path"] == [*whole[:PATH_HEAD], ELIDED, *whole[-PATH_TAIL:]]
            assert entry["path_length"] == len(whole)


def _chain_site(root: Path, length: int) -> Path:
    root.mkdir(parents=True)
    nodes = [{"id": "host:h0", "kind": "host"}]
    nodes += [{"id": f"x:password:p{i}", "kind": "password", "provider": "x", "status": "active"} for i in range(1, length)]
    edges = [{"from": a["id"], "to": b["id"], "rel": "stores"} for a, b in itertools.pairwise(nodes)]
    (root / "inventory.json").write_text(json.dumps({"nodes": nodes, "edges": edges}))
    (root / "revoke.yaml").write_text("connectors:\n  - {type: inventory, path: inventory.json}\n")
    return root


def test_a_20000_long_chain_stays_linear_in_output_memory_and_time(tmp_path: Path) -> None:
    figures: dict[int, dict[str, float]] = {}
    last = {}
    for length in (10_000, 20_000):
        site = _chain_site(tmp_path / str(length), length)
        kw = {"cwd": site, "store": site / ".revoke" / "revoke.db", "timeout": 120}
        assert run_bounded("collect", **kw).returncode == 0  # type: ignore[arg-type]
        last[length] = f"x:password:p{length - 1}"
        blast = run_bounded("blast-radius", "host:h0", "--format", "json", **kw)  # type: ignore[arg-type]
        plan = run_bounded("plan", "compromised-host", "--node", "host:h0", "--format", "json", **kw)  # type: ignore[arg-type]
        explain = run_bounded("explain", "host:h0", last[length], "--format", "json", **kw)  # type: ignore[arg-type]
        for res in (blast, plan, explain):
            assert res.returncode == 0, res.stderr[-1000:]
        figures[length] = {"blast_bytes": len(blast.stdout), "blast_mb": round(blast.peak_mb), "blast_s": round(blast.seconds, 2),
                           "plan_bytes": len(plan.stdout), "plan_mb": round(plan.peak_mb), "plan_s": round(plan.seconds, 2)}
        deepest = json.loads(blast.stdout)["credentials"][-1]
        assert deepest["id"] == last[length] and deepest["path_length"] == length
        assert deepest["path"][0] == "host:h0" and deepest["path"][-1] == last[length] and ELIDED in deepest["path"]
        steps = json.loads(plan.stdout)["steps"]
        step = next(s for s in steps if s["node"] == last[length])
        assert step["depth"] == length - 1 and len(step["path"]) == WHOLE
        # explain gives the whole path, hop by hop
        hops = json.loads(explain.stdout)["hops"]
        assert len(hops) == length - 1 and hops[0]["from"] == "host:h0" and hops[-1]["to"] == last[length]
        for res in (blast, plan):
            assert res.peak_mb < 500, figures[length]
            assert len(res.stdout) < 1200 * length, figures[length]  # bytes per reached node, whatever its depth
    record_figures("long_paths", {str(k): v for k, v in figures.items()})
    # twice the chain, about twice the output (quadratic would be 4x)
    for key in ("blast_bytes", "plan_bytes"):
        assert figures[20_000][key] < 2.3 * figures[10_000][key], figures
