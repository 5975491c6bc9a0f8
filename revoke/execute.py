"""The executor: runs a plan's DAG with bounded concurrency per provider, retries, and a journal.

Every action is journaled as `intent` before and `outcome` after; a rotation also journals
`progress` records (replacement created, each store written, old credential retired), holding
ids and fingerprints only. What a resumed run does with each of them (the crash-recovery
contract) is stated once, in revoke/incident_state.py, which reads the journal for this module.
A step that depends on a manual task not attested yet is not run: a `waiting` record says which
task, and the step stays pending for the next run. Who runs a ready step is a StepRunner's choice
(revoke/step_runners.py): a thread of this process, or a `revoke worker` (revoke/step_jobs.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from functools import partial
from typing import Any, TypeVar

import structlog

from revoke import logs
from revoke.connections import Runtime
from revoke.connector import GONE, ActionContext, ActionResult, Connector, ConnectorError, Replacement, batches_escrow, declared
from revoke.escrow_writes import EscrowWrites
from revoke.graph import GraphView
from revoke.incident_state import IncidentState, StepState
from revoke.journal import Journal
from revoke.model import Node
from revoke.ocsf import step_event
from revoke.plan import Plan, Step
from revoke.playbook import Playbook
from revoke.retry import with_retries
from revoke.step_runners import LocalSteps, RunStats, StepFailed, StepRunner
from revoke.trust import acting_node

log = structlog.get_logger()
# the containment a drifted step re-applies (a rotation's is its retire verb)
REAPPLY = {"rotate": "disable", "reissue": "revoke", "retire_ca": "revoke"}
T = TypeVar("T")


class Executor:
    def __init__(self, plan: Plan, playbook: Playbook, journal: Journal, runtime: Runtime, view: GraphView,
                 *, emergency: bool = False, progress: Callable[[Step, str], None] | None = None,
                 runner: Callable[[Executor, list[Step]], StepRunner] = LocalSteps) -> None:
        self.plan, self.pb, self.journal, self.rt, self.view = plan, playbook, journal, runtime, view
        self.runner = runner  # in this process (threads), or as jobs for `revoke worker` (revoke/step_jobs.py)
        self.emergency = emergency
        self.progress = progress or (lambda _s, _o: None)
        self.state = IncidentState.read(journal)
        self.replacements: dict[str, str] = self.state.lineage()
        self.material: dict[str, Replacement] = {}
        self.stats = RunStats()
        self._stats_lock = threading.Lock()
        self._sems: dict[str, threading.Semaphore] = {}
        self.escrow_writes = EscrowWrites(self._escrow_many)

    # -- plumbing ------------------------------------------------------------------------------------
    def ctx(self, *, first_attempt: bool = False, step: Step | None = None) -> ActionContext:
        # first_attempt: the journal holds no earlier intent for this action, so a connector may
        # skip its "already done?" read and act directly (the action stays idempotent either way);
        # an untrust step names its holder and trust store files
        options: dict[str, Any] = {"first_attempt": first_attempt}
        if step is not None and step.trust:
            options["trust"] = dict(step.trust)
        return ActionContext(
            incident=self.journal.incident, dry_run=False, emergency=self.emergency,
            replacements=dict(self.replacements), get_node=self.rt.node,
            predecessors=self.view.preds,
            options=options,
        )

    def sem(self, provider: str) -> threading.Semaphore:
        if provider not in self._sems:
            self._sems[provider] = threading.Semaphore(self.pb.concurrency(provider))
        return self._sems[provider]

    def call(self, what: str, fn: Callable[[], T]) -> T:
        return with_retries(what, fn, self.pb.model.retries, self._count_retry)

    def _count_retry(self) -> None:
        with self._stats_lock:
            self.stats.retries += 1

    def record(self, type_: str, step: Step, **data: Any) -> Any:
        return self.journal.append(type_, action=step.id, node=step.node, data=data)

    # -- the DAG ---------------------------------------------------------------------------------------
    def run(self) -> RunStats:
        self.rt.preload([s.node for s in self.plan.executable()])
        return self._run()

    def _run(self) -> RunStats:
        """Dependency counting: a step is submitted when its last dependency finishes ok; a failed
        step blocks its descendants (journaled), and everything else still runs."""
        started = time.monotonic()
        steps = self.plan.executable()
        by_id = {s.id: s for s in steps}
        waiting: dict[str, int] = {}
        children: dict[str, list[str]] = {s.id: [] for s in steps}
        for s in steps:
            deps = [d for d in s.depends_on if d in by_id]
            waiting[s.id] = len(deps)
            for d in deps:
                children[d].append(s.id)
        ready: list[str] = []

        def finished_ok(sid: str) -> None:
            for c in children[sid]:
                waiting[c] -= 1
                if waiting[c] == 0:
                    ready.append(c)

        def block(sid: str, cause: str) -> None:
            for c in children[sid]:
                if c in self.stats.blocked or self.state.done(c):
                    continue
                self.stats.blocked[c] = f"blocked by {cause}"
                self.record("blocked", by_id[c], reason=f"blocked by {cause}")
                self.progress(by_id[c], "blocked")
                block(c, cause)

        def hold(sid: str, why: str) -> None:
            """Not run in this run: `sid` waits for an attestation, and so does all that follows it."""
            if sid in self.stats.waiting or self.state.done(sid):
                return
            self.stats.waiting[sid] = why
            # not "blocked" (a failure upstream): the step is pending until the attestation
            self.record("waiting", by_id[sid], reason=why)
            self.progress(by_id[sid], "waiting")
            for c in children[sid]:
                hold(c, f"waits for {sid}")

        unattested = self._unattested_tasks()

        done_before = [s.id for s in steps if self.state.done(s.id)]
        for sid in done_before:
            self.stats.skipped_done += 1
            self.progress(by_id[sid], "skipped")
        already = set(done_before)
        for sid in done_before:
            finished_ok(sid)
        ready = [sid for sid in ready if sid not in already]
        ready += [s.id for s in steps if waiting[s.id] == 0 and s.id not in already and s.id not in ready]
        running: dict[Future[None], str] = {}
        with self.runner(self, steps) as pool:
            while ready or running:
                while ready:
                    sid = ready.pop(0)
                    if sid in already or sid in self.stats.blocked or sid in self.stats.waiting:
                        continue
                    tasks = [unattested[d] for d in by_id[sid].depends_on if d in unattested]
                    if tasks:
                        hold(sid, "waits for the attestation of " + ", ".join(tasks)
                             + " (`revoke attest`, then re-run to resume)")
                        continue
                    running[pool.submit(by_id[sid])] = sid
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    sid = running.pop(fut)
                    try:
                        fut.result()
                    except StepFailed as exc:
                        self.stats.failed[sid] = str(exc)
                        self.progress(by_id[sid], "failed")
                        block(sid, sid)
                    else:
                        self.stats.done += 1
                        self.progress(by_id[sid], "done")
                        finished_ok(sid)
        self.stats.seconds = time.monotonic() - started
        return self.stats

    def _unattested_tasks(self) -> dict[str, str]:
        """Manual step id -> its node, for the manual tasks not attested yet (a person's part that
        an executable step may wait for)."""
        attested = self.state.attestations
        return {s.id: s.node for s in self.plan.manual() if s.node not in attested}

    def run_step(self, step: Step) -> None:
        """One step, journaled (intent, progress, outcome); StepFailed when the provider refused."""
        with self.sem(step.provider):
            # a fleet's member: its item is written once every running step of it is ready
            member = step.escrow if step.escrow and step.escrow.get("member") else None
            if member:
                self.escrow_writes.begin(member)
            try:
                self._step(step)
            finally:
                if member:
                    self.escrow_writes.end(member)

    def _step(self, step: Step) -> None:
        bound = log.bind(incident=self.journal.incident, action=step.id)
        st = self.state.steps.setdefault(step.id, StepState())
        resumed = st.resumed
        intent: dict[str, Any] = {"verb": step.verb, "resumed": resumed}
        if st.drifted:
            intent["reapply"] = True
        conn = self.rt.connector(step.connector)
        node = self.rt.node(step.node)
        if step.verb in ("rotate", "reissue") and not st.drifted:
            # the first intent's list is the baseline for finding orphans after any number of
            # restarts (one after a discarded replacement included), so it is carried forward
            if resumed and "siblings" in st.intent_data:
                intent["siblings"] = st.intent_data["siblings"]
            elif not st.created:
                intent["siblings"] = sorted(self.call("siblings", lambda: conn.siblings(node)))
        self.record("intent", step, **intent)
        st.intent_data = intent
        bound.info("action.intent", verb=step.verb, node=step.node, resumed=resumed)
        try:
            result = self._dispatch(step, conn, node, st, resumed)
        except ConnectorError as exc:
            rec = self.record("outcome", step, ok=False, error=exc.diagnostic(), retryable=exc.retryable)
            bound.error("action.outcome", ok=False, error=exc.diagnostic(),
                        ocsf=step_event(rec.to_dict(), step, self.journal.incident) if logs.enabled("error") else None)
            raise StepFailed(exc.diagnostic()) from exc
        data = {"ok": True, "changed": result.changed, "detail": result.detail, **result.data}
        rec = self.record("outcome", step, **data)
        st.outcome, st.drifted = data, False
        bound.info("action.outcome", ok=True, changed=result.changed, detail=result.detail,
                   ocsf=step_event(rec.to_dict(), step, self.journal.incident) if logs.enabled("info") else None)

    def _dispatch(self, step: Step, conn: Connector, node: Node, st: StepState, resumed: bool) -> ActionResult:
        node = acting_node(node, step)  # an untrust step names its CA on the holder
        if st.drifted:
            # verify found it live again (re-enabled out of band): contain it again, nothing more
            verb = REAPPLY.get(step.verb) or step.verb
            if step.verb == "rotate":
                verb = step.retire or verb
            return self.call(verb, lambda: conn.act(verb, node, self.ctx(step=step)))
        if step.verb in ("rotate", "reissue"):
            return self._rotate(step, conn, node, st, resumed)
        if step.verb == "create_ca":
            return self._create_ca(step, conn, node, st)
        verb = "revoke" if step.verb == "retire_ca" else step.verb
        spec = declared(type(conn), node.id, step.verb)
        if resumed and spec is not None and spec.probe == "liveness":
            probe = self.call("probe", lambda: conn.probe(node))
            if probe.live is False:
                return ActionResult(node.id, verb, changed=False, detail=f"already done before the restart ({probe.signal})")
        first = not resumed and not self.state.step(step.id).outcome
        return self.call(verb, lambda: conn.act(verb, node, self.ctx(first_attempt=first, step=step)))

    def _create_ca(self, step: Step, conn: Connector, node: Node, st: StepState) -> ActionResult:
        ctx = self.ctx()
        live_new = st.live_replacement
        if live_new is not None:
            if step.escrow is None or self._escrowed(step, st, live_new):
                return ActionResult(node.id, "create_ca", changed=False, data={"new": live_new},
                                    detail="new CA already created")
            held = self.material.get(node.id)
            if held is None or held.new_id != live_new:
                # the new CA's key died with the previous process before it reached the escrow:
                # nobody could ever sign with it, so that CA goes and a new one is made
                self.call("discard_replacement", partial(conn.discard_replacement, live_new, ctx))
                self.record("progress", step, event="discarded", new=live_new, reason="key lost in a restart, never escrowed")
                live_new = None
        fresh = live_new is None
        if fresh:
            rep: Replacement = self.call("create_replacement", lambda: conn.create_replacement(node, ctx))
            self.material[node.id] = rep
            self.replacements[node.id] = rep.new_id
            live_new = rep.new_id
            self.record("progress", step, event="created", old=node.id, new=rep.new_id, fingerprint=rep.fingerprint)
        if step.escrow is not None:
            self._escrow(step, self.material[node.id], first=fresh)
        return ActionResult(node.id, "create_ca", data={"new": live_new})

    def _escrowed(self, step: Step, st: StepState, new: str) -> bool:
        """The journal says `new` reached the escrow, or the escrow item holds it (the put landed
        just before a crash, before its record)."""
        if any(r.data.get("new") == new for r in st.events("escrowed")):
            return True
        esc = step.escrow or {}
        held = self.call("escrow_holds", lambda: self.rt.connector(esc["connector"]).escrow_holds(esc["location"], esc["item"]))
        if new in held:
            made = next((r.data.get("fingerprint") for r in st.events("created") if r.data.get("new") == new), None)
            self.record("progress", step, event="escrowed", new=new, escrow=esc["where"], item=esc["item"],
                        fingerprint=made, changed=False)
            return True
        return False

    def _escrow(self, step: Step, rep: Replacement, *, first: bool) -> None:
        """The replacement goes from memory to the escrow item the plan named; journaled with the
        item and the fingerprint, never the value. `first`: no earlier try of this step, so the
        item cannot hold this replacement yet (a connector may write without reading first)."""
        esc = step.escrow or {}
        conn = self.rt.connector(esc["connector"])
        attempts = iter((first,))  # a retried put reads before it writes

        def put() -> ActionResult:
            ctx = self.ctx(first_attempt=next(attempts, False))
            return conn.escrow_put(esc["location"], esc["item"], rep, ctx)

        if esc.get("member") and batches_escrow(type(conn)):
            # a fleet's member: written together with the others waiting for the same item
            res = self.escrow_writes.put(esc, rep)
        else:
            res = self.call("escrow_put", put)
        self.record("progress", step, event="escrowed", new=rep.new_id, escrow=esc["where"], item=esc["item"],
                    fingerprint=rep.fingerprint, changed=res.changed)

    def _escrow_many(self, esc: dict[str, Any], members: dict[str, Replacement]) -> ActionResult:
        conn = self.rt.connector(esc["connector"])
        return self.call("escrow_put", lambda: conn.escrow_put_many(esc["location"], esc["item"], members, self.ctx()))

    def _retire(self, step: Step, conn: Connector, node: Node, st: StepState, resumed: bool) -> None:
        verb = step.retire or "disable"
        first = not resumed and not st.outcome
        self.call(verb, lambda: conn.act(verb, node, self.ctx(first_attempt=first)))
        self.record("progress", step, event="retired", old=node.id, verb=verb)

    def _rotate(self, step: Step, conn: Connector, node: Node, st: StepState, resumed: bool) -> ActionResult:
        ctx = self.ctx()
        live_new = st.live_replacement
        written = set(st.stored(live_new))
        targets = [t for t in step.stores if t["mode"] == "write"]
        escrowed = live_new is not None and step.escrow is not None and self._escrowed(step, st, live_new)
        retired = st.retired is not None
        held_by: dict[str, str] = {}  # store -> the credential it holds now, when not the old one
        if live_new and (node.id not in self.material or self.material[node.id].new_id != live_new):
            # the material of `live_new` died with the previous process: stores not yet written
            # (and an escrow not yet filled) cannot get it, so it is replaced, unless every one
            # already holds it
            missing = [t for t in targets if t["store"] not in written
                       and live_new not in self.call("store_holds", partial(self._store_holds, t))]
            if missing or (step.escrow is not None and not escrowed):
                self.call("discard_replacement", partial(conn.discard_replacement, live_new, ctx))
                self.record("progress", step, event="discarded", new=live_new, reason="material lost in a restart")
                held_by = {t["store"]: live_new for t in targets if t["store"] in written}
                written, live_new, escrowed = set(), None, False
            else:
                written = {t["store"] for t in targets}
        if live_new is None and resumed and "siblings" in st.intent_data:
            # an empty list is a baseline too: a principal with no other credential before the crash
            before = set(st.intent_data["siblings"])
            now = self.call("siblings", lambda: conn.siblings(node))
            for orphan in sorted(now - before - {node.id}):
                self.call("discard_replacement", partial(conn.discard_replacement, orphan, ctx))
                self.record("progress", step, event="discarded", new=orphan, reason="created before a crash, never stored")
        fresh = live_new is None
        if fresh:
            try:
                created = self.call("create_replacement", lambda: conn.create_replacement(node, ctx))
            except ConnectorError as exc:
                gone = self.call("probe", lambda: conn.probe(node)) if exc.code == GONE else None
                if gone is None or gone.live is not False:
                    raise
                # vanished since the collection: dead, and no replacement can exist for it
                return ActionResult(node.id, "rotate", changed=False, detail=f"nothing to rotate: {gone.signal}",
                                    data={GONE: True})
            self.material[node.id] = created
            live_new = created.new_id
            self.replacements[node.id] = live_new
            self.record("progress", step, event="created", old=node.id, new=live_new, fingerprint=created.fingerprint,
                        **{k: v for k, v in created.attrs.items() if isinstance(v, str | int | bool)})
        rep = self.material.get(node.id)
        if step.escrow is not None and not escrowed:
            assert rep is not None, "a replacement without material cannot be escrowed"
            self._escrow(step, rep, first=fresh)
        if step.retire_first and not retired and any(t["store"] not in written for t in targets):
            # the old credential can read a store the replacement goes to: it dies before the write
            self._retire(step, conn, node, st, resumed)
            retired = True
        for t in targets:
            if t["store"] in written:
                continue
            assert rep is not None, "a replacement without material cannot be stored"
            store_conn = self.rt.connector(t["connector"])
            store_node = self.rt.node(t["store"])
            old = node
            if t["store"] in held_by:
                old = Node(id=held_by[t["store"]], kind=node.kind, provider=node.provider)
            res = self.call("write_store", partial(self._write_store, store_conn, store_node, old, rep))
            self.record("progress", step, event="stored", store=t["store"], new=live_new, changed=res.changed,
                        fingerprint=rep.fingerprint)
        if not retired:
            self._retire(step, conn, node, st, resumed)
        data: dict[str, Any] = {"new": live_new, "stores": [t["store"] for t in targets]}
        if step.escrow is not None:
            data["escrow"] = step.escrow["where"]
        return ActionResult(node.id, step.verb, data=data)

    def _store_holds(self, target: dict[str, Any]) -> set[str]:
        return self.rt.connector(target["connector"]).store_holds(self.rt.node(target["store"]))

    def _write_store(self, conn: Connector, store: Node, old: Node, rep: Replacement) -> ActionResult:
        return conn.write_store(store, old, rep, self.ctx())  # a fresh context per attempt: it copies the lineage
