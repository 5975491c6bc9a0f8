"""Verification: probe every acted-on credential against live provider state, re-collect the graph,
and walk it again from the compromised nodes through live credentials only.

Clean means: every probe says dead, every store holds its replacement and not the old value,
no live credential is reachable, and every manual task is attested. A probe that cannot decide,
a connector that cannot be reached or a collection that fails makes the result not clean (fail
closed), never "clean".
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from revoke.blast import live_reachable, resolve_sources
from revoke.collect import collect
from revoke.config import Config
from revoke.connections import Runtime
from revoke.connector import ConnectorError
from revoke.errors import RevokeError
from revoke.graph import KINDS
from revoke.incident_state import IncidentState, StepState
from revoke.journal import Journal
from revoke.plan import Plan, Step
from revoke.store import Store

log = structlog.get_logger()
HOLDER_VERBS = ("revoke_sessions", "disable")


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
    path: list[str]
    reason: str = ""


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

    @property
    def clean(self) -> bool:
        return (self.chain_ok and not self.survivors and not self.open_manual and not self.problems
                and not self.collect_failures and not self.failed_steps
                and all(not p.problem for p in self.probes))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["clean"] = self.clean
        out["live_reachable"] = len(self.survivors)
        return out


def verify(journal: Journal, store: Store, config: Config, *, recollect: bool = True) -> VerifyResult:
    journal.require()
    chain_ok, chain_msg, _ = journal.check_chain()
    result = VerifyResult(journal.incident, chain_ok, chain_msg)
    state = IncidentState.read(journal)
    plan = state.require_plan()
    attested = state.attestations
    rt = Runtime(config, store)
    dead: set[str] = set(attested)
    try:
        probed = [s for s in plan.executable() if s.verb != "create_ca"]
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
            collecting = pool.submit(collect, config, store) if recollect else None
            futures = [pool.submit(_probe_group, rt, name, steps) for name, steps in groups.items()]
            lines = {line.step: line for f in futures for line in f.result()}
            report = collecting.result() if collecting is not None else None
        if report is not None:
            result.collect_failures = dict(report.failed)
        for step in probed:
            line = lines[step.id]
            if line.live is None and step.verb in HOLDER_VERBS and step.kind not in ("access_key", "token"):
                line.problem = ""  # an identity-level action has no credential to probe
            result.probes.append(line)
            if line.live is False:
                dead.add(step.node)
            st = state.step(step.id)
            if step.verb in ("rotate", "reissue") and st.acted:
                _check_stores(rt, step, st, result)
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
        _residual(store, plan, dead, result)
    finally:
        rt.close()
    journal.append("verify", data={"clean": result.clean, "survivors": [s.node for s in result.survivors],
                                   "open_manual": [m["node"] for m in result.open_manual],
                                   "probes": len(result.probes), "chain_ok": chain_ok,
                                   "failed_steps": result.failed_steps})
    return result


def _probe_group(rt: Runtime, conn_name: str | None, steps: list[Step]) -> list[ProbeLine]:
    try:
        results = rt.connector(conn_name).probe_many([rt.node(s.node) for s in steps])
    except (ConnectorError, RevokeError) as exc:
        return [ProbeLine(s.id, s.node, None, "probe failed", problem=exc.diagnostic()) for s in steps]
    out = []
    for step, res in zip(steps, results, strict=True):
        problem = ""
        if res.live is None:
            problem = f"probe could not decide ({res.signal})"
        elif res.live:
            problem = f"still live ({res.signal})"
        out.append(ProbeLine(step.id, step.node, res.live, res.signal, problem))
    return out


def _check_stores(rt: Runtime, step: Step, st: StepState, result: VerifyResult) -> None:
    new = st.live_replacement
    for t in step.stores:
        if t["mode"] != "write":
            continue
        try:
            held = rt.connector(t["connector"]).store_holds(rt.node(t["store"]))
        except (ConnectorError, RevokeError) as exc:
            result.problems.append(f"{t['store']}: cannot read the store back ({exc.diagnostic()})")
            continue
        if step.node in held:
            result.problems.append(f"{t['store']} still holds the old {step.node}")
        if new and new not in held:
            result.problems.append(f"{t['store']} does not hold the replacement {new}")


def _residual(store: Store, plan: Plan, dead: set[str], result: VerifyResult) -> None:
    graph = store.load_compiled()
    present = [s for s in plan.sources if graph.lookup(s) is not None]
    if not present:
        result.problems.append("none of the compromised nodes is in the re-collected graph; cannot walk it")
        return
    radius, live = live_reachable(graph, resolve_sources(graph, present), sorted(dead))
    reasons = {s.node: f"{s.verb}: {s.reason}" for s in plan.steps if s.verb in ("skip", "manual")}
    for i in live:
        nid = graph.ids[int(i)]
        result.survivors.append(Survivor(nid, KINDS[graph.kind[i]].value, radius.path_ids(nid) or [nid],
                                         reasons.get(nid, "live and reachable")))
