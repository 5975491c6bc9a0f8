"""Incident operations shared by the CLI and the lab: declare, run, finalize, rollback, attest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from revoke.collection_gaps import graph_gaps
from revoke.config import Config, load_config
from revoke.connections import Runtime
from revoke.connector import DELETED, ConnectorError, Unsupported, declared
from revoke.errors import InputError, RevokeError
from revoke.execute import Executor, RunStats
from revoke.graph import GraphView
from revoke.incident_state import ROLLBACK, IncidentState, finalize_action, rollback_action
from revoke.journal import IncidentError, Journal, actor
from revoke.plan import ConnectorIndex, Plan, Step, build_plan
from revoke.plan_retained import record_deletions
from revoke.playbook import Playbook
from revoke.run_lock import LockLostError
from revoke.store import Store

log = structlog.get_logger()


def optional_config(path: str) -> Config | None:
    if not Path(path).exists():
        log.warning("config.missing", path=path, effect="no connector can act: every credential becomes a manual task")
        return None
    return load_config(path)


def require_config(path: str) -> Config:
    if not Path(path).exists():
        raise InputError(f"config {path} not found: connectors are needed to act and to probe (--config)")
    return load_config(path)


def prepare(store: Store, journal: Journal, playbook: Playbook, nodes: list[str], config: Config | None,
            *, window: str | None, emergency: bool) -> tuple[Plan, bool]:
    """The recorded plan of an existing incident, or a fresh one. A resumed incident never
    re-plans: the graph may already hold its own replacements."""
    info = journal.info()
    if info is not None:
        if nodes and sorted(nodes) != sorted(info["options"].get("nodes", [])):
            raise IncidentError(f"incident {journal.incident!r} was declared for {', '.join(info['options']['nodes'])}; "
                                "use a new --incident ID for other nodes")
        if playbook.digest != info["playbook_digest"]:
            log.warning("playbook.changed", incident=journal.incident, effect="the recorded plan is used")
        return IncidentState.read(journal).require_plan(), False
    graph = store.load_compiled()
    plan = build_plan(playbook, store, graph, config, nodes, window=window, emergency=emergency)
    return plan, True


def check_complete(store: Store, config: Config | None, *, allow_partial: bool) -> list[str]:
    gaps = graph_gaps(store, config)
    if gaps and not allow_partial:
        raise InputError("the graph is incomplete, so the plan would miss credentials: " + "; ".join(gaps)
                         + ". Run `revoke collect` again, or pass --allow-partial to act on what is known")
    return gaps


def check_approval(playbook: Playbook, plan: Plan, approve: bool) -> None:
    """More actions than the playbook's limit, or any action that cannot be undone, need --approve."""
    if approve:
        return
    limit = playbook.model.approval.required_above
    n = len(plan.executable())
    if limit is not None and n > limit:
        raise InputError(f"approval required: the plan has {n} actions, above the playbook's limit of {limit}; "
                         "review `revoke plan` and re-run with --approve")
    final = [s for s in plan.executable() if not s.reversible]
    if final:
        first = final[0]
        more = f" (and {len(final) - 1} more)" if len(final) > 1 else ""
        raise InputError(f"approval required: {len(final)} action(s) cannot be undone, e.g. {first.id}{more}: "
                         f"{first.irreversible}; review `revoke plan` (column `reversible`) and re-run with --approve")


def declare(journal: Journal, playbook: Playbook, plan: Plan, nodes: list[str], *, emergency: bool) -> None:
    declared = {"by": actor(), "sources": plan.sources, "playbook": playbook.name,
                "playbook_digest": playbook.digest, "window": plan.window}
    journal.declare(playbook.source, playbook.name, playbook.digest, plan.sources,
                    {"nodes": nodes, "window": plan.window, "emergency": emergency},
                    records=[("declared", declared), ("plan", plan.to_json())])


def execute(store: Store, journal: Journal, playbook: Playbook, plan: Plan, config: Config,
            *, emergency: bool = False, progress: Any = None, workers: bool = False,
            jobs_progress: Any = None) -> RunStats:
    """Run the plan under the incident's lock: its steps in this process, or with `workers` as
    jobs that `revoke worker` processes run (revoke/step_jobs.py), this process walking the DAG."""
    if workers:
        from revoke.jobs import require_queue

        require_queue(store)
    token = journal.acquire()
    rt = Runtime(config, store)
    try:
        journal.append("run.start", data={"by": actor(), **({"workers": True} if workers else {})})
        view = GraphView(store.load_compiled())
        lost = False
        runner: dict[str, Any] = {}
        if workers:
            from revoke.step_jobs import payload, queued

            runner["runner"] = queued(store.url, payload(journal.incident, token, playbook, config, emergency),
                                      jobs_progress)
        try:
            stats = Executor(plan, playbook, journal, rt, view, emergency=emergency, progress=progress,
                             **runner).run()
        except LockLostError:
            lost = True  # the new holder tells the other incidents, not this process
            raise
        finally:
            if not lost:
                # another open incident's retained credential this run deleted: its journal is told
                record_deletions(store, journal, IncidentState.read(journal))
        journal.append("run.end", data={"done": stats.done, "already_done": stats.skipped_done,
                                        "failed": stats.failed, "blocked": stats.blocked, "retries": stats.retries,
                                        "seconds": round(stats.seconds, 3)})
        return stats
    finally:
        rt.close()
        journal.release(token)


def attest(journal: Journal, node: str, note: str) -> dict[str, Any]:
    return attest_many(journal, [node], note)[0]


def attest_many(journal: Journal, nodes: list[str], note: str) -> list[dict[str, Any]]:
    """Record that manual tasks were done. Every node is checked before any is recorded."""
    journal.require()
    plan = IncidentState.read(journal).require_plan()
    manual = {s.node for s in plan.manual()}
    for node in nodes:
        if node not in manual:
            raise InputError(f"{node} is not a manual task of incident {journal.incident!r}; manual tasks: "
                             + (", ".join(sorted(manual)) or "none"))
    if not note.strip():
        raise InputError("--note must say what was done")
    by = actor()

    def one(node: str) -> dict[str, Any]:
        rec = journal.append("attest", node=node, data={"by": by, "note": note})
        return {"node": node, "by": rec.data["by"], "at": rec.ts}

    from concurrent.futures import ThreadPoolExecutor

    # a fleet's deliveries: concurrent appends share the journal's commits (group commit)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, dict.fromkeys(nodes)))


def finalize(
    store: Store, journal: Journal, playbook: Playbook, config: Config, *, now: datetime | None = None
) -> dict[str, Any]:
    """Irreversible clean-up (delete deactivated keys, destroy old secret versions, deregister CAs),
    only after a clean verify that nothing has happened since (`finalize_gate`) and the playbook's
    grace period; each irreversible action first re-probes the credential it is about (a key
    re-enabled out of band, or by a rollback, is never deleted: that action is refused, journaled)."""
    rt = Runtime(config, store)
    token = journal.acquire()
    out: dict[str, Any] = {"done": [], "not_supported": [], "failed": {}, "refused": {}}
    try:
        # read under the lock: a rollback cannot slip in between the gate and the actions
        state = IncidentState.read(journal)
        finalize_gate(state, playbook, now or datetime.now(UTC))
        plan = state.require_plan()
        targets: list[tuple[str, str, str | None, Step]] = []
        for step in plan.executable():
            if not state.done(step.id) or step.verb in ("create_ca", "revoke_sessions"):
                continue
            targets.append((finalize_action(step.id), step.node, step.connector, step))
            targets += [(finalize_action(step.id, t["store"]), t["store"], t["connector"], step)
                        for t in step.stores if t["mode"] == "write"]
        for action_id, node_id, conn_name, step in targets:
            if state.done(action_id):
                continue
            refusal = _still_dead(rt, step, node_id, conn_name)
            if refusal is not None:
                journal.append("refused", action=action_id, node=node_id,
                               data={"verb": "finalize", "credential": step.node, "reason": refusal})
                out["refused"][node_id] = refusal
                continue
            # nothing irreversible to do for this kind counts as done
            error = _journaled_act(journal, rt, action_id, node_id, conn_name, "finalize", (ConnectorError,),
                                   done_if=lambda exc: isinstance(exc, Unsupported))
            if error is None:
                out["done"].append(node_id)
            elif isinstance(error, Unsupported):
                out["not_supported"].append(node_id)
            else:
                out["failed"][node_id] = error.diagnostic()
        journal.append("finalize", data={"by": actor(), "done": out["done"], "not_supported": out["not_supported"],
                                         "failed": sorted(out["failed"]), "refused": sorted(out["refused"])})
    finally:
        rt.close()
        journal.release(token)
    return out


def finalize_gate(state: IncidentState, playbook: Playbook, now: datetime) -> None:
    """Finalize needs a clean verify that is the last verify and later than every rollback, every
    action of a (re-)run and every attestation (each may have brought a credential back, or
    vouched for one no probe saw), plus the playbook's grace period after it. IncidentError
    with the one-line reason otherwise."""
    last = state.last_verify
    if last is None or not last.clean:
        raise IncidentError("finalize needs a clean `revoke verify` first: irreversible steps wait for proof")
    change = state.last_change()
    if change is not None and change.seq > last.seq:
        raise IncidentError(f"finalize needs a clean `revoke verify` after the last change: {describe_change(change)} "
                            f"(record {change.seq}, {change.ts}) came after the clean verify (record {last.seq}); "
                            f"run `revoke verify --incident {state.incident}` again")
    if now < last.time + playbook.grace:
        raise IncidentError(f"finalize is allowed from {(last.time + playbook.grace).isoformat()} "
                            f"(grace period {playbook.model.finalize.grace_period} after the clean verify)")


def describe_change(r: Any) -> str:
    if r.type == "attest":
        return f"an attestation of {r.node}"
    if (r.action or "").startswith(f"{ROLLBACK}:"):
        return f"a rollback of {r.node}"
    return f"an action of a re-run on {r.node} ({r.type} of {r.action})"


def _still_dead(rt: Runtime, step: Step, target: str, conn_name: str | None) -> str | None:
    """Right before an irreversible finalize action on `target` (the credential itself, or a store
    whose old versions hold it), probe the credential again: the reason to refuse, or None to go
    ahead. Actions a connector does not declare, or declares reversible, destroy nothing and are
    not probed; a probe that cannot decide refuses (fail closed), except for an identity-level
    step that has no credential to probe (as in verify)."""
    try:
        spec = declared(type(rt.connector(conn_name)), target, "finalize")
        if spec is None or spec.reversible:
            return None
        res = rt.connector(step.connector).probe(rt.node(step.node))
    except (ConnectorError, RevokeError) as exc:
        return f"cannot re-probe {step.node} before an irreversible step: {exc.diagnostic()}"
    if res.live is True:
        return f"{step.node} is live again ({res.signal}); run `revoke verify` and decide before finalizing"
    if res.live is None and not (step.verb in ("revoke_sessions", "disable") and step.kind not in ("access_key", "token")):
        return f"the probe of {step.node} could not decide ({res.signal}); an irreversible step waits for proof"
    return None


def rollback(store: Store, journal: Journal, config: Config, *, execute: bool) -> dict[str, Any]:
    """Undo containment for a false alarm, newest first, as far as each provider allows."""
    state = IncidentState.read(journal)
    plan = state.require_plan()
    conns = ConnectorIndex(config, store)
    done: list[Step] = []
    out: dict[str, Any] = {"undone": [], "cannot_undo": {}, "planned": []}
    for step in reversed([s for s in plan.executable() if state.done(s.id)]):
        cls = conns.by_name.get(step.connector or "")
        spec = declared(cls, step.node, step.verb) if cls is not None else None
        # a rotation that deleted the old credential to make room (journaled with its replacement)
        deleted = any(r.data.get(DELETED) == step.node for r in state.step(step.id).events("created"))
        if spec is not None and spec.undo and not deleted:
            done.append(step)
            out["planned"].append(step.node)
        elif step.verb != "create_ca":
            # said before anything runs: what a rollback leaves as it is
            out["cannot_undo"][step.node] = (
                f"{step.verb} deleted it ({step.irreversible or 'it cannot come back'})" if deleted
                else f"{step.connector or 'no connector'} cannot undo {step.verb}"
                + ("" if spec is None or spec.reversible else " (it destroyed the old credential)"))
    if not execute:
        return out
    rt = Runtime(config, store)
    token = journal.acquire()
    try:
        for step in done:
            action_id = rollback_action(step.id)
            if state.done(action_id):
                continue
            # the step's journaled outcome: what it removed, for an undo that puts it back (untrust)
            error = _journaled_act(journal, rt, action_id, step.node, step.connector, "rollback",
                                   (ConnectorError, RevokeError), options={"outcome": state.step(step.id).outcome})
            if error is None:
                out["undone"].append(step.node)
            else:
                out["cannot_undo"][step.node] = error.diagnostic()
    finally:
        rt.close()
        journal.release(token)
    return out


def _journaled_act(journal: Journal, rt: Runtime, action_id: str, node_id: str, conn_name: str | None, verb: str,
                   catch: tuple[type[RevokeError], ...], *, done_if: Any = None,
                   options: dict[str, Any] | None = None) -> RevokeError | None:
    """One connector action between its `intent` and `outcome` records; returns the error, if any.
    `done_if(error)` marks an error that still counts as done (e.g. nothing to do for this kind)."""
    journal.append("intent", action=action_id, node=node_id, data={"verb": verb})
    try:
        res = rt.connector(conn_name).act(verb, rt.node(node_id), _ctx(journal, rt, options))
    except catch as exc:
        done = bool(done_if and done_if(exc))
        data = {"ok": done, "error": exc.diagnostic()}
        if done_if is not None:
            data["not_supported"] = done
        journal.append("outcome", action=action_id, node=node_id, data=data)
        return exc
    journal.append("outcome", action=action_id, node=node_id,
                   data={"ok": True, "changed": res.changed, "detail": res.detail})
    return None


def _ctx(journal: Journal, rt: Runtime, options: dict[str, Any] | None = None) -> Any:
    from revoke.connector import ActionContext

    return ActionContext(incident=journal.incident, dry_run=False, get_node=rt.node, options=dict(options or {}))


def step_status(journal: Journal, plan: Plan) -> dict[str, str]:
    """Each step's status for the plan table of a resumed run."""
    state = IncidentState.read(journal)
    out = {}
    for s in plan.steps:
        st = state.step(s.id)
        if not s.executable:
            out[s.id] = s.verb
        elif not st.acted:
            out[s.id] = "pending"  # this table has never shown `blocked`: a blocked step runs again
        else:
            out[s.id] = st.status
    return out
