"""Verification: check every executed action against live provider state, re-collect the graph,
and walk it again from the compromised nodes through live credentials only.

Each action is checked the way its connector declared (`ActionSpec.probe`): "liveness" probes the
node (it must be dead), "readback" reads the action's effect back (a role's session cutoff policy),
and an action declared with no probe is "not verified". A credential the plan found already dead
is probed too: re-enabled out of band, it is drift, and `run --execute` re-applies containment.

Clean means: every check says contained, every store holds its replacement (or a later one of the
same lineage, from any incident) and never a compromised value, every live certificate a CA the
incident created has issued is one a journal records (revoke/verify_issued.py), no live credential
is reachable,
every manual task is attested, and no live holder's re-read trust store still holds a CA the
incident retires (an attestation does not outweigh a trust store read back). A probe that cannot
decide, a connector that cannot be reached or a collection that fails makes the result not clean
(fail closed), never "clean". `reasons` is the one list of why not, one line each: the CLI, the
JSON, the report and the signed statement all print it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from revoke import journal_index
from revoke.blast import ShortPaths, live_reachable, resolve_sources
from revoke.collect import collect
from revoke.config import Config
from revoke.connections import Runtime
from revoke.connector import GONE, Connector, ConnectorError, ProbeResult, declared
from revoke.errors import RevokeError
from revoke.graph import KINDS, CompiledGraph
from revoke.incident_state import IncidentState, StepState
from revoke.journal import Journal
from revoke.observed import after_reasons, check_after_containment
from revoke.plan_model import Plan, Step
from revoke.store import Store
from revoke.tables import short_path
from revoke.trust import acting_node, trust_survivors
from revoke.verify_issued import unaccounted

log = structlog.get_logger()
# steps whose effect verify checks: every executable one but the creation of a new CA, and the
# credentials the plan found already dead (they must stay dead)
CHECKED = ("already_dead",)


@dataclass
class ProbeLine:
    step: str
    node: str
    live: bool | None
    signal: str
    problem: str = ""


@dataclass
class Survivor:
    node: str
    kind: str
    # shortened the way `blast-radius` prints paths (head, "…", tail): linear on deep graphs
    path: list[str]
    reason: str = ""
    path_length: int = 0  # the whole path's length, when `path` is shortened


@dataclass
class VerifyResult:
    incident: str
    chain_ok: bool
    chain_message: str
    probes: list[ProbeLine] = field(default_factory=list)
    survivors: list[Survivor] = field(default_factory=list)
    open_manual: list[dict[str, Any]] = field(default_factory=list)
    attested: list[dict[str, Any]] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    collect_failures: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # holders whose re-read trust store still holds a CA of the incident
    trust_survivors: list[dict[str, Any]] = field(default_factory=list)
    # observed uses (not clean) and attempts (evidence) of contained credentials after containment
    after_containment: list[dict[str, Any]] = field(default_factory=list)
    # what happened to the incident that is no reason for NOT CLEAN: a credential it retained,
    # deleted by another incident's plan (revoke/plan_retained.py)
    notes: list[str] = field(default_factory=list)
    # what the re-collection read again and what it kept, unchanged since it was taken
    # ({"recollected": [names], "reused": {name: taken_at}, "full": bool}); empty without one
    recollection: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.reasons

    @property
    def drifted(self) -> list[str]:
        """Steps whose contained credential is live again: `run --execute` re-applies them."""
        return [p.step for p in self.probes if p.live is True]

    @property
    def reasons(self) -> list[str]:
        """Every reason the result is not clean, one line each; empty when clean."""
        out = [] if self.chain_ok else [f"journal: {self.chain_message}"]
        out += [f"step not done: {sid}" for sid in self.failed_steps]
        out += [f"{p.node}: {p.problem}" for p in self.probes if p.problem]
        out += self.problems
        out += [f"collection failed for {name}: {msg}" for name, msg in sorted(self.collect_failures.items())]
        out += [f"live and reachable: {s.node} ({s.reason}) via {short_path(s.path, length=s.path_length or None)}"
                for s in self.survivors]
        out += [f"manual task open: {m['node']} ({m['reason']})" for m in self.open_manual]
        out += [f"still trusts {t['ca']}: {t['holder']} in {', '.join(t['paths']) or 'its trust store'}"
                for t in self.trust_survivors]
        out += after_reasons(self.after_containment)
        return out

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["clean"] = self.clean
        out["reasons"] = self.reasons
        out["drifted"] = self.drifted
        out["live_reachable"] = len(self.survivors)
        return out


def verify(journal: Journal, store: Store, config: Config, *, recollect: bool = True, full: bool = False,
           workers: bool = False, progress: Callable[[dict[str, int]], None] | None = None) -> VerifyResult:
    """`full`: re-collect every connector, even one whose sources provably did not change since
    its snapshot (revoke/collect_reuse.py says when a snapshot is kept). `workers`: the
    re-collection's jobs go to `revoke worker` processes, as `revoke collect --workers` does."""
    journal.require()
    chain_ok, chain_msg, _ = journal.check_chain()
    result = VerifyResult(journal.incident, chain_ok, chain_msg)
    state = IncidentState.read(journal)
    result.notes = state.retained_notes()
    plan = state.require_plan()
    attested = state.attestations
    rt = Runtime(config, store)
    dead: set[str] = set(attested)
    try:
        probed = [s for s in plan.steps if (s.executable and s.verb != "create_ca") or s.verb in CHECKED]
        result.failed_steps = [s.id for s in plan.executable() if not state.done(s.id)]
        for s in probed:  # node records are read now: the store is rewritten by the re-collection below
            rt.node(s.node)
            for t in s.stores:
                rt.node(t["store"])
        groups: dict[str | None, list[Step]] = {}
        for s in probed:
            groups.setdefault(s.connector, []).append(s)
        # probes (batched per connector) and the re-collection are independent: run them together
        with ThreadPoolExecutor(max_workers=len(groups) + 1) as pool:
            collecting = pool.submit(collect, config, store, reuse=not full, workers=workers,
                                     progress=progress) if recollect else None
            futures = [pool.submit(_check_group, rt, name, steps) for name, steps in groups.items()]
            lines = {line.step: line for f in futures for line in f.result()}
            report = collecting.result() if collecting is not None else None
        if report is not None:
            result.collect_failures = dict(report.failed)
            result.recollection = {"recollected": sorted({*report.collected, *report.failed}),
                                   "reused": dict(sorted(report.reused.items())), "full": full}
        lineage = store_lineage(store)
        for step in probed:
            line = lines[step.id]
            result.probes.append(line)
            if line.live is False:
                dead.add(step.node)
        # stores (and escrow items) read back, several at once: a fleet's reissue has hundreds
        rewritten = [(s, state.step(s.id)) for s in plan.steps
                     if (s.verb in ("rotate", "reissue") or (s.verb == "create_ca" and s.escrow))
                     and state.step(s.id).acted]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for problems in pool.map(lambda x: _check_stores(rt, x[0], x[1], lineage), rewritten):
                result.problems.extend(problems)
        by_id = plan.by_id()
        for step in plan.steps:
            if step.verb == "covered" and step.depends_on:
                cover = by_id.get(step.depends_on[0])
                if cover is not None and cover.node in dead:
                    dead.add(step.node)
        for step in plan.manual():
            if step.node in attested:
                result.attested.append(attested[step.node])
            else:
                result.open_manual.append({"node": step.node, "reason": step.reason, "path": step.path})
        graph = store.load_compiled()
        # every certificate a CA created by this incident issued is one it journaled
        result.problems.extend(unaccounted(graph, plan, state, lineage))
        _residual(graph, plan, dead, result, {c.type for c in config.connectors} if report is not None else None)
        result.after_containment = check_after_containment(store, plan, state)
        if report is not None or not recollect:
            result.trust_survivors = [{"holder": h, "ca": ca, "paths": found}
                                      for h, ca, found in trust_survivors(store, plan.steps)]
    finally:
        rt.close()
    journal.append("verify", data={"clean": result.clean, "survivors": [s.node for s in result.survivors],
                                   "open_manual": [m["node"] for m in result.open_manual],
                                   "probes": len(result.probes), "chain_ok": chain_ok,
                                   "failed_steps": result.failed_steps, "drifted": result.drifted,
                                   "reasons": result.reasons, "after_containment": result.after_containment,
                                   "notes": result.notes})
    return result


def _check_group(rt: Runtime, conn_name: str | None, steps: list[Step]) -> list[ProbeLine]:
    """Check one connector's steps as each action was declared: probes batched, read-backs one by
    one, an action with no probe reported as not verified."""
    try:
        conn = rt.connector(conn_name)
    except (ConnectorError, RevokeError) as exc:
        return [ProbeLine(s.id, s.node, None, "probe failed", problem=exc.diagnostic()) for s in steps]
    how = {s.id: _how(type(conn), s) for s in steps}
    out: dict[str, ProbeLine] = {}
    liveness = [s for s in steps if how[s.id] == "liveness"]
    try:
        probed = conn.probe_many([rt.node(s.node) for s in liveness]) if liveness else []
        out.update({s.id: _line(s, res) for s, res in zip(liveness, probed, strict=True)})
    except (ConnectorError, RevokeError) as exc:
        out.update({s.id: ProbeLine(s.id, s.node, None, "probe failed", problem=exc.diagnostic()) for s in liveness})
    for s in steps:
        if how[s.id] == "readback":
            try:
                out[s.id] = _line(s, conn.confirm(s.verb, acting_node(rt.node(s.node), s)))
            except (ConnectorError, RevokeError) as exc:
                out[s.id] = ProbeLine(s.id, s.node, None, "read-back failed", problem=exc.diagnostic())
        elif how[s.id] != "liveness":
            out[s.id] = ProbeLine(s.id, s.node, None, "no probe",
                                  problem=f"not verified: {conn_name} declares no probe for {s.verb}")
    return [out[s.id] for s in steps]


def _how(cls: type[Connector], step: Step) -> str:
    if step.verb in CHECKED:
        return "liveness"
    spec = declared(cls, step.node, step.verb)
    return spec.probe if spec is not None else "none"


def _line(step: Step, res: ProbeResult) -> ProbeLine:
    problem = ""
    if res.live is None:
        problem = f"probe could not decide ({res.signal})"
    elif res.live:
        problem = (f"live again after {step.verb} ({res.signal}); `revoke run --execute` re-applies it"
                   if step.verb != "already_dead" else f"re-enabled since the plan found it dead ({res.signal})")
    return ProbeLine(step.id, step.node, res.live, res.signal, problem)


def store_lineage(store: Store) -> dict[str, str]:
    """old credential -> its replacement, over every incident's journal in the store (a hygiene
    rotation is an incident too): a store may hold a later replacement of the same lineage. One
    query over the progress records (revoke/journal_index.py), not every journal re-read."""
    return journal_index.lineage(store)


def _descendants(node: str, lineage: dict[str, str]) -> set[str]:
    out: set[str] = set()
    while node in lineage and lineage[node] not in out:
        node = lineage[node]
        out.add(node)
    return out


def _check_stores(rt: Runtime, step: Step, st: StepState, lineage: dict[str, str]) -> list[str]:
    """What is wrong with the stores (and the escrow item) a rotation wrote, read back."""
    problems: list[str] = []
    if (st.outcome or {}).get(GONE):  # the credential vanished before its rotation: no replacement to hold
        return problems
    new = st.live_replacement
    later = _descendants(new, lineage) if new else set()
    for t in step.stores:
        if t["mode"] != "write":
            continue
        try:
            held = rt.connector(t["connector"]).store_holds(rt.node(t["store"]))
        except (ConnectorError, RevokeError) as exc:
            problems.append(f"{t['store']}: cannot read the store back ({exc.diagnostic()})")
            continue
        if step.node in held:
            problems.append(f"{t['store']} still holds the old {step.node}")
        if new and new in held and later:
            problems.append(f"{t['store']} still holds {new}, replaced since by a later rotation")
        elif new and new not in held and not (held & later):
            problems.append(f"{t['store']} does not hold the replacement {new}")
    esc = step.escrow
    if esc and new:  # the replacement no store could receive waits in the escrow until delivered
        try:
            kept = rt.connector(esc["connector"]).escrow_holds(esc["location"], esc["item"])
        except (ConnectorError, RevokeError) as exc:
            return [*problems, f"{esc['where']}: cannot read the escrow back ({exc.diagnostic()})"]
        if new not in kept:
            problems.append(f"the escrow {esc['where']} does not hold the replacement {new}")
    return problems


def _residual(graph: CompiledGraph, plan: Plan, dead: set[str], result: VerifyResult,
              recollected: set[str] | None = None) -> None:
    present = [s for s in plan.sources if graph.lookup(s) is not None]
    # a source its own provider's connector no longer lists, in a re-collection that did not
    # fail, is gone (a Kubernetes pod deleted to end its bound token): a tombstone, nothing to walk
    gone = [s for s in plan.sources if s not in present and recollected is not None
            and not result.collect_failures and s.split(":", 1)[0] in recollected]
    if not present:
        if gone and len(gone) == len(plan.sources):
            return
        result.problems.append("none of the compromised nodes is in the re-collected graph; cannot walk it")
        return
    radius, live = live_reachable(graph, resolve_sources(graph, present), sorted(dead))
    if not len(live):
        return
    reasons = {s.node: f"{s.verb}: {s.reason}" for s in plan.steps if s.verb in ("skip", "manual")}
    # each reached node's path from its predecessor's, shortened: never one whole path per survivor
    short = ShortPaths(graph.ids)
    paths = {i: short.add(i, p)
             for i, p in zip(radius.reached.tolist(), radius.pred[radius.reached].tolist(), strict=True)}
    for i in live.tolist():
        path, length = paths.get(i) or ([graph.ids[i]], 1)
        result.survivors.append(Survivor(graph.ids[i], KINDS[graph.kind[i]].value, path,
                                         reasons.get(graph.ids[i], "live and reachable"),
                                         length if length > len(path) else 0))
