"""Hygiene sweep: rules over the collected graph, each finding with a rule id, a severity, a
one-line reason, the node and the evidence (attributes, path) behind it.

Rules register themselves by id (`@rule(...)` in `revoke.sweep_rules`), declare their default
severity and parameters, and yield `Hit`s; the engine stamps rule id and severity on them.
Thresholds come from a rules file (`revoke.sweep_config`), defaults are built in.

A sweep hands its findings to a playbook through `findings_to_nodes()`: every finding names the
credentials a rotation should act on in `targets` (empty where a person must decide, e.g. which
of two active keys to delete).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from revoke.errors import InputError
from revoke.model import CREDENTIAL_KINDS, Edge, Node, NodeKind, Relation

if TYPE_CHECKING:
    from revoke.graph import CompiledGraph
    from revoke.store import Store


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


def parse_severity(value: Any, *, where: str = "severity") -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        raise InputError(f"invalid {where} {value!r}; expected one of: {', '.join(s.value for s in Severity)}") from None


@dataclass
class Hit:
    """What a rule reports; the engine turns it into a Finding."""

    node: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    # credentials a rotation playbook should act on; None means "the node, if it is a credential"
    targets: list[str] | None = None


@dataclass
class Finding:
    rule: str
    severity: Severity
    reason: str
    node: str
    kind: str
    provider: str
    evidence: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "severity": self.severity.value, "reason": self.reason, "node": self.node,
            "kind": self.kind, "provider": self.provider, "evidence": self.evidence, "path": self.path,
            "targets": self.targets,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            rule=str(data["rule"]), severity=parse_severity(data["severity"]), reason=str(data.get("reason", "")),
            node=str(data["node"]), kind=str(data.get("kind", "")), provider=str(data.get("provider", "")),
            evidence=dict(data.get("evidence") or {}), path=list(data.get("path") or []),
            targets=list(data.get("targets") or []),
        )


Check = Callable[["SweepContext", dict[str, Any]], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    params: dict[str, Any]
    check: Check
    ordered: bool = False  # the rule yields its findings in a meaningful order (a ranking): keep it


RULES: dict[str, Rule] = {}


def rule(rule_id: str, severity: Severity, summary: str, *, ordered: bool = False, **params: Any) -> Callable[[Check], Check]:
    """Register a built-in rule with its default severity and parameters (the parameter types
    are taken from the defaults and enforced on the rules file)."""

    def deco(fn: Check) -> Check:
        RULES[rule_id] = Rule(rule_id, severity, summary, dict(params), fn, ordered)
        return fn

    return deco


def builtin_rules() -> dict[str, Rule]:
    import importlib

    for module in ("revoke.sweep_rules", "revoke.sweep_rules_pki", "revoke.sweep_rules_ci"):
        importlib.import_module(module)  # importing registers the rules

    return RULES


@dataclass
class RuleConfig:
    enabled: bool
    severity: Severity
    params: dict[str, Any]


def default_config() -> dict[str, RuleConfig]:
    return {r.id: RuleConfig(True, r.severity, dict(r.params)) for r in builtin_rules().values()}


# ---------------------------------------------------------------------------------------------------
class SweepContext:
    """The merged graph as rules see it: full node records, edges indexed both ways, `now`, and a
    compiled graph built on demand (only the blast-radius rule needs it)."""

    def __init__(self, nodes: dict[str, Node], edges: list[Edge], now: datetime | None = None,
                 graph: CompiledGraph | None = None) -> None:
        self.nodes = nodes
        self.edges = edges
        self.now = now or datetime.now(UTC)
        self.out_edges: dict[str, list[Edge]] = {}
        self.in_edges: dict[str, list[Edge]] = {}
        for e in edges:
            self.out_edges.setdefault(e.src, []).append(e)
            self.in_edges.setdefault(e.dst, []).append(e)
        self._graph = graph
        # CA -> the incident that retired it (filled from the store's journals)
        self.retired_cas: dict[str, str] = {}

    @property
    def graph(self) -> CompiledGraph:
        if self._graph is None:
            from revoke.graph import CompiledGraph

            self._graph = CompiledGraph.build(self.nodes, self.edges)
        return self._graph

    def of_kind(self, *kinds: NodeKind | str) -> Iterator[Node]:
        wanted = {NodeKind(k) for k in kinds}
        return (n for n in self.nodes.values() if n.kind in wanted and not n.attrs.get("stub"))

    def incoming(self, node_id: str, rel: Relation) -> list[Edge]:
        return [e for e in self.in_edges.get(node_id, ()) if e.rel == rel]

    def outgoing(self, node_id: str, rel: Relation) -> list[Edge]:
        return [e for e in self.out_edges.get(node_id, ()) if e.rel == rel]

    def days_since(self, when: datetime) -> int:
        return int((self.now - when).total_seconds() // 86400)

    def days_until(self, when: datetime) -> int:
        return int((when - self.now).total_seconds() // 86400)

    def is_live(self, node: Node) -> bool:
        from revoke.model import DEAD_STATUSES

        if node.status.lower() in DEAD_STATUSES:
            return False
        return not (node.expires is not None and node.expires <= self.now)


def run_sweep(ctx: SweepContext, config: dict[str, RuleConfig] | None = None) -> list[Finding]:
    """Every enabled rule over the graph; findings sorted by severity (worst first), rule, then node
    (or the rule's own order, for rankings)."""
    rules = builtin_rules()
    config = config if config is not None else default_config()
    findings: list[Finding] = []
    for rule_id, cfg in config.items():
        if not cfg.enabled:
            continue
        spec = rules[rule_id]
        hits = list(spec.check(ctx, cfg.params))
        if not spec.ordered:
            hits.sort(key=lambda h: (h.node, h.path))
        for hit in hits:
            node = ctx.nodes.get(hit.node)
            kind = node.kind.value if node else ""
            if hit.targets is None:
                targets = [hit.node] if node is not None and node.kind in CREDENTIAL_KINDS else []
            else:
                targets = list(hit.targets)
            findings.append(Finding(
                rule=rule_id, severity=cfg.severity, reason=hit.reason, node=hit.node, kind=kind,
                provider=node.provider if node else "", evidence=hit.evidence, path=hit.path, targets=targets,
            ))
    findings.sort(key=lambda f: (-f.severity.rank, f.rule))  # stable: each rule's order stays
    return findings


def context_from_store(store: Store, now: datetime | None = None) -> SweepContext:
    """Merged nodes and edges (the same merge `collect` compiles), so rules see every attribute."""
    from revoke.errors import StoreError
    from revoke.graph import resolve

    if not store.snapshots():
        raise StoreError(f"store {store.where} holds no graph yet; run `revoke collect` first")
    nodes, edges = store.load_nodes_edges()
    resolved = resolve(nodes, edges)
    ctx = SweepContext(resolved.nodes, resolved.edges, now=now)
    from revoke.trust import retired_cas

    ctx.retired_cas = retired_cas(store)
    return ctx


def sweep_store(store: Store, config: dict[str, RuleConfig] | None = None, *, now: datetime | None = None) -> list[Finding]:
    return run_sweep(context_from_store(store, now=now), config)


def at_or_above(findings: Iterable[Finding], min_severity: Severity | str) -> list[Finding]:
    floor = parse_severity(min_severity, where="minimum severity")
    return [f for f in findings if f.severity.rank >= floor.rank]


def findings_to_nodes(findings: Iterable[Finding | dict[str, Any]], min_severity: Severity | str = Severity.HIGH) -> list[str]:
    """Credential ids a hygiene playbook should act on, from findings at or above `min_severity`:
    each finding's `targets` (the node itself when it is a credential; none for findings a person
    must decide, like which of two active keys to delete), deduplicated, worst finding first."""
    items = [f if isinstance(f, Finding) else Finding.from_dict(f) for f in findings]
    chosen = sorted(at_or_above(items, min_severity), key=lambda f: -f.severity.rank)
    out: dict[str, None] = {}
    for f in chosen:
        for t in f.targets:
            out.setdefault(t, None)
    return list(out)


def targets_from_store(store: Store, min_severity: Severity | str = Severity.HIGH, *, rules: str | None = None) -> list[str]:
    """`revoke run PLAYBOOK --from-sweep`: sweep the store (with the rules file, if any) and return
    the credential ids to act on, as `findings_to_nodes` picks them."""
    config = default_config()
    if rules:
        from revoke.sweep_config import load_rules

        config = load_rules(rules)
    return findings_to_nodes(sweep_store(store, config), min_severity)


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    counts = {s.value: 0 for s in sorted(Severity, key=lambda s: -s.rank)}
    for f in findings:
        counts[f.severity.value] += 1
    return counts
