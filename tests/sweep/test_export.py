"""`revoke export`: GraphML and node-link JSON read back with networkx's own readers, DOT parsed
back (pydot when installed, else a strict small parser), and no secret value in any format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from examples.lab import pki
from revoke.connector import connector_class
from revoke.store import Store
from tests.sweep.sweep_testlib import ago, edge, node

CANARY = "CANARY-export-7f3a9c-do-not-leak"
KEY_ID = "aws:access_key:AKIAEXPORT"
USER = "aws:user:arn:aws:iam::123456789012:user/ci-deployer"
WEIRD = 'repo:we"ird\\name'  # quotes and backslashes must survive every format


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A store holding an inventory snapshot and an x509 snapshot collected from real key files;
    a canary is planted in the inventory's free-form attrs and the private key is real secret material."""
    tmp = tmp_path_factory.mktemp("export")
    ca, ca_key = pki.make_ca("Export CA")
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf, _ = pki.make_leaf(ca, ca_key, "svc.lab", private_key=leaf_key)
    key_pem = pki.pem_key(leaf_key)
    (tmp / "pki").mkdir()
    (tmp / "pki" / "ca.pem").write_text(pki.pem(ca))
    (tmp / "pki" / "svc.pem").write_text(pki.pem(leaf))
    (tmp / "pki" / "svc.key").write_text(key_pem)
    x = connector_class("x509")({"paths": [str(tmp / "pki")], "holder": "host:ci-runner-7"}).collect()
    nodes = [
        node("host:ci-runner-7", "host"),
        node(WEIRD, "repo"),
        node(KEY_ID, "access_key", created=ago(10), fingerprint="sha256:" + "9" * 64,
             attrs={"note": CANARY}, labels={"team": CANARY}),
        node(USER, "user"),
        node("vault:token:dead", "token", status="revoked"),
    ]
    edges = [
        edge("host:ci-runner-7", "stores", KEY_ID), edge(WEIRD, "stores", KEY_ID),
        edge(KEY_ID, "authenticates_as", USER), edge(KEY_ID, "can_read", USER),  # two rels, one pair
        edge("host:ci-runner-7", "stores", "vault:token:dead"),
    ]
    url = f"sqlite:///{tmp}/s.db"
    store = Store(url)
    store.replace_snapshot("inventory", "inventory", nodes, edges, {}, [])
    store.replace_snapshot("pki", "x509", x.nodes, x.edges, x.meta, [])
    graph = store.compile()
    expected_edges = {(graph.ids[i], graph_rel(graph, e), graph.ids[graph.indices[e]])
                      for i in range(graph.n_nodes) for e in graph.out_edges(i)}
    secrets = [CANARY, *_pem_body_chunks(key_pem)]
    # fingerprints of secret material (certificate fingerprints are their public ids)
    fingerprints = [n.fingerprint for n in x.nodes if n.kind == "private_key"] + ["sha256:" + "9" * 64]
    assert len(fingerprints) == 2
    store.close()
    return {"url": url, "ids": set(graph.ids), "edges": expected_edges, "secrets": secrets, "fps": fingerprints,
            "tmp": tmp}


def graph_rel(graph: object, e: int) -> str:
    from revoke.graph import RELS

    return RELS[graph.rel[e]].value  # type: ignore[attr-defined]


def _pem_body_chunks(pem: str) -> list[str]:
    lines = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    return lines[1:-1]  # full 64-char base64 lines of the key


def export(revoke_cli, world: dict[str, object], fmt: str) -> str:
    out = Path(str(world["tmp"])) / f"graph.{fmt}"
    code, stdout, err = revoke_cli("export", "--out", str(out), store=str(world["url"]), in_process=True)
    assert code == 0, err
    assert f"({fmt})" in stdout  # the format comes from the suffix
    return out.read_text()


def assert_no_secrets(text: str, world: dict[str, object]) -> None:
    for secret in world["secrets"]:  # type: ignore[attr-defined]
        assert secret not in text
    for fp in world["fps"]:  # type: ignore[attr-defined]
        assert fp.removeprefix("sha256:") not in text


def test_graphml_reads_back_with_networkx(revoke_cli, world: dict[str, object]) -> None:
    text = export(revoke_cli, world, "graphml")
    assert_no_secrets(text, world)
    g = nx.read_graphml(Path(str(world["tmp"])) / "graph.graphml", force_multigraph=True)
    assert g.is_directed() and g.is_multigraph()
    assert set(g.nodes) == world["ids"]
    assert {(a, d["rel"], b) for a, b, d in g.edges(data=True)} == world["edges"]
    assert g.nodes[KEY_ID]["kind"] == "access_key" and g.nodes[KEY_ID]["provider"] == "aws"
    assert g.nodes[KEY_ID]["status"] == "active" and g.nodes[KEY_ID]["live"] is True
    assert g.nodes["vault:token:dead"]["live"] is False
    assert WEIRD in g.nodes


def test_json_is_node_link_readable_by_networkx(revoke_cli, world: dict[str, object]) -> None:
    text = export(revoke_cli, world, "json")
    assert_no_secrets(text, world)
    data = json.loads(text)
    g = nx.node_link_graph(data)
    assert g.is_directed() and g.is_multigraph()
    assert set(g.nodes) == world["ids"]
    assert {(a, d["rel"], b) for a, b, d in g.edges(data=True)} == world["edges"]
    assert set(g[KEY_ID][USER]) == {"authenticates_as", "can_read"}  # the rel is the edge key
    assert g.nodes[KEY_ID]["created"].startswith(ago(10).date().isoformat())


_DOT_NODE = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*\[(.*)\];$')
_DOT_EDGE = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*->\s*("(?:[^"\\]|\\.)*")\s*\[(.*)\];$')
_DOT_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*")')


def _unquote(text: str) -> str:
    """A DOT string as Graphviz reads it (`\\"` is its only escape; other backslashes are kept),
    then the export's documented `\\xNN` escape undone."""
    from revoke.textsafe import unreversible

    return unreversible(text[1:-1].replace('\\"', '"'))


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], set[tuple[str, str, str]]]:
    """A strict reader for the subset `revoke export --format dot` writes: every line must be a
    node, an edge, a defaults line or a brace."""
    nodes: dict[str, dict[str, str]] = {}
    edges: set[tuple[str, str, str]] = set()
    lines = text.splitlines()
    assert lines[0] == "digraph revoke {" and lines[-1] == "}"
    for line in lines[1:-1]:
        if m := _DOT_EDGE.match(line):
            attrs = {k: _unquote(v) for k, v in _DOT_ATTR.findall(m.group(3))}
            edges.add((_unquote(m.group(1)), attrs["rel"], _unquote(m.group(2))))
        elif m := _DOT_NODE.match(line):
            nodes[_unquote(m.group(1))] = {k: _unquote(v) for k, v in _DOT_ATTR.findall(m.group(2))}
        else:
            assert re.match(r"^\s*(graph|node|edge) \[.*\];$", line), line
    return nodes, edges


def test_dot_parses_back(revoke_cli, world: dict[str, object]) -> None:
    text = export(revoke_cli, world, "dot")
    assert_no_secrets(text, world)
    nodes, edges = parse_dot(text)
    assert set(nodes) == world["ids"] and edges == world["edges"]
    assert nodes[KEY_ID]["kind"] == "access_key" and nodes[KEY_ID]["shape"] == "ellipse"
    assert nodes["host:ci-runner-7"]["shape"] == "box"


def test_dot_parses_with_pydot(revoke_cli, world: dict[str, object]) -> None:
    pydot = pytest.importorskip("pydot")
    text = export(revoke_cli, world, "dot")
    [g] = pydot.graph_from_dot_data(text)
    ids = {_unquote(n.get_name()) for n in g.get_nodes() if n.get_name() not in ("node", "edge", "graph")}
    assert ids == world["ids"]
    got = {(_unquote(e.get_source()), _unquote(e.get_attributes()["rel"]), _unquote(e.get_destination()))
           for e in g.get_edges()}
    assert got == world["edges"]


def test_export_to_stdout_and_bad_format(revoke_cli, world: dict[str, object]) -> None:
    code, out, _ = revoke_cli("export", store=str(world["url"]), in_process=True)
    assert code == 0 and json.loads(out)["multigraph"] is True  # json by default
    code, out, _ = revoke_cli("export", "--format", "graphml", store=str(world["url"]), in_process=True)
    assert code == 0 and out.startswith("<?xml")
    code, _, err = revoke_cli("export", "--format", "gexf", store=str(world["url"]), in_process=True)
    assert code == 2 and "--format" in err
