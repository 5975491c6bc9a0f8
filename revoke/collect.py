"""Run the configured connectors and swap their snapshots into the store."""

from __future__ import annotations

import difflib
import gc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from revoke.collect_reuse import (
    SOURCE,
    compiled_current,
    mark_compiled,
    references_hold,
    resolved_references,
    source_record,
    unchanged,
    valid_until,
)
from revoke.config import Config, ConnectorConfig
from revoke.connector import REFERENCES, Collected, CollectFinding, Connector, ConnectorError, connector_class
from revoke.connector_results import EdgeEnds
from revoke.errors import InputError, RevokeError
from revoke.model import Node, provider_of
from revoke.store import Fresh, Store

log = structlog.get_logger()


@dataclass
class CollectReport:
    collected: dict[str, tuple[int, int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    kept: set[str] = field(default_factory=set)  # failed connectors whose earlier snapshot stays
    # snapshots kept as they are, their sources unchanged (`reuse`): name -> when they were taken
    reused: dict[str, str] = field(default_factory=dict)
    compiled: bool = True  # False: nothing changed, the stored graph is the one to use
    findings: list[dict[str, Any]] = field(default_factory=list)
    nodes: int = 0
    edges: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


def options_for(cfg: ConnectorConfig, *, observations: bool = False) -> dict[str, Any]:
    """A block's options; `collect --observations` turns observations on in every connector that can."""
    if observations and "observations" in connector_class(cfg.type).options_model.model_fields:
        return {**cfg.options, "observations": True}
    return cfg.options


def instantiate(cfg: ConnectorConfig, *, observations: bool = False) -> Connector:
    return connector_class(cfg.type)(options_for(cfg, observations=observations))


def run_one(cfg: ConnectorConfig, created: set[str], observations: bool = False) -> Collected:
    connector = instantiate(cfg, observations=observations)
    try:
        connector.remember_created(created)
        # a file-based connector's sources are fingerprinted before it reads them (revoke/collect_reuse.py)
        source = source_record(connector, cfg)
        collected = connector.collect()
        if source is not None:
            collected.meta[SOURCE] = source
        return collected
    finally:
        connector.close()


def created_by_revoke(store: Store) -> set[str]:
    """Node ids of the replacements revoke made in any incident (and did not discard again): a
    connector told them can look them up where its provider cannot list them."""
    import json

    made: set[str] = set()
    gone: set[str] = set()
    for (data,) in store.db.execute("SELECT data FROM journal WHERE type='progress' AND data LIKE '%created%' "
                                    "OR type='progress' AND data LIKE '%discarded%'"):
        rec = json.loads(data)
        if rec.get("event") == "created" and rec.get("new"):
            made.add(str(rec["new"]))
        elif rec.get("event") == "discarded" and rec.get("new"):
            gone.add(str(rec["new"]))
    return made - gone


def collect(config: Config, store: Store, *, only: list[str] | None = None, allow_empty: bool = False,
            observations: bool = False, workers: bool = False,
            progress: Callable[[dict[str, int]], None] | None = None, reuse: bool = False) -> CollectReport:
    """Collect every connector first, in parallel and in memory. Any input error aborts before the
    store is touched; a provider failure keeps that connector's previous snapshot. With `reuse`
    (verify), a file-based connector whose sources provably did not change keeps its snapshot,
    and the stored graph is kept when nothing changed (revoke/collect_reuse.py)."""
    # millions of small acyclic objects (nodes, edges, rows): each full cyclic collection would walk
    # them all, several times over; reference counting frees them, the collector runs afterwards
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _collect(config, store, only=only, allow_empty=allow_empty, observations=observations,
                        workers=workers, progress=progress, reuse=reuse)
    finally:
        if enabled:
            gc.enable()


def _collect(config: Config, store: Store, *, only: list[str] | None, allow_empty: bool, observations: bool,
             workers: bool, progress: Callable[[dict[str, int]], None] | None, reuse: bool) -> CollectReport:
    chosen = [c for c in config.connectors if not only or c.name in only]
    # the providers this collection reads, re-read or kept: an inventory's references to them are checked
    providers = {c.type for c in chosen}
    report = CollectReport()
    kept_as_is = unchanged(config, store, [c.name for c in chosen]) if reuse else {}
    reread = [c for c in chosen if c.name not in kept_as_is]
    results: dict[str, Collected | BaseException] = {}
    created = created_by_revoke(store)
    _run(reread, created, observations, workers, progress, store, results)
    # a kept snapshot whose references no longer resolve as they did (a key its provider deleted
    # since) is read again: its content depended on the other snapshots
    fresh_ids = {name: {n.id for n in r.nodes} for name, r in results.items() if isinstance(r, Collected)}
    again = [c for c in chosen if c.name in kept_as_is
             and not references_hold(store, kept_as_is[c.name], fresh_ids, providers)]
    _run(again, created, observations, workers, progress, store, results)
    reread += again
    report.reused = {name: snap.taken_at for name, snap in kept_as_is.items() if name not in results}
    chosen = [c for c in chosen if c.name in results]
    for cfg in chosen:
        outcome = results[cfg.name]
        if isinstance(outcome, InputError):
            raise InputError(f"connector {cfg.name!r}: {outcome}") from outcome
    _check_references(chosen, results, store, providers)
    previous = {s.name: s for s in store.snapshots()}
    fresh: Fresh = {}
    ends: dict[str, EdgeEnds] = {}
    report.kept = {name for name, snap in previous.items() if snap.taken_at != "never"}
    for cfg in chosen:
        outcome = results[cfg.name]
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, RevokeError | ConnectorError):
                msg = f"{type(outcome).__name__}: {outcome}"
            else:
                msg = outcome.diagnostic()
            store.record_failure(cfg.name, cfg.type, msg)
            report.failed[cfg.name] = msg
            log.error("collect.failed", connector=cfg.name, error=msg, kept_previous=cfg.name in previous)
            continue
        prev = previous.get(cfg.name)
        if not outcome.nodes and prev is not None and prev.nodes > 0 and not allow_empty:
            msg = (f"returned 0 nodes where the previous snapshot had {prev.nodes}; "
                   "kept the previous one (--allow-empty to accept)")
            store.record_failure(cfg.name, cfg.type, msg)
            report.failed[cfg.name] = msg
            log.error("collect.empty", connector=cfg.name, previous_nodes=prev.nodes)
            continue
        _date_deaths(outcome.nodes, store)
        if isinstance(outcome.meta.get(SOURCE), dict):
            outcome.meta[SOURCE]["valid_until"] = valid_until(outcome.nodes)
        findings = [asdict(f) for f in outcome.findings]
        store.replace_snapshot(cfg.name, cfg.type, outcome.nodes, outcome.edges, outcome.meta, findings)
        fresh[cfg.name] = (outcome.nodes, outcome.edges)
        if outcome.edge_ends is not None:
            ends[cfg.name] = outcome.edge_ends
        report.collected[cfg.name] = (len(outcome.nodes), len(outcome.edges))
        report.findings.extend({"connector": cfg.name, **f} for f in findings)
        log.info("collect.snapshot", connector=cfg.name, nodes=len(outcome.nodes), edges=len(outcome.edges),
                 findings=len(findings))
    results.clear()
    if reuse and not fresh and compiled_current(store):
        report.compiled = False  # nothing changed: the stored graph is the one a compile would give
        return report
    graph = store.compile(fresh, ends)
    mark_compiled(store)
    report.nodes, report.edges = graph.n_nodes, graph.n_edges
    return report


def _run(chosen: list[ConnectorConfig], created: set[str], observations: bool, workers: bool,
         progress: Callable[[dict[str, int]], None] | None, store: Store,
         results: dict[str, Collected | BaseException]) -> None:
    if not chosen:
        return
    if workers:  # `revoke worker` processes collect; their outcomes come back through the store
        from revoke.collect_jobs import run_remotely

        results.update(run_remotely(store, chosen, created, on_progress=progress, observations=observations))
        return
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(chosen)))) as pool:
        futures = {c.name: pool.submit(run_one, c, created, observations) for c in chosen}
        for name, fut in futures.items():
            try:
                results[name] = fut.result()
            except BaseException as exc:  # kept and classified below: nothing is swallowed
                results[name] = exc


def _date_deaths(nodes: list[Node], store: Store) -> None:
    """Give every dead node a death time: the provider's, else the one an earlier collection
    recorded, else now (the first collection that saw it dead). A windowed walk counts a dead
    credential's edges only while it was live."""
    undated = [n for n in nodes if not n.is_live and not n.attrs.get("died_at")]
    if not undated:
        return
    known = store.recorded_deaths([n.id for n in undated])
    now = datetime.now(UTC).isoformat()
    for node in undated:
        at = node.died_at
        node.attrs["died_at"] = known.get(node.id) or (at.isoformat() if at else now)


def _check_references(chosen: list[ConnectorConfig], results: dict[str, Any], store: Store,
                      providers: set[str]) -> None:
    """A node a connector's input names without declaring it (an inventory edge to an AWS key) must
    be collected by some connector, now or in a kept snapshot; any other name is a typo (exit 2).
    A provider's credential an inventory declares without a status is checked the same way, so a
    key its provider deleted is not kept alive by the inventory's word."""
    for c in chosen:  # how the references resolve is part of what a kept snapshot must still match
        if isinstance(r := results[c.name], Collected) and isinstance(r.meta.get(SOURCE), dict):
            r.meta[SOURCE]["references"] = resolved_references(set(), set(), True)
    referring = [(c.name, r) for c in chosen if isinstance(r := results[c.name], Collected) and r.meta.get(REFERENCES)]
    if not referring:
        return
    ids = {c.name: {n.id for n in r.nodes} for c in chosen if isinstance(r := results[c.name], Collected)}
    marks = ",".join("?" * len(ids))
    kept = {nid for (nid,) in store.db.execute(f"SELECT DISTINCT id FROM nodes WHERE snapshot NOT IN ({marks})",
                                               sorted(ids))}
    for name, collected in referring:
        others = kept.union(*(v for k, v in ids.items() if k != name))
        resolved = _resolve(name, collected, others, store, providers)
        if isinstance(collected.meta.get(SOURCE), dict):
            collected.meta[SOURCE]["references"] = resolved


def _resolve(name: str, collected: Collected, known: set[str], store: Store,
             providers: set[str]) -> dict[str, list[str]] | None:
    """Each named node must exist. One that existed before (an earlier snapshot, an incident's
    journal) and is gone now (expired, deleted, finalized) becomes a tombstone: kept with its id
    and kind, dead, and a finding names the line that still refers to it. Returns how the names
    resolved, for a later re-collection to tell whether they still would (None: not reusable)."""
    source = str(collected.meta.get("source", name))
    own = {n.id: k for k, n in enumerate(collected.nodes)}
    found: set[str] = set()
    unchecked: set[str] = set()
    settled = True
    for ref in collected.meta.pop(REFERENCES, []):
        nid = ref["node"]
        declared = ref.get("declared", False)
        if nid in known:
            found.add(nid)
            continue
        if nid in own and not declared:
            settled = False
            continue
        if declared and provider_of(nid) not in providers:
            unchecked.add(nid)
            continue  # no connector of its provider runs: the inventory's word is all there is
        settled = False
        past = store.last_known(nid, snapshot=name)
        if past is not None:
            stone = _tombstone(past)
            if nid in own:
                collected.nodes[own[nid]] = stone
            else:
                own[nid] = len(collected.nodes)
                collected.nodes.append(stone)
            collected.findings.append(CollectFinding(
                "collect.vanished", f"{source}:{ref['line']}: {ref['where']} names {nid}, which no connector collects "
                f"any more; kept as a tombstone ({stone.status})", node=nid, source=source))
            continue
        if declared:
            continue
        same = nid.rsplit(":", 1)[0] + ":" if nid.count(":") >= 2 else nid.split(":", 1)[0] + ":"
        close = (difflib.get_close_matches(nid, [k for k in own if k.startswith(same)], n=3)
                 or difflib.get_close_matches(nid, [k for k in known if k.startswith(same)], n=3))
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        raise InputError(f"{ref['where']}: edge names unknown node {nid!r}{hint}; declare it under `nodes:` "
                         "or collect it with its connector", source=source, line=ref["line"])
    return resolved_references(found, unchecked, settled)


def _tombstone(past: Node) -> Node:
    expired = past.expires is not None and past.expires <= datetime.now(UTC)
    status = past.status if not past.is_live else ("expired" if expired else "deleted")
    attrs = {k: v for k, v in past.attrs.items() if k in ("died_at", "account", "mount", "path", "email")}
    return Node(past.id, past.kind, past.provider, name=past.name, created=past.created, expires=past.expires,
                status=status, owner=past.owner, labels=dict(past.labels), fingerprint=past.fingerprint,
                attrs={**attrs, "tombstone": True})
