"""Observed use: what reachable credentials were actually used, joined to what they could reach.

Potential reach (the walk) decides what is revoked, never less. Observed use only ranks,
explains and proves silence. Connectors that read usage data (the Vault audit log, AWS last-used
data and CloudTrail, GCP key data) return it as edges next to the potential ones:

    actor -[observed_read]-> credential     the actor read the credential (a token read a KV secret)
    actor -[observed_use]->  target         the actor (a credential) was used, on a target (its
                                            principal, a service)

`Relation.OBSERVED_*` are declared not walked (`revoke.model.NOT_WALKED`): an observation
never makes anything reachable. One edge per (actor, relation, target) carries its events in
`attrs.events` (newest kept, at most `MAX_EVENTS`; `attrs.count` is the total), each
`{at, action, source, outcome}` plus, where the source has one, `version`. No event carries a
secret value: only identifiers, paths, operations, times and versions.

An event counts as use only with outcome `ok`; `denied` events are attempts (a revoked token
still being tried), reported after containment as evidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from revoke.model import OBSERVED, Edge, Relation, parse_time

if TYPE_CHECKING:
    from revoke.store import Store

MAX_EVENTS = 100
OK, DENIED = "ok", "denied"


@dataclass(frozen=True)
class Observation:
    """One event, as a source reports it: `by` did `action` on `target` at `at`."""

    by: str
    rel: Relation
    target: str
    at: datetime
    action: str
    source: str
    outcome: str = OK
    version: int | None = None

    def event(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at.isoformat(), "action": self.action, "source": self.source,
                               "outcome": self.outcome}
        if self.version is not None:
            out["version"] = self.version
        return out


def to_edges(observations: Iterable[Observation]) -> list[Edge]:
    """One edge per (actor, relation, target): `since`/`until` are its first and last event."""
    grouped: dict[tuple[str, Relation, str], list[Observation]] = {}
    for obs in observations:
        grouped.setdefault((obs.by, obs.rel, obs.target), []).append(obs)
    edges = []
    for (by, rel, target), items in sorted(grouped.items()):
        items.sort(key=lambda o: o.at)
        events = [o.event() for o in items[-MAX_EVENTS:]]
        edges.append(Edge(by, target, rel, since=items[0].at, until=items[-1].at,
                          attrs={"events": events, "count": len(items)}))
    return edges


@dataclass
class ObservedEdges:
    """The observed edges of the store, indexed both ways."""

    edges: list[Edge] = field(default_factory=list)
    by_src: dict[str, list[Edge]] = field(default_factory=dict)
    by_dst: dict[str, list[Edge]] = field(default_factory=dict)

    @classmethod
    def of(cls, edges: Iterable[Edge]) -> ObservedEdges:
        out = cls()
        for e in edges:
            if e.rel in OBSERVED:
                out.edges.append(e)
                out.by_src.setdefault(e.src, []).append(e)
                out.by_dst.setdefault(e.dst, []).append(e)
        return out

    @classmethod
    def load(cls, store: Store) -> ObservedEdges:
        """Only the observed rows: a plain substring test skips most rows before `json_extract`
        parses any, and the rest of the graph is never loaded."""
        rels = tuple(r.value for r in OBSERVED)
        rows = store.db.execute(
            "SELECT data FROM edges WHERE instr(data, '\"observed_') > 0 AND json_extract(data, '$.rel') IN (?, ?) "
            "ORDER BY rowid", rels)
        return cls.of(Edge.from_dict(json.loads(data)) for (data,) in rows)


def in_graph(graph: Any) -> bool:
    """Whether the compiled graph holds any observed edge: one vector test, so `explain` reads
    the edge rows only when there is something to show."""
    import numpy as np

    from revoke.graph import REL_CODE

    return bool(np.isin(graph.rel, [REL_CODE[r] for r in OBSERVED]).any())


def _events(edge: Edge) -> list[dict[str, Any]]:
    return [ev for ev in edge.attrs.get("events") or [] if isinstance(ev, dict) and ev.get("at")]


def _at(ev: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(ev.get("at"), field_name="at")
    except Exception:  # a damaged event is left out, never fatal to a report
        return None


def observed_for(obs: ObservedEdges, node: str, actors: set[str], since: datetime | None = None
                 ) -> list[dict[str, Any]]:
    """Uses of `node`: reads of it by an actor the attacker could hold (`actors`), and its own
    uses. A read by an actor outside the blast radius (the application's own token) is not the
    attacker's and is left out. Newest first."""
    found: list[tuple[datetime, dict[str, Any]]] = []
    for e in obs.by_dst.get(node, []):
        if e.rel is Relation.OBSERVED_READ and e.src in actors:
            found += [(at, {"at": ev["at"], "by": e.src, "action": ev.get("action", ""), "source": ev.get("source", "")})
                      for ev in _events(e) if ev.get("outcome", OK) == OK and (at := _at(ev)) is not None]
    for e in obs.by_src.get(node, []):
        found += [(at, {"at": ev["at"], "by": node, "action": ev.get("action", ""), "source": ev.get("source", ""),
                        "target": e.dst})
                  for ev in _events(e) if ev.get("outcome", OK) == OK and (at := _at(ev)) is not None]
    if since is not None:
        found = [f for f in found if f[0] >= since]
    found.sort(key=lambda f: f[0], reverse=True)
    return [f[1] for f in found]


def annotate(data: dict[str, Any], obs: ObservedEdges, since: datetime | None = None) -> dict[str, Any]:
    """`blast-radius --observed`: each reached credential gains `observed` (empty when nothing
    was seen), and credentials seen used come first (each group keeps its depth order). With a
    window, events from its start on count: the attacker keeps what it took until revoked."""
    actors = set(data["sources"]) | {e["id"] for e in (*data["credentials"], *data["holders"])}
    for entry in data["credentials"]:
        entry["observed"] = observed_for(obs, entry["id"], actors, since)
    data["credentials"].sort(key=lambda e: not e["observed"])
    return data


def observed_hops(obs: ObservedEdges, path: list[str], target: str) -> list[dict[str, Any]]:
    """For `explain`: observed edges into `target` from a node on its path (the hop the attacker
    was seen taking), and the target's own uses."""
    on_path = set(path)
    out = []
    for e in (*obs.by_dst.get(target, []), *obs.by_src.get(target, [])):
        if e.src in on_path or e.src == target:
            ok = [ev for ev in _events(e) if ev.get("outcome", OK) == OK]
            if ok:
                out.append({"from": e.src, "rel": e.rel.value, "to": e.dst, "count": len(ok),
                            "first": ok[0]["at"], "last": ok[-1]["at"]})
    return out


def after_containment(obs: ObservedEdges, contained: dict[str, datetime]) -> list[dict[str, Any]]:
    """Uses and attempts of each contained credential after it was contained (`contained`: node
    -> when its containment was recorded). An attempt (denied) is evidence for the report; a use
    (ok) means the credential still works somewhere: the incident is not clean."""
    out: list[tuple[datetime, dict[str, Any]]] = []
    for node, when in contained.items():
        for e in obs.by_src.get(node, []):
            for ev in _events(e):
                at = _at(ev)
                if at is not None and at > when:
                    out.append((at, {"node": node, "at": ev["at"], "action": ev.get("action", ""), "target": e.dst,
                                     "source": ev.get("source", ""),
                                     "kind": "use" if ev.get("outcome", OK) == OK else "attempt",
                                     "contained_at": when.isoformat()}))
    out.sort(key=lambda f: f[0])
    return [f[1] for f in out]


def last_observed(obs: ObservedEdges) -> dict[str, datetime]:
    """The latest successful use of each credential, by observed data (as actor or as read)."""
    out: dict[str, datetime] = {}
    for e in obs.edges:
        for ev in _events(e):
            at = _at(ev)
            if at is None or ev.get("outcome", OK) != OK:
                continue
            for node in (e.src, e.dst) if e.rel is Relation.OBSERVED_READ else (e.src,):
                if node not in out or at > out[node]:
                    out[node] = at
    return out


def contained_times(plan: Any, state: Any) -> dict[str, datetime]:
    """Each credential an executed step contained -> when its ok outcome was journaled (the
    latest, if several steps acted on it)."""
    out: dict[str, datetime] = {}
    for step in plan.executable():
        st = state.step(step.id)
        if not st.done or not st.outcome_at:
            continue
        at = parse_time(st.outcome_at, field_name="outcome time")
        if at is not None and (step.node not in out or at > out[step.node]):
            out[step.node] = at
    return out


def check_after_containment(store: Store, plan: Any, state: Any) -> list[dict[str, Any]]:
    """For `verify`: every use or attempt of a contained credential after its containment, from
    the observed edges of the (re-collected) store."""
    contained = contained_times(plan, state)
    return after_containment(ObservedEdges.load(store), contained) if contained else []


def after_reasons(found: list[dict[str, Any]]) -> list[str]:
    """A use after containment means the credential still works somewhere: not clean."""
    return [f"used after containment: {u['node']} at {u['at']} ({u['action']} {u['target']}, {u['source']}; "
            f"contained at {u['contained_at']})" for u in found if u["kind"] == "use"]


def coverage_start(obs: ObservedEdges, nodes: dict[str, Any]) -> dict[str, datetime]:
    """Provider -> its earliest observed event: a credential of a provider with no observed data
    cannot be judged unused by it."""
    out: dict[str, datetime] = {}
    for e in obs.edges:
        node = nodes.get(e.src)
        provider = getattr(node, "provider", "") if node is not None else e.src.split(":", 1)[0]
        # `since` is the first event even when older events were dropped from `attrs.events`
        firsts = [e.since] if e.since is not None else [a for ev in _events(e) if (a := _at(ev)) is not None]
        for at in firsts:
            if provider and (provider not in out or at < out[provider]):
                out[provider] = at
    return out
