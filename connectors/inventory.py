"""The inventory: a YAML or JSON file of nodes and edges for what no connector sees
(hosts, CI runners, repos, packages, and which credentials they hold)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from revoke.collect_reuse import digest_files
from revoke.connector import REFERENCES, ActionTable, BaseConnector, Collected, ConnectorOptions
from revoke.errors import InputError
from revoke.input_rules import shown_keys
from revoke.json_input import json_line
from revoke.model import NODE_ID_RE, Edge, FieldError, Node, Relation
from revoke.yamlio import item_line, key_line, line_of, load_file

NODE_FIELDS = {"id", "kind", "provider", "name", "created", "expires", "last_used", "status", "owner",
               "labels", "fingerprint", "attrs"}
EDGE_FIELDS = {"from", "to", "rel", "since", "until", "attrs"}


def parse_inventory(data: Any, source: str, *, consume: bool = False) -> Collected:
    """Pure transform of a parsed inventory document; every error names the file and line.
    `consume`: the caller is done with `data`, whose edge entries are freed as they are turned
    into edges (a 5M-edge document and its edges are never both in memory)."""
    if not isinstance(data, dict):
        raise InputError("expected a mapping with `nodes:` and `edges:` lists", source=source)
    unknown = [k for k in data if k not in ("nodes", "edges")]
    if unknown:
        raise InputError(f"unknown key(s) {shown_keys(unknown)}; expected nodes, edges", source=source,
                         line=line_of(data))
    raw_nodes = data.get("nodes") or []
    raw_edges = data.get("edges") or []
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
        raise InputError("`nodes` and `edges` must be lists", source=source, line=line_of(data))
    nodes: dict[str, Node] = {}
    references: list[dict[str, Any]] = []
    parsed = _items("nodes", raw_nodes, NODE_FIELDS, Node.from_dict, source)
    for index, (raw, (where, line, node)) in enumerate(zip(raw_nodes, parsed, strict=False)):
        if node.id in nodes:
            raise InputError(f"{where}: duplicate node id {node.id!r}", source=source,
                             line=line or json_line(source, ("nodes", index)))
        nodes[node.id] = node
        if node.is_credential and node.provider and "status" not in raw:
            # a provider's credential declared without a status: its liveness is the provider's
            references.append({"node": node.id, "where": where, "line": line, "declared": True})
    fast = _plain_edges(raw_edges, nodes, consume=consume) if type(raw_edges) is list else None
    if fast is not None:
        edges, refs = fast
        references.extend({"node": nid, "where": f"edges[{i}]", "line": None} for i, nid in refs)
        return _collected(nodes, edges, references, source)
    edges = []
    for where, line, edge in _items("edges", raw_edges, EDGE_FIELDS, Edge.from_dict, source):
        # a node this file does not declare may come from a connector (an AWS key the aws connector
        # collects) or another inventory: `revoke collect` checks it against everything collected
        references.extend({"node": end, "where": where, "line": line} for end in (edge.src, edge.dst) if end not in nodes)
        edges.append(edge)
    return _collected(nodes, edges, references, source)


def _collected(nodes: dict[str, Node], edges: list[Edge], references: list[dict[str, Any]], source: str) -> Collected:
    meta: dict[str, Any] = {"source": source}
    if references:
        meta[REFERENCES] = references
    return Collected(nodes=list(nodes.values()), edges=edges, meta=meta)


_RELS = {r.value: r for r in Relation}


def _plain_edges(raw: list[Any], nodes: dict[str, Node], *,
                 consume: bool = False) -> tuple[list[Edge], list[tuple[int, str]]] | None:
    """The edges of a JSON inventory when every entry is a plain `{from, to, rel}` with valid
    values (a million-edge file is that): one tight loop, no per-entry error handling. None as
    soon as one entry is anything else (`raw` is then as it was): the careful path parses them
    all and names the line of the first problem. Also returns (index, id) of each end the file
    does not declare. With `consume`, entries are taken off the end of `raw` as they are read."""
    edges: list[Edge] = []
    refs: list[tuple[int, str]] = []  # built backwards, reversed at the end
    # one string object per id, shared by every edge naming it: the parser made one per mention
    # (at 5M edges, ~10M strings and ~0.7 GB freed with the parsed document)
    canon: dict[str, str] = {nid: nid for nid in nodes}
    undeclared: dict[str, str] = {}
    append, rels, valid = edges.append, _RELS, NODE_ID_RE.match
    for i in range(len(raw) - 1, -1, -1):
        item = raw[i]
        if type(item) is not dict or len(item) != 3:
            _undo(raw, edges, consume)
            return None
        src, dst, rel = item.get("from"), item.get("to"), item.get("rel")
        if type(src) is not str or type(dst) is not str or type(rel) is not str or rel not in rels:
            _undo(raw, edges, consume)
            return None
        ends = []
        for end in (dst, src):
            same = canon.get(end)
            if same is None:
                same = undeclared.get(end)
                if same is None:
                    if not valid(end):
                        _undo(raw, edges, consume)
                        return None
                    same = undeclared[end] = end
                refs.append((i, same))
            ends.append(same)
        append(Edge(ends[1], ends[0], rels[rel]))
        if consume:
            raw.pop()
    edges.reverse()
    refs.reverse()
    return edges, refs


def _undo(raw: list[Any], taken: list[Edge], consumed: bool) -> None:
    """Put back the entries a consuming pass took (each was a plain `{from, to, rel}`): the
    document is as it was for the careful path."""
    if consumed:
        raw.extend({"from": e.src, "to": e.dst, "rel": str(e.rel)} for e in reversed(taken))


def _items(name: str, raw: list[Any], fields: set[str], parse: Callable[[dict[str, Any]], Any],
           source: str) -> Iterator[tuple[str, int | None, Any]]:
    """(where, line, parsed) for each entry of a `nodes` or `edges` list; errors name file and line."""
    # a JSON document (plain lists) carries no line numbers: skip asking per entry (a million edges)
    positioned = type(raw) is not list
    for i, item in enumerate(raw):
        where, line = f"{name}[{i}]", item_line(raw, i) if positioned else None
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected a mapping", source=source, line=line or json_line(source, (name, i)))
        if not item.keys() <= fields:
            extra = [k for k in item if k not in fields]
            raise InputError(f"{where}: unknown field(s) {shown_keys(extra)}", source=source,
                             line=line or json_line(source, (name, i, extra[0])))
        try:
            parsed = parse(item)
        except FieldError as exc:
            at = key_line(item, exc.field) or line or json_line(source, (name, i, exc.field))
            raise InputError(f"{where}: {exc}", source=source, line=at) from None
        except InputError as exc:
            raise InputError(f"{where}: {exc}", source=source, line=line or json_line(source, (name, i))) from None
        yield where, line, parsed


class InventoryOptions(ConnectorOptions):
    path: str


class InventoryConnector(BaseConnector):
    options_model = InventoryOptions
    table = ActionTable()

    def collect(self) -> Collected:
        path = InventoryOptions.model_validate(self.config).path
        return parse_inventory(load_file(path, what="inventory"), path, consume=True)

    def source_digest(self) -> str:
        """The fingerprint of the one file this connector reads: verify keeps the snapshot while it holds."""
        return digest_files([Path(InventoryOptions.model_validate(self.config).path)])
