"""Run the configured connectors and swap their snapshots into the store."""

from __future__ import annotations

import difflib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from revoke.config import Config, ConnectorConfig
from revoke.connector import REFERENCES, Collected, Connector, ConnectorError, connector_class
from revoke.errors import InputError, RevokeError
from revoke.model import Node
from revoke.store import Store

log = structlog.get_logger()


@dataclass
class CollectReport:
    collected: dict[str, tuple[int, int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    nodes: int = 0
    edges: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


def instantiate(cfg: ConnectorConfig) -> Connector:
    cls = connector_class(cfg.type)
    return cls(cfg.options)


def _run_one(cfg: ConnectorConfig) -> Collected:
    connector = instantiate(cfg)
    try:
        return connector.collect()
    finally:
        connector.close()


def collect(config: Config, store: Store, *, only: list[str] | None = None, allow_empty: bool = False) -> CollectReport:
    """Collect every connector first, in parallel and in memory. Any input error aborts before the
    store is touched; a provider failure keeps that connector's previous snapshot."""
    chosen = [c for c in config.connectors if not only or c.name in only]
    report = CollectReport()
    results: dict[str, Collected | BaseException] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(chosen)))) as pool:
        futures = {c.name: pool.submit(_run_one, c) for c in chosen}
        for name, fut in futures.items():
            try:
                results[name] = fut.result()
            except BaseException as exc:  # kept and classified below: nothing is swallowed
                results[name] = exc
    for cfg in chosen:
        outcome = results[cfg.name]
        if isinstance(outcome, InputError):
            raise InputError(f"connector {cfg.name!r}: {outcome}") from outcome
    _check_references(chosen, results, store)
    previous = {s.name: s for s in store.snapshots()}
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
        findings = [asdict(f) for f in outcome.findings]
        store.replace_snapshot(cfg.name, cfg.type, outcome.nodes, outcome.edges, outcome.meta, findings)
        report.collected[cfg.name] = (len(outcome.nodes), len(outcome.edges))
        report.findings.extend({"connector": cfg.name, **f} for f in findings)
        log.info("collect.snapshot", connector=cfg.name, nodes=len(outcome.nodes), edges=len(outcome.edges),
                 findings=len(findings))
    graph = store.compile()
    report.nodes, report.edges = graph.n_nodes, graph.n_edges
    return report


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


def _check_references(chosen: list[ConnectorConfig], results: dict[str, Any], store: Store) -> None:
    """A node a connector's input names without declaring it (an inventory edge to an AWS key) must
    be collected by some connector, now or in a kept snapshot; any other name is a typo (exit 2)."""
    referring = [r for c in chosen if isinstance(r := results[c.name], Collected) and r.meta.get(REFERENCES)]
    if not referring:
        return
    known = {n.id for r in results.values() if isinstance(r, Collected) for n in r.nodes}
    replaced = {c.name for c in chosen if isinstance(results[c.name], Collected)}
    marks = ",".join("?" * len(replaced))
    known |= {nid for (nid,) in store.db.execute(f"SELECT DISTINCT id FROM nodes WHERE snapshot NOT IN ({marks})",
                                                 sorted(replaced))}
    for collected in referring:
        _resolve(collected, known)


def _resolve(collected: Collected, known: set[str]) -> None:
    source = str(collected.meta.get("source", "inventory"))
    for ref in collected.meta.pop(REFERENCES, []):
        if ref["node"] in known:
            continue
        declared = [n.id for n in collected.nodes]
        close = difflib.get_close_matches(ref["node"], declared, n=3) or difflib.get_close_matches(ref["node"], known, n=3)
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        raise InputError(f"{ref['where']}: edge names unknown node {ref['node']!r}{hint}; declare it under `nodes:` "
                         "or collect it with its connector", source=source, line=ref["line"])
