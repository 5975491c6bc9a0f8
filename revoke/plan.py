"""The plan: a blast radius turned into an ordered DAG of actions, each with the path that put it there.

Ordering rules:
- containment first: a credential that can read a store is revoked before any replacement is
  written into that store, so the attacker never sees the new value;
- a rotate creates the replacement, writes it to every store that held the old value (every
  `stores` edge into it, except compromised sources), then retires the old credential;
- a replacement no store revoke can write may receive goes to the escrow (revoke.yaml
  `escrow:`), with one manual task per place it must be delivered to; with no escrow, no
  replacement is made: the old credential is contained (the playbook's retire verb) and a manual
  task says to issue a new one when the holder is re-provisioned. Nothing is created that nobody
  can receive;
- a step that cannot be undone (the connector's declaration, refined from the graph, e.g. AWS's
  two-key limit) is marked `reversible: false`; `run --execute` wants `--approve` for it; when
  what it destroys is retained by another open incident, the step names that incident and why
  (`retained`, revoke/plan_retained.py);
- a CA reissue creates the new CA and every new certificate before the old ones are revoked,
  and retires the old CA last (`--emergency` revokes first);
- a Vault token whose ancestor is revoked is covered by that revoke (the subtree goes with it);
- a credential no connector can act on, or the playbook marks manual, becomes a manual task with
  its path; a `skip` is listed with its reason. Nothing reachable is dropped;
- a reached credential that is already dead (disabled, revoked, expired, deleted) is listed as
  `already_dead`: no provider call, and the walk stops there (it opens nothing any more).
"""

from __future__ import annotations

import heapq
import json
from typing import Any

import numpy as np

from revoke.blast import BlastRadius, ShortPaths, Window, blast_radius, resolve_sources
from revoke.config import Config, EscrowConfig
from revoke.connector import Connector, GraphLookups, declared, writes_stores
from revoke.errors import InputError
from revoke.graph import CompiledGraph, GraphView
from revoke.model import CREDENTIAL_KINDS, Node, NodeKind, Relation
from revoke.plan_delivery import plan_new_ca, plan_rotation
from revoke.plan_model import EXECUTABLE as EXECUTABLE  # re-exported: the model lives there
from revoke.plan_model import Plan as Plan
from revoke.plan_model import Step as Step
from revoke.plan_retained import mark_retained
from revoke.plan_wiring import CONTAINING as CONTAINING  # re-exported: the ordering rules live there
from revoke.plan_wiring import READER_DEPTH as READER_DEPTH
from revoke.plan_wiring import READER_RELS as READER_RELS
from revoke.plan_wiring import _reaches as _reaches
from revoke.plan_wiring import containment_step, readers, wire
from revoke.playbook import Playbook
from revoke.store import Store
from revoke.trust import plan_untrust

FALLBACKS = {
    "rotate": ("rotate", "reissue", "revoke", "disable"),
    "reissue": ("reissue", "rotate", "revoke"),
    "revoke": ("revoke", "disable"),
    "disable": ("disable", "revoke"),
}
PHASE = {"revoke": 0, "disable": 0, "revoke_sessions": 0, "create_ca": 1, "rotate": 2, "reissue": 2, "untrust": 3, "retire_ca": 3}


class ConnectorIndex:
    """Which configured connector owns which node, and what each can do (classes only: no clients)."""

    def __init__(self, config: Config | None, store: Store) -> None:
        from revoke.connector import connector_class

        self.store = store
        self.by_name: dict[str, type[Connector]] = {}
        self.types: dict[str, str] = {}
        for cfg in config.connectors if config else []:
            self.by_name[cfg.name] = connector_class(cfg.type)
            self.types[cfg.name] = cfg.type

    def owner(self, node: Node) -> str | None:
        if not node.provider:
            return None
        rows = self.store.db.execute("SELECT DISTINCT snapshot FROM nodes WHERE id=?", (node.id,)).fetchall()
        for (snap,) in rows:
            if self.types.get(snap) == node.provider:
                return str(snap)
        for name, ctype in self.types.items():
            if ctype == node.provider:
                return name
        return None

    def supports(self, name: str, kind: NodeKind, verb: str, node_id: str | None = None) -> bool:
        """Whether the connector declares `verb` for this kind and, given the node's id, for its
        type too (a connector's `revoke` of one token type is no promise for another)."""
        cls = self.by_name[name]
        return verb in cls.actions.get(kind, frozenset()) and (node_id is None or declared(cls, node_id, verb) is not None)

    def can_write(self, name: str | None) -> bool:
        return name is not None and writes_stores(self.by_name[name])

    def keeps_secret(self, name: str | None, node_id: str) -> bool:
        return name is not None and self.by_name[name].keeps_replacement_secret(node_id)


def _alias_edges(store: Store) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for (data,) in store.db.execute("SELECT data FROM edges WHERE data LIKE '%\"alias\"%'"):
        e = json.loads(data)
        if e.get("rel") == "derives" and (e.get("attrs") or {}).get("alias"):
            out.setdefault(e["from"], []).append(e["to"])
    return out


def owned_sources(store: Store, owner: str) -> list[str]:
    short = owner.split(":")[-1]
    ids = [nid for nid, data in store.db.execute("SELECT id, data FROM nodes")
           if json.loads(data).get("owner") in (owner, short)]
    return sorted(set(ids))


def build_plan(
    playbook: Playbook, store: Store, graph: CompiledGraph, config: Config | None, node_ids: list[str],
    *, window: str | None = None, emergency: bool = False,
) -> Plan:
    sources = list(node_ids)
    if playbook.model.scope == "owned":
        # a person may be only an `owner` attribute, with no node of their own
        owned = [n for o in node_ids for n in owned_sources(store, o)]
        if not owned:
            raise InputError(f"no node in the graph is owned by {', '.join(node_ids)}")
        present = [n for n in node_ids if graph.lookup(n) is not None]
        _check_applies(playbook, graph, resolve_sources(graph, present))
        sources = sorted(set(present) | set(owned))
        src_idx = resolve_sources(graph, sources)
    else:
        src_idx = resolve_sources(graph, node_ids)
        _check_applies(playbook, graph, src_idx)
    win_text = window or playbook.model.window
    if playbook.model.scope == "self":
        # hygiene: act on the given credentials only, without assuming anything was compromised
        radius = blast_radius(graph, src_idx, blocked=np.ones(graph.n_nodes, dtype=bool))
    else:
        radius = blast_radius(graph, src_idx, window=Window.parse(win_text) if win_text else None)
    return _Planner(playbook, store, graph, config, radius, sources, win_text, emergency).run()


def _check_applies(playbook: Playbook, graph: CompiledGraph, src_idx: list[int]) -> None:
    from revoke.graph import KINDS

    applies = playbook.model.applies_to
    for i in src_idx:
        kind = KINDS[graph.kind[i]].value
        provider = graph.providers[graph.provider[i]]
        if applies.kinds and kind not in applies.kinds:
            raise InputError(f"playbook {playbook.name!r} applies to kinds {applies.kinds}; "
                             f"{graph.ids[i]} is a {kind}")
        if applies.providers and provider not in applies.providers:
            raise InputError(f"playbook {playbook.name!r} applies to providers {applies.providers}; "
                             f"{graph.ids[i]} is from {provider or 'no provider'}")


class _Planner:
    def __init__(self, playbook: Playbook, store: Store, graph: CompiledGraph, config: Config | None,
                 radius: BlastRadius, sources: list[str], window: str | None, emergency: bool) -> None:
        self.pb, self.store, self.g, self.radius = playbook, store, graph, radius
        self.sources, self.window, self.emergency = sources, window, emergency
        self.conns = ConnectorIndex(config, store)
        self.view = GraphView(graph)
        self.reached_ids = [graph.ids[i] for i in radius.reached]
        self.nodes = store.load_nodes(self.reached_ids)
        self.aliases = _alias_edges(store)
        self.steps: dict[str, Step] = {}
        self.step_for_node: dict[str, Step] = {}
        self.escrow: EscrowConfig | None = config.escrow if config else None
        self.deliveries: list[Step] = []  # manual delivery tasks, added once `cover()` has run
        self._paths: dict[str, tuple[list[str], int]] | None = None

    def preds(self, node_id: str, rel: Relation) -> list[str]:
        return self.view.preds(node_id, rel)

    def succs(self, node_id: str, rel: Relation) -> list[str]:
        return self.view.succs(node_id, rel)

    def path(self, node_id: str) -> tuple[list[str], int]:
        """(path printed and journaled for the node, its whole length): long paths are shortened
        the way `blast-radius` prints them, so a deep chain plans in linear time and space."""
        if self._paths is None:
            short = ShortPaths(self.g.ids)
            reached = self.radius.reached.tolist()
            self._paths = {self.g.ids[i]: short.add(i, p)
                           for i, p in zip(reached, self.radius.pred[self.radius.reached].tolist(), strict=True)}
        return self._paths.get(node_id) or ([node_id], 1)

    def add(self, step: Step) -> Step:
        self.steps[step.id] = step
        self.step_for_node.setdefault(step.node, step)
        return step

    def node(self, node_id: str) -> Node:
        if node_id not in self.nodes:
            self.nodes.update(self.store.load_nodes([node_id]))
        return self.nodes[node_id]

    # planning --------------------------------------------------------------------------------------------
    def run(self) -> Plan:
        creds = [nid for nid in self.reached_ids if self.nodes[nid].kind in CREDENTIAL_KINDS]
        holders = [nid for nid in self.reached_ids if self.nodes[nid].kind not in CREDENTIAL_KINDS]
        for nid in creds:
            self.plan_credential(self.nodes[nid])
        for nid in holders:
            self.plan_holder(self.nodes[nid])
        self.cover()
        for m in self.deliveries:
            self.add(m)
        plan_untrust(self)
        self.wire()
        self.mark_irreversible()
        mark_retained(self)
        return Plan(self.pb.source, self.pb.name, self.sources, self.window, self.emergency, self.order())

    def base(self, node: Node, verb: str, conn: str | None, reason: str = "", sid: str | None = None) -> Step:
        path, length = self.path(node.id)
        return Step(sid or f"{verb}:{node.id}", verb, node.id, node.kind.value, node.provider, conn,
                    path, reason=reason, depth=length - 1)

    def plan_credential(self, node: Node) -> None:
        spec = self.pb.action_for(node.kind)
        if spec.action == "skip":
            self.add(self.base(node, "skip", None, spec.reason))
            return
        conn = self.conns.owner(node)
        i = self.g.lookup(node.id)
        if i is not None and not self.g.live[i]:
            # exposed, but it no longer works: no provider call now, verify probes it stays dead
            self.add(self.base(node, "already_dead", conn, f"already {self.g.status_of(i) or 'dead'} before this "
                               "plan: nothing to do; verify probes that it stays dead"))
            return
        if spec.action == "manual":
            self.add(self.base(node, "manual", conn, spec.reason or "the playbook makes this a manual task"))
            return
        if conn is None:
            why = ("known only by reference: no connector collected it" if node.attrs.get("stub")
                   else f"no connector configured for provider {node.provider or '(none)'}")
            # a provider without an API for it says exactly what to do by hand (PyPI tokens)
            hint = node.attrs.get("manual_hint")
            self.add(self.base(node, "manual", None, str(hint) if hint else f"{why}; revoke or rotate it by hand, then attest"))
            return
        verb = next((v for v in FALLBACKS.get(spec.action, (spec.action,))
                     if self.conns.supports(conn, node.kind, v, node.id)), None)
        if verb is None:
            how = self.conns.by_name[conn].manual_reason(node)
            self.add(self.base(node, "manual", conn,
                               how or f"connector {conn} cannot {spec.action} a {node.kind.value}; act by hand, then attest"))
            return
        reason = "" if verb == spec.action else f"connector {conn} cannot {spec.action} a {node.kind.value}; {verb} instead"
        if node.kind is NodeKind.CA and verb in ("reissue", "rotate"):
            plan_new_ca(self, node, conn, reason)
        elif verb in ("rotate", "reissue"):
            plan_rotation(self, node, conn, verb, reason)
        else:
            self.add(self.base(node, verb, conn, reason))

    def containing_verb(self, node: Node, conn: str | None, retire: str) -> str | None:
        """The verb that contains `node` when it is not replaced: the retire verb or its fallback."""
        return next((v for v in (retire, *FALLBACKS[retire])
                     if conn and self.conns.supports(conn, node.kind, v, node.id)), None)

    def store_targets(self, node: Node) -> list[dict[str, Any]]:
        out = []
        for sid in self.preds(node.id, Relation.STORES):
            store = self.node(sid)
            conn = self.conns.owner(store)
            if sid in self.sources:
                out.append({"store": sid, "connector": None, "mode": "skip",
                            "reason": "a compromised source: the replacement is not written back to it"})
            elif self.conns.can_write(conn):
                out.append({"store": sid, "connector": conn, "mode": "write"})
            else:
                out.append({"store": sid, "connector": None, "mode": "manual"})
        return out

    def mark_irreversible(self) -> None:
        """`reversible: false` on every step that destroys what cannot come back, as its connector
        says from the graph (a rotation also answers for the retirement of the old credential)."""
        lookups = GraphLookups(get_node=self.node_or_none, predecessors=self.view.preds, successors=self.view.succs)
        for step in self.steps.values():
            cls = self.conns.by_name.get(step.connector or "")
            if cls is None or not step.executable:
                continue
            node = self.node(step.node)
            why = cls.irreversible_reason(step.verb, node, lookups)
            if why is None and step.retire:
                why = cls.irreversible_reason(step.retire, node, lookups)
                why = f"retiring the old one: {why}" if why else None
            if why:
                step.reversible, step.irreversible = False, why

    def node_or_none(self, node_id: str) -> Node | None:
        if node_id not in self.nodes:
            self.nodes.update(self.store.load_nodes([node_id]))
        return self.nodes.get(node_id)

    def plan_holder(self, node: Node) -> None:
        spec = self.pb.action_for(node.kind)
        if spec.action in ("none", "skip"):
            return
        conn = self.conns.owner(node)
        if conn is None or not self.conns.supports(conn, node.kind, spec.action, node.id):
            self.add(self.base(node, "skip", conn,
                               f"no configured connector can {spec.action} a {node.kind.value}"))
            return
        self.add(self.base(node, spec.action, conn))

    def cover(self) -> None:
        """Mark steps made redundant by another: a token under a revoked ancestor, an alias of an
        acted-on credential, a private key whose certificate is revoked or reissued."""
        for step in list(self.steps.values()):
            by = None
            if step.kind == NodeKind.TOKEN.value and step.verb in ("revoke", "manual"):
                by = self._ancestor_revoke(step.node)
                why = "revoked with its parent token {} (the whole subtree goes)"
            if by is None and step.verb in ("manual", "skip") and step.node in self.aliases:
                by = next((self.step_for_node[t].id for t in self.aliases[step.node]
                           if t in self.step_for_node and self.step_for_node[t].executable), None)
                why = "the same credential as {}, acted on there"
            if by is None and step.kind == NodeKind.PRIVATE_KEY.value and step.verb == "manual":
                certs = self.succs(step.node, Relation.AUTHENTICATES_AS)
                acted = [self._acting_step(c) for c in certs]
                if certs and all(acted):
                    by = acted[0]
                    why = "useless once its certificate is revoked: {}"
            if by is not None:
                step.verb, step.reason = "covered", why.format(by)
                step.depends_on = [by]

    def _acting_step(self, node_id: str) -> str | None:
        s = self.step_for_node.get(node_id)
        if s is not None and s.executable:
            return s.id
        for t in self.aliases.get(node_id, []):
            s = self.step_for_node.get(t)
            if s is not None and s.executable:
                return s.id
        return None

    def _ancestor_revoke(self, node_id: str) -> str | None:
        seen = {node_id}
        frontier = [node_id]
        found = None
        while frontier:
            nxt = []
            for nid in frontier:
                for parent in self.preds(nid, Relation.PARENT_OF):
                    if parent in seen:
                        continue
                    seen.add(parent)
                    s = self.step_for_node.get(parent)
                    if s is not None and s.verb == "revoke":
                        found = s.id  # keep walking: the topmost revoked ancestor covers all
                    nxt.append(parent)
            frontier = nxt
        return found

    def readers(self, store_id: str) -> set[str]:
        return readers(self, store_id)

    def containment_step(self, node_id: str) -> Step | None:
        return containment_step(self, node_id)

    def wire(self) -> None:
        wire(self)

    def order(self) -> list[Step]:
        """Kahn's algorithm with (phase, depth, id) priority; non-executable steps follow."""
        exe = {s.id: s for s in self.steps.values() if s.executable}
        indeg = {sid: 0 for sid in exe}
        children: dict[str, list[str]] = {sid: [] for sid in exe}
        # an executable step may also wait for a manual task (a CA's retirement for an untrust
        # attestation): kept, and the executor holds the step until the task is attested
        manual = {s.id for s in self.steps.values() if s.verb == "manual"}
        for s in exe.values():
            s.depends_on = sorted({d for d in s.depends_on if d in exe or d in manual})
            for d in (d for d in s.depends_on if d in exe):
                indeg[s.id] += 1
                children[d].append(s.id)
        heap = [(PHASE[s.verb], s.depth, s.id) for s in exe.values() if indeg[s.id] == 0]
        heapq.heapify(heap)
        out: list[Step] = []
        while heap:
            _, _, sid = heapq.heappop(heap)
            out.append(exe[sid])
            for c in children[sid]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    heapq.heappush(heap, (PHASE[exe[c].verb], exe[c].depth, c))
        if len(out) != len(exe):
            raise InputError("the plan has a dependency cycle: " + ", ".join(sorted(set(exe) - {s.id for s in out})))
        rest = sorted((s for s in self.steps.values() if not s.executable),
                      key=lambda s: ({"manual": 0, "covered": 1, "skip": 2}.get(s.verb, 3), s.depth, s.id))
        return out + rest
