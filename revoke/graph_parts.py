"""A snapshot's compiled part: what the graph compile needs of one snapshot, as columns, so a
snapshot that did not change is merged into the graph without a Node or Edge object per row.

A part holds the snapshot's node ids (in record order) with one value per node for each compiled
column, and its edges as (src, dst, rel, since, until) columns over a local id table (its node ids,
then the edge ends it does not declare). `compile_parts` merges parts into the graph a full compile
(`graph_build.compile_graph` of every stored row) gives, array for array:
- a node one part alone declares takes that part's columns; a node several records declare (rare)
  is merged from its full records (`records`) with `merge_nodes`, in snapshot order;
- an end nobody declares is a stub whose kind the first edge naming it hints (`src_kind`/`dst_kind`);
- duplicate edges keep the first one's place and the union of validity.
What depends on the clock (an expiry passed, a death with no recorded time) is derived at compile
time, never stored. Fingerprint references (`fp:`) are not compiled here: the caller takes the
full path when a part has one (`Part.fp`).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import orjson

from revoke.connector_results import EdgeEnds
from revoke.errors import InputError
from revoke.graph import KIND_CODE, REL_CODE, RELS, UNKNOWN_STATUS, CompiledGraph, edge_times, merge_nodes, stub_node
from revoke.model import DEAD_STATUSES, Edge, Node
from revoke.model_fields import parse_time

NAN = math.nan


def _ts(value: Any) -> float:
    return value.timestamp() if value is not None else NAN


def recorded_death(node: Node) -> float:
    """`attrs.died_at` as `Node.died_at` reads it (NaN: none, or unreadable), live or not: whether
    the node is dead is decided when the part is compiled."""
    recorded = node.attrs.get("died_at")
    if not recorded:
        return NAN
    try:
        at = parse_time(recorded, field_name="died_at")
    except InputError:
        return NAN
    return _ts(at)


@dataclass
class NodeColumns:
    """One value per node record: what the compiled graph keeps of it."""

    kind: np.ndarray  # uint8, KIND_CODE
    dead: np.ndarray  # bool: a dead status (an expiry is checked at compile time)
    created: np.ndarray  # float64 epoch seconds, NaN: unknown
    expires: np.ndarray
    died_at: np.ndarray  # the recorded death (attrs.died_at), NaN: none
    provider: np.ndarray  # uint16 into `providers`
    status: np.ndarray  # uint16 into `statuses`: the status, `unknown` for a stub
    providers: list[str]
    statuses: list[str]

    @classmethod
    def of(cls, nodes: list[Node]) -> NodeColumns:
        n = len(nodes)
        provider, providers = _coded(list(map(attrgetter("provider"), nodes)))
        status, statuses = _coded([UNKNOWN_STATUS if node.attrs.get("stub") else node.status for node in nodes])
        return cls(
            kind=np.fromiter(map(KIND_CODE.__getitem__, map(attrgetter("kind"), nodes)), dtype=np.uint8, count=n),
            dead=np.fromiter((node.status.lower() in DEAD_STATUSES for node in nodes), dtype=bool, count=n),
            created=_times(list(map(attrgetter("created"), nodes))),
            expires=_times(list(map(attrgetter("expires"), nodes))),
            died_at=np.fromiter((recorded_death(node) if node.attrs else NAN for node in nodes), dtype=np.float64,
                                count=n),
            provider=provider, status=status, providers=providers, statuses=statuses,
        )


def _coded(names: list[str]) -> tuple[np.ndarray, list[str]]:
    table = list(dict.fromkeys(names))
    code = {name: i for i, name in enumerate(table)}
    return np.fromiter(map(code.__getitem__, names), dtype=np.uint16, count=len(names)), table


def _times(values: list[Any]) -> np.ndarray:
    if not any(values):  # a datetime is always true
        return np.full(len(values), NAN)
    return np.fromiter(map(_ts, values), dtype=np.float64, count=len(values))


@dataclass
class Part:
    ids: list[str]  # the node records' ids, in record order
    nodes: NodeColumns
    extra: list[str]  # edge ends the snapshot does not declare: local ids len(ids)...
    src: np.ndarray  # int32 local ids
    dst: np.ndarray
    rel: np.ndarray  # uint8, REL_CODE
    since: np.ndarray | None  # float64, NaN: open; None: no edge carries a time
    until: np.ndarray | None
    hints: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # edge -> (src_kind, dst_kind) attrs
    fp: bool = False  # an end is a fingerprint reference: compile the full way

    @property
    def n_edges(self) -> int:
        return int(self.src.shape[0])


class LocalIds(dict[str, int]):
    """id -> local id: the snapshot's node ids, then each end it does not declare, numbered when
    first met (`extra`): one dict lookup per edge end, no set of all ends."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(zip(ids, range(len(ids)), strict=True))  # a repeated id: any of its places will do
        self.declared = len(ids)
        self.extra: list[str] = []

    def __missing__(self, end: str) -> int:
        self[end] = at = self.declared + len(self.extra)
        self.extra.append(end)
        return at


def part_of(nodes: list[Node], edges: list[Edge], ends: EdgeEnds | None = None) -> Part:
    """The part of a snapshot as stored: nodes as `as_stored` leaves them, edge times in UTC.
    `ends`: the edges' ends as the connector numbered them, when they still fit the snapshot."""
    ids = list(map(attrgetter("id"), nodes))
    m = len(edges)
    if ends is not None and ends.nodes == len(ids) and ends.src.shape == (m,) and ends.dst.shape == (m,):
        src, dst, extra = ends.src, ends.dst, ends.extra
    else:
        local = LocalIds(ids)
        src = np.fromiter(map(local.__getitem__, map(attrgetter("src"), edges)), dtype=np.int32, count=m)
        dst = np.fromiter(map(local.__getitem__, map(attrgetter("dst"), edges)), dtype=np.int32, count=m)
        extra = local.extra
        del local
    # an end that is a fingerprint reference (`fp:`), declared or not
    fp = any(end.startswith("fp:") for end in extra)
    if not fp and any(nid.startswith("fp:") for nid in ids):
        named = np.zeros(len(ids) + len(extra), dtype=bool)
        named[src], named[dst] = True, True
        fp = any(named[k] for k, nid in enumerate(ids) if nid.startswith("fp:"))
    rel = np.fromiter(map(REL_CODE.__getitem__, map(attrgetter("rel"), edges)), dtype=np.uint8, count=m)
    since: np.ndarray | None = None
    until: np.ndarray | None = None
    if any(map(attrgetter("since"), edges)) or any(map(attrgetter("until"), edges)):
        since, until = edge_times(edges)
    hints: dict[int, tuple[Any, Any]] = {}
    if any(map(attrgetter("attrs"), edges)):
        for k, e in enumerate(edges):
            if e.attrs and ("src_kind" in e.attrs or "dst_kind" in e.attrs):
                hints[k] = (e.attrs.get("src_kind"), e.attrs.get("dst_kind"))
    return Part(ids, NodeColumns.of(nodes), extra, src, dst, rel, since, until, hints, fp)


# -- stored form: one BLOB per column ----------------------------------------------------------------
# Each array is kept as its raw bytes, bound to the statement without a copy (a part of 5M edges
# would otherwise be assembled whole in memory, once more, while it is written); `text` holds the
# strings and each array's dtype.
_COLUMNS = ("kind", "dead", "created", "expires", "died_at", "provider", "status")
_TIMES = ("created", "expires", "died_at")  # left out when no node has one (all NaN)
_EDGES = ("src", "dst", "rel", "since", "until")
TEXT = "text"


def encode(part: Part) -> dict[str, Any]:
    """key -> bytes-like: `text` (JSON) and one raw array per column."""
    arrays: dict[str, np.ndarray] = {name: getattr(part.nodes, name) for name in _COLUMNS
                                     if name not in _TIMES or not np.isnan(getattr(part.nodes, name)).all()}
    arrays.update({name: getattr(part, name) for name in _EDGES if getattr(part, name) is not None})
    text = orjson.dumps({
        "ids": part.ids, "extra": part.extra, "providers": part.nodes.providers, "statuses": part.nodes.statuses,
        "hints": [[k, s, d] for k, (s, d) in part.hints.items()], "fp": part.fp,
        "dtypes": {name: arr.dtype.str for name, arr in arrays.items()},
    }, default=str)
    out: dict[str, Any] = {name: np.ascontiguousarray(arr).data.cast("B") for name, arr in arrays.items()}
    out[TEXT] = text
    return out


def decode(blobs: dict[str, bytes]) -> Part:
    """A stored part; ValueError (or KeyError, TypeError) when it is not one."""
    doc = orjson.loads(blobs[TEXT])
    arr = {name: np.frombuffer(blobs[name], dtype=np.dtype(dtype)) for name, dtype in doc["dtypes"].items()}
    n = len(doc["ids"])
    for name in _TIMES:
        arr.setdefault(name, np.full(n, NAN))
    cols = NodeColumns(**{name: arr[name] for name in _COLUMNS}, providers=doc["providers"], statuses=doc["statuses"])
    part = Part(doc["ids"], cols, doc["extra"], arr["src"], arr["dst"], arr["rel"], arr.get("since"), arr.get("until"),
                {int(k): (s, d) for k, s, d in doc["hints"]}, bool(doc["fp"]))
    local = n + len(part.extra)
    ends = (part.src, part.dst)
    if any(getattr(cols, name).shape != (n,) for name in _COLUMNS) or (part.since is None) != (part.until is None) or \
            any(a is not None and a.shape != part.src.shape for a in (part.dst, part.rel, part.since, part.until)) or \
            any(a.dtype.kind not in "iu" for a in (*ends, part.rel, cols.kind, cols.provider, cols.status)) or \
            any(a is not None and a.dtype.kind != "f" for a in (cols.created, cols.expires, cols.died_at, part.since,
                                                                part.until)) or \
            (part.n_edges and any(int(a.min()) < 0 or int(a.max()) >= local for a in ends)) or \
            (part.n_edges and int(part.rel.max()) >= len(RELS)) or (n and int(cols.kind.max()) >= len(KIND_CODE)) or \
            (n and (int(cols.provider.max()) >= len(cols.providers) or int(cols.status.max()) >= len(cols.statuses))):
        raise ValueError("inconsistent part")
    return part


# -- merge ------------------------------------------------------------------------------------------
Records = Callable[[int, set[str]], list[Node]]


class _Codes:
    """Strings to codes in one table, remapped to sorted order at the end."""

    def __init__(self) -> None:
        self.table: dict[str, int] = {}

    def of(self, names: Iterable[str]) -> np.ndarray:
        return np.fromiter((self.table.setdefault(s, len(self.table)) for s in names), dtype=np.int64)

    def in_order(self, codes: np.ndarray, also: Iterable[str] = ()) -> tuple[list[str], np.ndarray]:
        names = list(self.table)
        used = sorted({names[c] for c in np.unique(codes).tolist()} | set(also))
        where = {s: i for i, s in enumerate(used)}
        remap = np.fromiter((where.get(s, 0) for s in names), dtype=np.uint16, count=len(names))
        return used, remap[codes] if len(names) else codes.astype(np.uint16)


def _edge_keys(src: np.ndarray, dst: np.ndarray, rel: np.ndarray, n: int) -> np.ndarray:
    """(src * n + dst) * len(RELS) + rel per edge, computed in place: one int64 array at a time."""
    key = src.astype(np.int64)
    key *= max(n, 1)
    key += dst
    key *= len(RELS)
    key += rel
    return key


def compile_parts(parts: list[Part], edge_order: list[int], records: Records) -> CompiledGraph:
    """The graph of `parts` (in node merge order: the snapshots' order); edges in the order of the
    parts `edge_order` lists. `records(k, ids)`: the full records of those ids in part k, in record
    order (for nodes more than one record declares)."""
    gids = sorted(set(chain.from_iterable(chain(p.ids, p.extra) for p in parts)))
    gindex = {nid: i for i, nid in enumerate(gids)}
    n = len(gids)
    # int32 node numbers, as the compiled graph's own (`indices`): half the memory of int64
    to_global = [np.fromiter(map(gindex.__getitem__, chain(p.ids, p.extra)), dtype=np.int32,
                             count=len(p.ids) + len(p.extra)) for p in parts]
    del gindex
    declared = np.bincount(np.concatenate([g[:len(p.ids)] for g, p in zip(to_global, parts, strict=True)] or
                                          [np.zeros(0, np.int32)]), minlength=n)

    kind = np.zeros(n, dtype=np.uint8)
    dead = np.zeros(n, dtype=bool)
    created = np.full(n, NAN)
    expires = np.full(n, NAN)
    died_at = np.full(n, NAN)
    providers, statuses = _Codes(), _Codes()
    provider = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int64)

    def put(at: np.ndarray, cols: NodeColumns) -> None:
        kind[at], dead[at], created[at], expires[at], died_at[at] = (cols.kind, cols.dead, cols.created, cols.expires,
                                                                     cols.died_at)
        if len(at):
            provider[at] = providers.of(cols.providers)[cols.provider]
            status[at] = statuses.of(cols.statuses)[cols.status]

    for g, p in zip(to_global, parts, strict=True):
        put(g[:len(p.ids)], p.nodes)
    # a node several records declare: its records merged in snapshot order, then record order
    repeated = declared > 1
    if repeated.any():
        merged: dict[str, Node] = {}
        for k, (g, p) in enumerate(zip(to_global, parts, strict=True)):
            at = np.flatnonzero(repeated[g[:len(p.ids)]])
            if not len(at):
                continue
            for node in records(k, {p.ids[i] for i in at.tolist()}):
                merged[node.id] = merge_nodes(merged[node.id], node) if node.id in merged else node
        ordered = list(merged)
        at = np.fromiter((bisect.bisect_left(gids, nid) for nid in ordered), dtype=np.int64, count=len(ordered))
        put(at, NodeColumns.of([merged[nid] for nid in ordered]))

    # edges, in the order their snapshots were written
    chosen = [parts[k] for k in edge_order]
    m = sum(p.n_edges for p in chosen)
    src = np.concatenate([to_global[k][parts[k].src] for k in edge_order] or [np.zeros(0, np.int32)])
    dst = np.concatenate([to_global[k][parts[k].dst] for k in edge_order] or [np.zeros(0, np.int32)])
    rel = np.concatenate([p.rel for p in chosen] or [np.zeros(0, np.uint8)])
    timed = any(p.since is not None for p in chosen)
    # times: now when an edge has one (duplicates merge them), else all open, made once deduplicated
    since = np.concatenate([p.since if p.since is not None else np.full(p.n_edges, NAN) for p in chosen]) \
        if timed else None
    until = np.concatenate([p.until if p.until is not None else np.full(p.n_edges, NAN) for p in chosen]) \
        if timed else None
    del to_global

    # a stub for each end nobody declares, its kind hinted by the first edge naming it
    stubs = declared == 0
    if stubs.any():
        ends = np.empty(2 * m, dtype=np.int32)
        ends[0::2], ends[1::2] = src, dst
        places = np.flatnonzero(stubs[ends])
        found, first = np.unique(ends[places], return_index=True)
        offsets = np.cumsum([0] + [p.n_edges for p in chosen])
        stub_nodes = []
        for gi, place in zip(found.tolist(), places[first].tolist(), strict=True):
            e, side = divmod(place, 2)
            k = int(np.searchsorted(offsets, e, side="right")) - 1
            hint = chosen[k].hints.get(e - int(offsets[k]), (None, None))[side]
            stub_nodes.append(stub_node(gids[gi], hint))
        put(found, NodeColumns.of(stub_nodes))
        del ends, places

    # duplicate edges: the first keeps its place, with the union of validity
    key = _edge_keys(src, dst, rel, n)
    key.sort()  # in place: the check needs no second array
    repeated_edges = bool((key[1:] == key[:-1]).any())
    if repeated_edges:
        key = _edge_keys(src, dst, rel, n)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        if since is not None and until is not None:
            low = np.full(len(first), np.inf)
            high = np.full(len(first), -np.inf)
            with np.errstate(invalid="ignore"):  # NaN (open) wins, as `_merge_edge` keeps an open end
                np.minimum.at(low, inverse, since)
                np.maximum.at(high, inverse, until)
            since[first], until[first] = low, high
            del low, high
        del inverse
        at = np.sort(first)
        src, dst, rel = src[at], dst[at], rel[at]
        if since is not None and until is not None:
            since, until = since[at], until[at]
        del at, first
    del key

    # CSR, as `CompiledGraph.from_arrays` builds it, each input let go once used
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    del src
    indices, rel = dst[order], rel[order]
    del dst
    if since is not None and until is not None:
        since, until = since[order], until[order]
    del order
    if since is None or until is None:  # no edge carries a time: all open
        since, until = np.full(len(indices), NAN), np.full(len(indices), NAN)

    now = time.time()
    live = ~dead & ~(expires <= now)
    died = np.where(live, np.inf, np.where(~np.isnan(died_at), died_at, np.where(expires <= now, expires, now)))
    provider_names, provider_codes = providers.in_order(provider)
    status_names, status_codes = statuses.in_order(status, also=("active",))
    return CompiledGraph(gids, kind, live, created, indptr, indices, rel, since, until, provider_names, provider_codes,
                         died, status_names, status_codes)
