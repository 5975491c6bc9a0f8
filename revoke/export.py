r"""Graph export for other tools: GraphML (Gephi, yEd, networkx, Neo4j via `apoc.import.graphml`),
DOT (Graphviz) and node-link JSON (networkx `node_link_graph`, D3, Neo4j via `apoc.load.json`).

Nodes carry id, kind, provider, status, live, name and the created / expires / last_used times;
edges carry rel and since / until (and alias when set). Node `attrs`, `labels` and `fingerprint`
are left out: the graph holds no secret values, but a SHA-256 of a weak password is crackable
offline, and an export travels further than the store.

Every format is a directed multigraph: two nodes may be joined by several relations; the rel is
each edge's key. Each node also carries a `label` for people (`revoke.idtext.export_label`: a Vault
token reads `token ci-runner (acc-1a2b…)`).

Ids and values stay exact and the files stay well-formed whatever an id holds. JSON escapes
everything itself. GraphML (XML 1.0) cannot carry most control characters even as character
references, and Graphviz reads no NUL and no quoted string over 16 KiB: in GraphML and DOT, a
control character (C0, DEL, C1), a surrogate or U+FFFE/U+FFFF is written `\xNN` (`\uNNNN`),
and a backslash that could be misread as the start of one (before `x`/`u`/`U` and hex digits,
before `"`, or last) is written `\x5c`; `revoke.textsafe.unreversible()` gives the id back. Other
backslashes are written as they are (never doubled). DOT splits a long quoted string into
concatenated pieces (`"..." + "..."`), which Graphviz joins back.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from revoke.idtext import export_label
from revoke.model import Edge, Node
from revoke.textsafe import reversible, safe

FORMATS = ("graphml", "dot", "json")


@dataclass
class ExportGraph:
    nodes: list[tuple[str, dict[str, Any]]]
    edges: list[tuple[str, str, str, dict[str, Any]]]  # src, dst, key (the rel), attributes


def node_fields(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": node.kind.value, "provider": node.provider, "status": node.status,
                           "live": node.is_live, "credential": node.is_credential,
                           "label": export_label(node.id, node.kind.value, node.name)}
    if node.name:
        out["name"] = node.name
    for name in ("created", "expires", "last_used"):
        value = getattr(node, name)
        if value is not None:
            out[name] = value.isoformat()
    if node.attrs.get("stub"):
        out["stub"] = True
    return out


def edge_fields(edge: Edge) -> dict[str, Any]:
    out: dict[str, Any] = {"rel": edge.rel.value}
    if edge.since is not None:
        out["since"] = edge.since.isoformat()
    if edge.until is not None:
        out["until"] = edge.until.isoformat()
    if edge.attrs.get("alias"):
        out["alias"] = True
    return out


def build(nodes: dict[str, Node], edges: list[Edge]) -> ExportGraph:
    return ExportGraph(
        [(nid, node_fields(nodes[nid])) for nid in sorted(nodes)],
        sorted((e.src, e.dst, e.rel.value, edge_fields(e)) for e in edges),
    )


def from_store(store: Any) -> ExportGraph:
    from revoke.errors import StoreError
    from revoke.graph import resolve

    if not store.snapshots():
        raise StoreError(f"store {store.where} holds no graph yet; run `revoke collect` first")
    nodes, edges = store.load_nodes_edges()
    resolved = resolve(nodes, edges)
    return build(resolved.nodes, resolved.edges)


# ---------------------------------------------------------------------------------------------------
def write_json(graph: ExportGraph, fh: IO[str]) -> None:
    """networkx node-link form (`nx.node_link_graph(data)` with networkx >= 3.4, or pass
    `edges="edges"` to older versions)."""
    data = {
        "directed": True,
        "multigraph": True,
        "graph": {"name": "revoke trust graph"},
        "nodes": [{"id": nid, **attrs} for nid, attrs in graph.nodes],
        "edges": [{"source": s, "target": t, "key": k, **attrs} for s, t, k, attrs in graph.edges],
    }
    json.dump(data, fh, indent=None, separators=(",", ":"))
    fh.write("\n")


def _unsafe_in_files(ch: str) -> bool:
    """What XML 1.0 cannot carry (C0 but tab/newline/CR, surrogates, U+FFFE/FFFF), and the rest of
    C0, DEL and C1 besides: in GraphML an attribute's tab or newline does not survive its parser's
    normalisation, and in DOT a newline or NUL does not survive Graphviz."""
    n = ord(ch)
    return n < 0x20 or 0x7F <= n <= 0x9F or 0xD800 <= n <= 0xDFFF or n in (0xFFFE, 0xFFFF)


def file_text(value: str) -> str:
    """An id or value as written to GraphML and DOT (see the module docstring)."""
    return reversible(value, _unsafe_in_files)


def _file_value(value: Any) -> Any:
    return file_text(value) if isinstance(value, str) else value


def write_graphml(graph: ExportGraph, fh: IO[bytes]) -> None:
    import networkx as nx

    g = nx.MultiDiGraph(name="revoke trust graph")
    g.add_nodes_from((file_text(nid), {k: _file_value(v) for k, v in attrs.items()}) for nid, attrs in graph.nodes)
    for s, t, k, attrs in graph.edges:
        g.add_edge(file_text(s), file_text(t), key=file_text(k), **{a: _file_value(v) for a, v in attrs.items()})
    nx.write_graphml(g, fh, encoding="utf-8", named_key_ids=True)


# Graphviz styling: holders are boxes, credentials ellipses; dead credentials greyed out.
_KIND_COLOURS = {
    "access_key": "#f59e0b", "token": "#8b5cf6", "certificate": "#10b981", "ca": "#059669", "private_key": "#ef4444",
    "ssh_key": "#ef4444", "service_account_key": "#f59e0b", "secret": "#ec4899", "password": "#ec4899",
    "api_key": "#ec4899",
}


DOT_PIECE = 1000  # characters of an id per quoted piece: at most 10 bytes each once escaped, under 16 KiB


def dot_quote(text: str) -> str:
    """An id or a value as a DOT string that reads back exactly (after `unreversible()`): escaped
    as in GraphML, `"` as `\\"` (DOT's only escape), long ones as `"..." + "..."`."""
    pieces = [text[i:i + DOT_PIECE] for i in range(0, len(text), DOT_PIECE)] or [""]
    return " + ".join('"' + file_text(p).replace('"', '\\"') + '"' for p in pieces)


def dot_label(*lines: str) -> str:
    """A label for people, one line each: Graphviz reads `\\` `\\n` `\\N`... in labels, so a
    backslash is doubled there, and only there; control characters are shown escaped."""
    return '"' + "\\n".join(safe(line).replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'


def _dot_value(key: str, value: Any) -> str:
    if key == "label":
        return dot_label(*value) if isinstance(value, tuple) else dot_label(str(value))
    return dot_quote(str(value).lower() if isinstance(value, bool) else str(value))


def _dot_attrs(attrs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_dot_value(k, v)}" for k, v in attrs.items())


def dot_lines(graph: ExportGraph) -> Iterator[str]:
    yield "digraph revoke {"
    yield '  graph [rankdir="LR", label="revoke trust graph"];'
    yield '  node [fontname="Helvetica", fontsize="10", style="filled", fillcolor="#f3f4f6"];'
    yield '  edge [fontname="Helvetica", fontsize="8", color="#6b7280"];'
    for nid, attrs in graph.nodes:
        style: dict[str, Any] = {"label": (attrs["label"], attrs["kind"])}
        if attrs["credential"]:
            style["shape"] = "ellipse"
            style["fillcolor"] = _KIND_COLOURS.get(attrs["kind"], "#d1d5db") if attrs["live"] else "#e5e7eb"
            if not attrs["live"]:
                style["fontcolor"] = "#6b7280"
        else:
            style["shape"] = "box"
        # `name` would collide with the node name in some readers (pydot): it is in the label anyway
        fields = {k: v for k, v in attrs.items() if k != "name"}
        yield f"  {dot_quote(nid)} [{_dot_attrs({**fields, **style})}];"
    for s, t, _k, attrs in graph.edges:
        yield f"  {dot_quote(s)} -> {dot_quote(t)} [{_dot_attrs({**attrs, 'label': attrs['rel']})}];"
    yield "}"


def write_dot(graph: ExportGraph, fh: IO[str]) -> None:
    for line in dot_lines(graph):
        fh.write(line + "\n")


def render(graph: ExportGraph, fmt: str) -> bytes:
    if fmt == "graphml":
        buf = io.BytesIO()
        write_graphml(graph, buf)
        return buf.getvalue()
    text = io.StringIO()
    if fmt == "dot":
        write_dot(graph, text)
    elif fmt == "json":
        write_json(graph, text)
    else:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return text.getvalue().encode()
