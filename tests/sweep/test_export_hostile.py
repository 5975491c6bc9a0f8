"""`revoke export` stays well-formed whatever an id holds: control characters XML 1.0 cannot carry,
a NUL, quotes and backslashes in every position, a 20,000-character id, bidi and C1 characters.
GraphML is read back by networkx, DOT by Graphviz itself (`dot`), node-link JSON by json; every
id round-trips exactly (through the documented `\\xNN` escape for GraphML and DOT)."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from typing import Any

import networkx as nx
import pytest

HOST = "host:ci-runner-7"
HOSTILE = [
    "aws:access_key:AKIA\x00NUL",
    "aws:access_key:AKIA\x1b[2Jclear",
    "aws:access_key:AKIA\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x1b",  # (\t \n \x1c-\x1f are whitespace: no id holds one)
    "aws:access_key:AKIA\x7fDEL\x84IND\x9bCSI",
    "aws:access_key:AKIA\u202erev\u2066iso\u2069\ufeff\ufffe",
    'repo:we"ird\\name',
    "repo:trailing\\",
    'repo:before\\"quote',
    "repo:looks\\x41escaped\\u0041too\\U00000041",
    "repo:double\\\\backslash",
    "repo:" + "\\x00" * 3,
    "repo:" + "long-" * 4000,  # 20,000 characters: over Graphviz's 16 KiB for one quoted string
    "repo:" + '"\\\x00' * 2000,  # long, and every piece boundary next to something that needs care
]
TOKENS = [  # four Vault tokens: the labels must tell them apart
    ("vault:token:acc-1a2b3c4d5e6f7g8h9i0j", "token-ci-runner"),
    ("vault:token:acc-9z8y7x6w5v4u3t2s1r0q", "token-deployer"),
    ("vault:token:acc-5f5f5f5f5f5f5f5f5f5f", "token"),
    ("vault:token:acc-0000aaaa1111bbbb2222", ""),
]


def unreversible(text: str) -> str:
    from revoke.textsafe import unreversible as undo  # the documented inverse of the exports' escape

    return undo(text)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.conftest import run_revoke

    root = tmp_path_factory.mktemp("export-hostile")
    nodes: list[dict[str, Any]] = [{"id": HOST, "kind": "host"}]
    edges: list[dict[str, str]] = []
    for nid in HOSTILE:
        kind = "access_key" if nid.startswith("aws:") else "repo"
        nodes.append({"id": nid, "kind": kind, "name": "name " + nid[-40:]})
        edges.append({"from": HOST, "to": nid, "rel": "stores"})
    edges.append({"from": HOSTILE[0], "to": HOSTILE[-1], "rel": "stores"})
    for nid, name in TOKENS:
        nodes.append({"id": nid, "kind": "token", "provider": "vault", **({"name": name} if name else {})})
        edges.append({"from": HOST, "to": nid, "rel": "stores"})
    (root / "inventory.json").write_text(json.dumps({"nodes": nodes, "edges": edges}))
    (root / "revoke.yaml").write_text("connectors:\n  - type: inventory\n    path: inventory.json\n")
    kw = {"cwd": root, "store": root / "s.db", "config": root / "revoke.yaml", "in_process": True}
    res = run_revoke("collect", **kw)
    assert res.returncode == 0, res
    files = {}
    for fmt in ("graphml", "dot", "json"):
        res = run_revoke("export", "--format", fmt, "--out", str(root / f"graph.{fmt}"), **kw)
        assert res.returncode == 0, res
        files[fmt] = root / f"graph.{fmt}"
    ids = {n["id"] for n in nodes}
    expected_edges = {(e["from"], e["rel"], e["to"]) for e in edges}
    return {"files": files, "ids": ids, "edges": expected_edges, "root": root}


def test_graphml_is_well_formed_and_ids_round_trip(world: dict[str, Any]) -> None:
    path = world["files"]["graphml"]
    ET.parse(path)  # well-formed XML 1.0
    g = nx.read_graphml(path, force_multigraph=True)
    assert {unreversible(n) for n in g.nodes} == world["ids"]
    assert {(unreversible(a), d["rel"], unreversible(b)) for a, b, d in g.edges(data=True)} == world["edges"]
    labels = {unreversible(n): d["label"] for n, d in g.nodes(data=True)}
    assert all("\x1b" not in label and "\x00" not in label for label in labels.values())


def test_dot_parses_with_graphviz_and_ids_round_trip(world: dict[str, Any]) -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's `dot` is not installed (Debian package graphviz; .ci/run installs it)")
    path = world["files"]["dot"]
    svg = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True, timeout=120)
    assert svg.returncode == 0, svg.stderr.decode()[:2000]
    ET.fromstring(svg.stdout)  # the picture Graphviz drew from it is well-formed too
    parsed = subprocess.run(["dot", "-Tjson", str(path)], capture_output=True, timeout=120)
    assert parsed.returncode == 0, parsed.stderr.decode()[:2000]
    data = json.loads(parsed.stdout)
    names = [unreversible(o["name"]) for o in data["objects"]]
    assert set(names) == world["ids"]
    got = {(names[e["tail"]], unreversible(e["rel"]), names[e["head"]]) for e in data["edges"]}
    assert got == world["edges"]
    text = path.read_text()
    assert '\n  "repo:we\\"ird\\name" [' in text  # a backslash in an id is never doubled (a label's is)


def test_json_export_keeps_ids_exactly_and_tells_vault_tokens_apart(world: dict[str, Any]) -> None:
    data = json.loads(world["files"]["json"].read_text())
    g = nx.node_link_graph(data, edges="edges")
    assert set(g.nodes) == world["ids"]
    assert {(a, d["rel"], b) for a, b, d in g.edges(data=True)} == world["edges"]
    labels = {n["id"]: n["label"] for n in data["nodes"] if n["id"].startswith("vault:token:")}
    assert labels == {
        "vault:token:acc-1a2b3c4d5e6f7g8h9i0j": "token ci-runner (acc-1a2b\u2026)",
        "vault:token:acc-9z8y7x6w5v4u3t2s1r0q": "token deployer (acc-9z8y\u2026)",
        "vault:token:acc-5f5f5f5f5f5f5f5f5f5f": "token (acc-5f5f\u2026)",
        "vault:token:acc-0000aaaa1111bbbb2222": "token (acc-0000\u2026)",
    }
    dot = world["files"]["dot"].read_text()
    assert "token ci-runner (acc-1a2b\u2026)\\ntoken" in dot  # the label, then the kind on its own line


def test_reversible_escape_round_trips_anything() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from revoke.export import file_text

    alphabet = st.sampled_from([*'\\"xuU0aF\x00\x01\x1f\x7f\x9f\ufffe\uffff\u202e', "\\x41", "\\u0041"])

    @settings(max_examples=400, deadline=None)
    @given(st.lists(alphabet, max_size=20).map("".join))
    def check(text: str) -> None:
        encoded = file_text(text)
        assert unreversible(encoded) == text
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\ufffe\uffff" for c in encoded)
        assert not encoded.endswith("\\") and '\\"' not in encoded

    check()
