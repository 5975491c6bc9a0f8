"""The inventory: a YAML or JSON file of nodes and edges for what no connector sees
(hosts, CI runners, repos, packages, and which credentials they hold)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from revoke.collect_reuse import digest_files
from revoke.connector import REFERENCES, ActionTable, BaseConnector, Collected, ConnectorOptions
from revoke.connector_results import EdgeEnds
from revoke.errors import InputError
from revoke.graph_parts import LocalIds
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
        edges, refs, ends = fast
        references.extend({"node": nid, "where": f"edges[{i}]", "line": None} for i, nid in refs)
        collected = _collected(nodes, edges, references, source)
        collected.edge_ends = ends
        return collected
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
                 consume: bool = False) -> tuple[list[Edge], list[tuple[int, str]], EdgeEnds] | None:
    """The edges of a JSON inventory when every entry is a plain `{from, to, rel}` with valid
    values (a million-edge file is that): checked and converted column by column with map() and
    sets, which stay in C, with no Python frame per entry. None as soon as one entry is anything
    else (`raw` is then as it was): the careful path parses them all and names the line of the
    first problem. Also returns (index, id) of each end the file does not declare, and the ends
    as numbers (the compile's, `EdgeEnds`). With `consume`, the entries are dropped once read (a
    5M-edge document and its edges are never both in memory)."""
    if not raw:
        return [], [], EdgeEnds(np.zeros(0, np.int32), np.zeros(0, np.int32), [], len(nodes))
    if set(map(type, raw)) != {dict} or set(map(len, raw)) != {3}:
        return None
    try:
        srcs = list(map(_FROM, raw))
        dsts = list(map(_TO, raw))
        rels = list(map(_REL, raw))
    except KeyError:
        return None
    if set(map(type, srcs)) | set(map(type, dsts)) | set(map(type, rels)) != {str} or not set(rels) <= _RELS.keys():
        return None
    # each end looked up once, as a number: the ends no node declares are numbered as first met
    local = LocalIds(list(nodes))
    m = len(srcs)
    src = np.fromiter(map(local.__getitem__, srcs), dtype=np.int32, count=m)
    dst = np.fromiter(map(local.__getitem__, dsts), dtype=np.int32, count=m)
    undeclared = local.extra
    del local, srcs, dsts
    if not all(map(NODE_ID_RE.match, undeclared)):
        return None
    if consume:
        raw.clear()
    # one string object per id, shared by every edge naming it: the parser made one per mention
    # (at 5M edges, ~10M strings and ~0.7 GB freed with the parsed document)
    names = [*nodes, *undeclared]
    ends = list(map(names.__getitem__, src.tolist())), list(map(names.__getitem__, dst.tolist()))
    del names
    edges = list(map(Edge, *ends, map(_RELS.__getitem__, rels)))
    del rels
    outside = set(undeclared)
    refs = [(i, end) for i, pair in enumerate(zip(*ends, strict=True)) for end in pair if end in outside] \
        if outside else []
    return edges, refs, EdgeEnds(src, dst, list(undeclared), len(nodes))


_FROM, _TO, _REL = itemgetter("from"), itemgetter("to"), itemgetter("rel")


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
